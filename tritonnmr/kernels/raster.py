"""Forward rasterization (face-parallel z-buffer, then a pixel-parallel resolve) and the depth backward.

Integer sizes are never specialised (``do_not_specialize``): Triton would turn a size equal to 1
(one face, a 1-pixel image) into a compile-time constant, which has no ``.to()``.
"""
import triton
import triton.language as tl

from .geometry import barycentric, bbox, gather_faces, inside, inverse_depth, load_face, pixel_centre

EMPTY_KEY = 0x7FFFFFFFFFFFFFFF  # z-buffer key of a pixel no face covers (the largest int64)
EMPTY = tl.constexpr(EMPTY_KEY)  # the same, readable inside kernels


@triton.jit(do_not_specialize=["F", "S"])
def coverage_kernel(faces_ptr, zbuf_ptr, F, S, near, far, BLOCK: tl.constexpr):
    """One program per (batch, face): walk the face's clipped bounding box BLOCK pixels at a time,
    keep covered pixels with near < z < far, and atomically keep the smallest key
    (float bits of z) << 32 | face, so the nearest face wins and ties go to the lower index
    (z > 0, so its float bits order like the floats). Faces not drawn visit no pixel."""
    pid = tl.program_id(0)
    b = pid // F
    f = pid % F
    drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = load_face(faces_ptr + pid.to(tl.int64) * 9)
    Sf = S.to(tl.float32)
    lo_x, nx = bbox(tl.minimum(tl.minimum(x0, x1), x2), tl.maximum(tl.maximum(x0, x1), x2), S)
    lo_y, ny = bbox(tl.minimum(tl.minimum(y0, y1), y2), tl.maximum(tl.maximum(y0, y1), y2), S)
    n = tl.where(drawn, nx * ny, 0)
    row = zbuf_ptr + b.to(tl.int64) * S * S
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        px = lo_x + offs % nx
        py = lo_y + offs // nx
        xp = pixel_centre(px, Sf)
        yp = pixel_centre(py, Sf)
        w0, w1, w2 = barycentric(x0, y0, x1, y1, x2, y2, xp, yp)
        z, finite = inverse_depth(w0, w1, w2, z0, z1, z2)
        keep = (offs < n) & inside(x0, y0, x1, y1, x2, y2, xp, yp) & finite & (z > near) & (z < far)
        key = (z.to(tl.int32, bitcast=True).to(tl.int64) << 32) + f
        tl.atomic_min(row + py * S + px, key, mask=keep)


@triton.jit(do_not_specialize=["F", "S", "total"])
def resolve_kernel(zbuf_ptr, faces_ptr, index_ptr, weights_ptr, depth_ptr, F, S, total, far,
                   BLOCK: tl.constexpr):
    """Pixel-parallel: decode each pixel's key into face index and depth, recompute its weights."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    key = tl.load(zbuf_ptr + offs, mask=valid, other=EMPTY)
    hit = key != EMPTY
    face = key - ((key >> 32) << 32)
    z = (key >> 32).to(tl.int32).to(tl.float32, bitcast=True)
    b = offs // (S * S)
    py = (offs // S) % S
    px = offs % S
    Sf = S.to(tl.float32)
    m = valid & hit
    _drawn, x0, y0, _z0, x1, y1, _z1, x2, y2, _z2 = gather_faces(faces_ptr + (b * F + face) * 9, m)
    w0, w1, w2 = barycentric(x0, y0, x1, y1, x2, y2, pixel_centre(px, Sf), pixel_centre(py, Sf))
    tl.store(index_ptr + offs, tl.where(hit, face, -1), mask=valid)
    tl.store(depth_ptr + offs, tl.where(hit, z, far), mask=valid)
    tl.store(weights_ptr + offs * 3 + 0, tl.where(hit, w0, 0.0), mask=valid)
    tl.store(weights_ptr + offs * 3 + 1, tl.where(hit, w1, 0.0), mask=valid)
    tl.store(weights_ptr + offs * 3 + 2, tl.where(hit, w2, 0.0), mask=valid)


@triton.jit(do_not_specialize=["F", "S"])
def depth_backward_kernel(faces_ptr, index_ptr, weights_ptr, depth_ptr, grad_ptr, out_ptr, F, S,
                          BLOCK: tl.constexpr):
    """One program per (batch, face): sum, over the face's pixels, the exact gradient of
    z = 1 / sum_m w_m / z_m:  dz/dz_k = z^2 w_k / z_k^2 and
    dz/d(x_k, y_k) = z^2 w_k sum_m grad_p(w_m) / z_m, grad_p(w_m) = (A_m, B_m) / det.
    A face that covers no pixel gets exactly 0 (its sums are 0 and are not multiplied by anything
    that could be inf). Written once per face: deterministic, no atomics."""
    pid = tl.program_id(0)
    b = pid // F
    f = pid % F
    drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = load_face(faces_ptr + pid.to(tl.int64) * 9)
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # > 0: sanitized faces are front-facing
    sx = (y1 - y2) / det / z0 + (y2 - y0) / det / z1 + (y0 - y1) / det / z2
    sy = (x2 - x1) / det / z0 + (x0 - x2) / det / z1 + (x1 - x0) / det / z2
    lo_x, nx = bbox(tl.minimum(tl.minimum(x0, x1), x2), tl.maximum(tl.maximum(x0, x1), x2), S)
    lo_y, ny = bbox(tl.minimum(tl.minimum(y0, y1), y2), tl.maximum(tl.maximum(y0, y1), y2), S)
    n = tl.where(drawn, nx * ny, 0)
    a0 = tl.zeros([BLOCK], tl.float32)  # sum of g z^2 w_k, per vertex
    a1 = tl.zeros([BLOCK], tl.float32)
    a2 = tl.zeros([BLOCK], tl.float32)
    row = b.to(tl.int64) * S * S
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        pix = row + (lo_y + offs // nx) * S + lo_x + offs % nx
        mine = (offs < n) & (tl.load(index_ptr + pix, mask=offs < n, other=-1) == f)
        z = tl.load(depth_ptr + pix, mask=mine, other=0.0)
        gz2 = tl.load(grad_ptr + pix, mask=mine, other=0.0) * z * z
        a0 += gz2 * tl.load(weights_ptr + pix * 3 + 0, mask=mine, other=0.0)
        a1 += gz2 * tl.load(weights_ptr + pix * 3 + 1, mask=mine, other=0.0)
        a2 += gz2 * tl.load(weights_ptr + pix * 3 + 2, mask=mine, other=0.0)
    s0 = tl.sum(a0, axis=0)
    s1 = tl.sum(a1, axis=0)
    s2 = tl.sum(a2, axis=0)
    out = out_ptr + pid.to(tl.int64) * 9
    tl.store(out + 0, tl.where(s0 != 0.0, s0 * sx, 0.0))
    tl.store(out + 1, tl.where(s0 != 0.0, s0 * sy, 0.0))
    tl.store(out + 2, s0 / (z0 * z0))
    tl.store(out + 3, tl.where(s1 != 0.0, s1 * sx, 0.0))
    tl.store(out + 4, tl.where(s1 != 0.0, s1 * sy, 0.0))
    tl.store(out + 5, s1 / (z1 * z1))
    tl.store(out + 6, tl.where(s2 != 0.0, s2 * sx, 0.0))
    tl.store(out + 7, tl.where(s2 != 0.0, s2 * sy, 0.0))
    tl.store(out + 8, s2 / (z2 * z2))
