"""Shading kernels: texture-cube sampling and per-vertex interpolation, forward and backward.

Pixel-parallel; the backward passes scatter into the attributes with atomic adds. Integer sizes
are not specialised (a texture size, face count or image size of 1 would become a constant).
"""
import triton
import triton.language as tl


@triton.jit
def _pixel_face(index_ptr, weights_ptr, depth_ptr, faces_ptr, offs, valid, F, S):
    """Face row, weights, depth and the face's vertex depths at pixels ``offs``."""
    face = tl.load(index_ptr + offs, mask=valid, other=-1)
    hit = valid & (face >= 0)
    flat = (offs // (S * S)) * F + face
    w0 = tl.load(weights_ptr + offs * 3 + 0, mask=hit, other=0.0)
    w1 = tl.load(weights_ptr + offs * 3 + 1, mask=hit, other=0.0)
    w2 = tl.load(weights_ptr + offs * 3 + 2, mask=hit, other=0.0)
    z = tl.load(depth_ptr + offs, mask=hit, other=1.0)
    z0 = tl.load(faces_ptr + flat * 9 + 2, mask=hit, other=1.0)
    z1 = tl.load(faces_ptr + flat * 9 + 5, mask=hit, other=1.0)
    z2 = tl.load(faces_ptr + flat * 9 + 8, mask=hit, other=1.0)
    return hit, flat, w0, w1, w2, z, z0, z1, z2


@triton.jit
def _cube_axis(w, z, zk, T, eps):
    """Lower index, upper index and fraction along one cube axis: t = clamp(w (T-1) z / z_k, 0, T-1-eps)."""
    t = w * (T - 1).to(tl.float32) * z / zk
    t = tl.minimum(tl.maximum(t, 0.0), tl.maximum((T - 1).to(tl.float32) - eps, 0.0))
    lower = tl.floor(t)
    lo = lower.to(tl.int32)
    return lo, tl.minimum(lo + 1, T - 1), t - lower


@triton.jit(do_not_specialize=["F", "S", "T", "total"])
def texture_kernel(faces_ptr, index_ptr, weights_ptr, depth_ptr, tex_ptr, out_ptr, F, S, T, total, eps,
                   BACKWARD: tl.constexpr, BLOCK: tl.constexpr):
    """Trilinear sampling of per-face cubes (B, F, T, T, T, 3) at the cube point of each pixel.

    Forward: out (B, S, S, 3) = sum over the 8 corners of weight * cell.
    BACKWARD: out is the incoming gradient (B, S, S, 3); each corner cell of tex_ptr (the cube
    gradient) receives weight * gradient.
    """
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    hit, flat, w0, w1, w2, z, z0, z1, z2 = _pixel_face(index_ptr, weights_ptr, depth_ptr, faces_ptr,
                                                       offs, offs < total, F, S)
    lo0, hi0, f0 = _cube_axis(w0, z, z0, T, eps)
    lo1, hi1, f1 = _cube_axis(w1, z, z1, T, eps)
    lo2, hi2, f2 = _cube_axis(w2, z, z2, T, eps)
    cube = flat * T * T * T
    r = tl.zeros([BLOCK], tl.float32)
    g = tl.zeros([BLOCK], tl.float32)
    bl = tl.zeros([BLOCK], tl.float32)
    if BACKWARD:
        r = tl.load(out_ptr + offs * 3 + 0, mask=hit, other=0.0)
        g = tl.load(out_ptr + offs * 3 + 1, mask=hit, other=0.0)
        bl = tl.load(out_ptr + offs * 3 + 2, mask=hit, other=0.0)
    acc_r = tl.zeros([BLOCK], tl.float32)
    acc_g = tl.zeros([BLOCK], tl.float32)
    acc_b = tl.zeros([BLOCK], tl.float32)
    for corner in tl.static_range(8):  # bit k of corner: upper (1) or lower (0) index on axis k
        i0 = hi0 if (corner & 1) else lo0
        i1 = hi1 if (corner & 2) else lo1
        i2 = hi2 if (corner & 4) else lo2
        weight = (f0 if (corner & 1) else 1.0 - f0) * (f1 if (corner & 2) else 1.0 - f1) \
            * (f2 if (corner & 4) else 1.0 - f2)
        cell = (cube + (i0 * T + i1) * T + i2) * 3
        if BACKWARD:
            tl.atomic_add(tex_ptr + cell + 0, weight * r, mask=hit)
            tl.atomic_add(tex_ptr + cell + 1, weight * g, mask=hit)
            tl.atomic_add(tex_ptr + cell + 2, weight * bl, mask=hit)
        else:
            acc_r += weight * tl.load(tex_ptr + cell + 0, mask=hit, other=0.0)
            acc_g += weight * tl.load(tex_ptr + cell + 1, mask=hit, other=0.0)
            acc_b += weight * tl.load(tex_ptr + cell + 2, mask=hit, other=0.0)
    if not BACKWARD:
        valid = offs < total
        tl.store(out_ptr + offs * 3 + 0, acc_r, mask=valid)
        tl.store(out_ptr + offs * 3 + 1, acc_g, mask=valid)
        tl.store(out_ptr + offs * 3 + 2, acc_b, mask=valid)


@triton.jit(do_not_specialize=["F", "S", "total"])
def interpolate_kernel(faces_ptr, index_ptr, weights_ptr, depth_ptr, attr_ptr, out_ptr, F, S, total,
                       C: tl.constexpr, CP: tl.constexpr, BACKWARD: tl.constexpr, BLOCK: tl.constexpr):
    """Perspective-correct interpolation of face-vertex attributes (B, F, 3, C):
    out = z * sum_k w_k a_k / z_k. BACKWARD: out is the incoming gradient (B, S, S, C) and
    attr_ptr the attribute gradient, which receives z w_k / z_k times it (atomic adds)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    hit, flat, w0, w1, w2, z, z0, z1, z2 = _pixel_face(index_ptr, weights_ptr, depth_ptr, faces_ptr,
                                                       offs, offs < total, F, S)
    ch = tl.arange(0, CP)
    m = hit[:, None] & (ch < C)[None, :]
    vertex = attr_ptr + (flat * 3 * C)[:, None] + ch[None, :]
    p0 = (w0 * z / z0)[:, None]
    p1 = (w1 * z / z1)[:, None]
    p2 = (w2 * z / z2)[:, None]
    pixel = out_ptr + (offs * C)[:, None] + ch[None, :]
    if BACKWARD:
        g = tl.load(pixel, mask=m, other=0.0)
        tl.atomic_add(vertex, p0 * g, mask=m)
        tl.atomic_add(vertex + C, p1 * g, mask=m)
        tl.atomic_add(vertex + 2 * C, p2 * g, mask=m)
    else:
        value = p0 * tl.load(vertex, mask=m, other=0.0) + p1 * tl.load(vertex + C, mask=m, other=0.0) \
            + p2 * tl.load(vertex + 2 * C, mask=m, other=0.0)
        tl.store(pixel, value, mask=(offs < total)[:, None] & (ch < C)[None, :])
