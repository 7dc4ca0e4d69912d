"""Triton helpers shared by the kernels: the same formulas as tritonnmr.reference, per element.

Nothing here divides by a value that can be zero for a face that is drawn, and faces that are not
drawn are replaced by a harmless triangle first (``load_face``, ``sanitize``), so no lane, masked or
not, ever divides by zero or computes with inf/NaN.
"""
import triton
import triton.language as tl

FLT_MAX = tl.constexpr(3.4028234663852886e38)


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
def pixel_centre(index, Sf):
    """NDC coordinate (2i + 1 - S) / S of pixel centre i."""
    return (2.0 * index.to(tl.float32) + 1.0 - Sf) / Sf


@triton.jit
def bbox(lo_ndc, hi_ndc, S):
    """First pixel index and pixel count of [lo, hi] in NDC, clipped to the image (one pixel slack)."""
    Sf = S.to(tl.float32)
    lo = tl.floor(0.5 * (lo_ndc * Sf + Sf - 1.0))
    hi = tl.ceil(0.5 * (hi_ndc * Sf + Sf - 1.0))
    lo = tl.minimum(tl.maximum(lo, 0.0), Sf - 1.0)
    hi = tl.minimum(tl.maximum(hi, 0.0), Sf - 1.0)
    return lo.to(tl.int32), (hi - lo).to(tl.int32) + 1


@triton.jit
def inside(x0, y0, x1, y1, x2, y2, xp, yp):
    """Pixel centre on the inner side of (or on) all three edges."""
    e0 = (yp - y0) * (x1 - x0) >= (xp - x0) * (y1 - y0)
    e1 = (yp - y1) * (x2 - x1) >= (xp - x1) * (y2 - y1)
    e2 = (yp - y2) * (x0 - x2) >= (xp - x2) * (y0 - y2)
    return e0 & e1 & e2


@triton.jit
def barycentric(x0, y0, x1, y1, x2, y2, xp, yp):
    """Screen-space weights w_k = (A_k xp + B_k yp + C_k) / det, clamped to [0, 1], renormalised
    (det != 0 for sanitized faces; the clamped weights still sum to at least 1/3)."""
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    w0 = ((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1)) / det
    w1 = ((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2)) / det
    w2 = ((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0)) / det
    w0 = tl.minimum(tl.maximum(w0, 0.0), 1.0)
    w1 = tl.minimum(tl.maximum(w1, 0.0), 1.0)
    w2 = tl.minimum(tl.maximum(w2, 0.0), 1.0)
    total = w0 + w1 + w2
    return w0 / total, w1 / total, w2 / total


@triton.jit
def inverse_depth(w0, w1, w2, z0, z1, z2):
    """(z, valid): perspective-correct depth 1/z = sum_k w_k / z_k; where that sum is 0 (z = inf,
    never kept) z is returned as 1 and valid is False."""
    inv = w0 / z0 + w1 / z1 + w2 / z2
    return 1.0 / tl.where(inv == 0.0, 1.0, inv), inv != 0.0
