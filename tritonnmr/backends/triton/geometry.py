"""Triton helpers shared by the kernels: the same formulas as the reference (backends/torch.py), per element.

Nothing here divides by a value that can be zero for a face that is drawn, and faces that are not
drawn are either never visited (the host plans in ``binning`` list only drawn faces) or replaced by
a harmless triangle first (``load_face``, ``sanitize``), so no lane, masked or not, ever divides by
zero or computes with inf/NaN.
"""
import triton
import triton.language as tl

from ..common import EMPTY_KEY

FLT_MAX = tl.constexpr(3.4028234663852886e38)
INV_FLT_MAX = tl.constexpr(1.0 / 3.4028234663852886e38)  # 2.9e-39, a subnormal float32
INF = tl.constexpr(float("inf"))
EMPTY = tl.constexpr(EMPTY_KEY)  # z-buffer key of a pixel no face covers (the largest int64)


@triton.jit
def sanitize(x0, y0, z0, x1, y1, z1, x2, y2, z2):
    """(drawn, the nine floats). A face is drawn when all nine numbers are finite (|v| <= FLT_MAX,
    false for inf and NaN), no vertex has z = 0 and it is front-facing with non-zero area:
    (y2 - y0)(x1 - x0) > (y1 - y0)(x2 - x0). Any other face covers no pixel (with z_k = 0,
    1/z = sum w_k / z_k is inf or NaN: never near < z); it is replaced by the unit triangle
    (0, 0), (1, 0), (0, 1) at depth 1, so that det and every z_k stay non-zero in what the caller
    computes next. Written inline (no helper calls): the interpreter pays per call."""
    ok = (tl.abs(x0) <= FLT_MAX) & (tl.abs(y0) <= FLT_MAX) & (tl.abs(z0) <= FLT_MAX) \
        & (tl.abs(x1) <= FLT_MAX) & (tl.abs(y1) <= FLT_MAX) & (tl.abs(z1) <= FLT_MAX) \
        & (tl.abs(x2) <= FLT_MAX) & (tl.abs(y2) <= FLT_MAX) & (tl.abs(z2) <= FLT_MAX) \
        & (z0 != 0.0) & (z1 != 0.0) & (z2 != 0.0)
    x0 = tl.where(ok, x0, 0.0)
    y0 = tl.where(ok, y0, 0.0)
    x1 = tl.where(ok, x1, 1.0)
    y1 = tl.where(ok, y1, 0.0)
    x2 = tl.where(ok, x2, 0.0)
    y2 = tl.where(ok, y2, 1.0)
    ok = ok & ((y2 - y0) * (x1 - x0) > (y1 - y0) * (x2 - x0))
    return (ok, tl.where(ok, x0, 0.0), tl.where(ok, y0, 0.0), tl.where(ok, z0, 1.0),
            tl.where(ok, x1, 1.0), tl.where(ok, y1, 0.0), tl.where(ok, z1, 1.0),
            tl.where(ok, x2, 0.0), tl.where(ok, y2, 1.0), tl.where(ok, z2, 1.0))


@triton.jit
def load_face(ptr):
    """(drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2) of the face at ``ptr``, sanitized."""
    return sanitize(tl.load(ptr + 0), tl.load(ptr + 1), tl.load(ptr + 2),
                    tl.load(ptr + 3), tl.load(ptr + 4), tl.load(ptr + 5),
                    tl.load(ptr + 6), tl.load(ptr + 7), tl.load(ptr + 8))


@triton.jit
def gather_faces(ptr, mask):
    """Per lane, (drawn, the 9 floats) of the face at ``ptr`` (a block of pointers), sanitized;
    masked lanes get the unit triangle and drawn = False."""
    drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = sanitize(
        tl.load(ptr + 0, mask=mask, other=0.0), tl.load(ptr + 1, mask=mask, other=0.0),
        tl.load(ptr + 2, mask=mask, other=1.0), tl.load(ptr + 3, mask=mask, other=1.0),
        tl.load(ptr + 4, mask=mask, other=0.0), tl.load(ptr + 5, mask=mask, other=1.0),
        tl.load(ptr + 6, mask=mask, other=0.0), tl.load(ptr + 7, mask=mask, other=1.0),
        tl.load(ptr + 8, mask=mask, other=1.0))
    return drawn & mask, x0, y0, z0, x1, y1, z1, x2, y2, z2


@triton.jit
def pixel_centre(index, size_f):
    """NDC coordinate (2i + 1 - N) / N of pixel centre i along an axis of N pixels (N as float)."""
    return tl.math.div_rn(2.0 * index.to(tl.float32) + 1.0 - size_f, size_f)


@triton.jit
def face_rows(p, live, shape):
    """The nine numbers (x0, y0, z0, x1, y1, z1, x2, y2, z2) of the faces at pointers ``p`` (one per
    row), each broadcast to ``shape`` (rows, lanes); rows not ``live`` read the triangle (0, 0), (1, 0),
    (0, 1) at depth 1 (drawn nowhere, divides by nothing)."""
    return (tl.broadcast_to(tl.load(p + 0, mask=live, other=0.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 1, mask=live, other=0.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 2, mask=live, other=1.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 3, mask=live, other=1.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 4, mask=live, other=0.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 5, mask=live, other=1.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 6, mask=live, other=0.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 7, mask=live, other=1.0)[:, None], shape),
            tl.broadcast_to(tl.load(p + 8, mask=live, other=1.0)[:, None], shape))


@triton.jit
def quotient(num, det):
    """num / det, correctly rounded, and +-inf where that overflows (a sliver whose det is subnormal)
    without computing the overflowing division: IEEE gives the same inf, but the interpreter's numpy
    warns on it, and no kernel here may overflow."""
    over = tl.abs(det) < tl.abs(num) * INV_FLT_MAX
    q = tl.math.div_rn(num, tl.where(over, 1.0, det))
    return tl.where(over, tl.where((num < 0.0) != (det < 0.0), -INF, INF), q)


@triton.jit
def screen_weights(x0, y0, x1, y1, x2, y2, xp, yp):
    """(raw0, raw1, raw2, w0, w1, w2): the screen-space barycentrics of (xp, yp), raw_k = (A_k xp +
    B_k yp + C_k) / det, and the same clamped to [0, 1] and renormalised (det != 0 for a drawn face;
    the clamped weights still sum to at least 1/3)."""
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    raw0 = quotient((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1), det)
    raw1 = quotient((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2), det)
    raw2 = quotient((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0), det)
    c0 = tl.minimum(tl.maximum(raw0, 0.0), 1.0)
    c1 = tl.minimum(tl.maximum(raw1, 0.0), 1.0)
    c2 = tl.minimum(tl.maximum(raw2, 0.0), 1.0)
    total = c0 + c1 + c2
    return raw0, raw1, raw2, tl.math.div_rn(c0, total), tl.math.div_rn(c1, total), tl.math.div_rn(c2, total)


@triton.jit
def fragment(x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp):
    """(w0, w1, w2, z, covered) of a drawn face at pixel centres (xp, yp):

    - the screen-space weights, clamped and renormalised (screen_weights);
    - perspective-correct depth 1/z = sum_k w_k / z_k (z = 1 where that sum is 0: never kept);
    - covered: the centre is on the inner side of (or on) all three edges, and 1/z != 0."""
    _r0, _r1, _r2, w0, w1, w2 = screen_weights(x0, y0, x1, y1, x2, y2, xp, yp)
    inv = tl.math.div_rn(w0, z0) + tl.math.div_rn(w1, z1) + tl.math.div_rn(w2, z2)
    z = tl.math.div_rn(1.0, tl.where(inv == 0.0, 1.0, inv))
    covered = ((yp - y0) * (x1 - x0) >= (xp - x0) * (y1 - y0)) & ((yp - y1) * (x2 - x1) >= (xp - x1) * (y2 - y1)) \
        & ((yp - y2) * (x0 - x2) >= (xp - x2) * (y0 - y2)) & (inv != 0.0)
    return w0, w1, w2, z, covered


@triton.jit
def cover_key(x0, y0, z0, x1, y1, z1, x2, y2, z2, face, xp, yp, near, far):
    """z-buffer key where the face covers pixel centre (xp, yp) with near < z < far, EMPTY elsewhere:
    (float bits of z) << 32 | face. For z > 0 the bits order like the floats, so the smallest key
    is the nearest face, and on equal depth the lower face index."""
    _w0, _w1, _w2, z, covered = fragment(x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp)
    key = (z.to(tl.int32, bitcast=True).to(tl.int64) << 32) + face
    return tl.where(covered & (z > near) & (z < far), key, EMPTY)


@triton.jit
def write_fragments(key, offs, valid, b, px, py, faces_ptr, index_ptr, weights_ptr, depth_ptr,
                    F, W_f, H_f, far):
    """Decode the keys of pixels ``offs`` (b, row py, column px) into face index (-1 where EMPTY),
    depth (the key's float bits; ``far`` where empty) and the weights recomputed at the pixel centre
    from the winning face (0 where empty); store the lanes in ``valid``."""
    hit = key != EMPTY
    face = key - ((key >> 32) << 32)
    z = (key >> 32).to(tl.int32).to(tl.float32, bitcast=True)
    m = valid & hit
    _drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = gather_faces(faces_ptr + (b * F + face) * 9, m)
    w0, w1, w2, _z, _covered = fragment(x0, y0, z0, x1, y1, z1, x2, y2, z2, pixel_centre(px, W_f),
                                        pixel_centre(py, H_f))
    tl.store(index_ptr + offs, tl.where(hit, face, -1), mask=valid)
    tl.store(depth_ptr + offs, tl.where(hit, z, far), mask=valid)
    tl.store(weights_ptr + offs * 3 + 0, tl.where(hit, w0, 0.0), mask=valid)
    tl.store(weights_ptr + offs * 3 + 1, tl.where(hit, w1, 0.0), mask=valid)
    tl.store(weights_ptr + offs * 3 + 2, tl.where(hit, w2, 0.0), mask=valid)
