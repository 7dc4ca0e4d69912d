"""Triton helpers shared by the kernels: the same formulas as tritonnmr.reference, per element."""
import triton
import triton.language as tl


@triton.jit
def load_face(ptr):
    """The 9 floats (x0, y0, z0, x1, y1, z1, x2, y2, z2) of one screen-space face at ``ptr``."""
    return (tl.load(ptr + 0), tl.load(ptr + 1), tl.load(ptr + 2),
            tl.load(ptr + 3), tl.load(ptr + 4), tl.load(ptr + 5),
            tl.load(ptr + 6), tl.load(ptr + 7), tl.load(ptr + 8))


@triton.jit
def gather_faces(ptr, mask):
    """Per lane, the 9 floats of the face at ``ptr`` (a block of pointers); masked lanes get a
    harmless unit right triangle at depth 1."""
    return (tl.load(ptr + 0, mask=mask, other=0.0), tl.load(ptr + 1, mask=mask, other=0.0),
            tl.load(ptr + 2, mask=mask, other=1.0), tl.load(ptr + 3, mask=mask, other=1.0),
            tl.load(ptr + 4, mask=mask, other=0.0), tl.load(ptr + 5, mask=mask, other=1.0),
            tl.load(ptr + 6, mask=mask, other=0.0), tl.load(ptr + 7, mask=mask, other=1.0),
            tl.load(ptr + 8, mask=mask, other=1.0))


@triton.jit
def front_facing(x0, y0, x1, y1, x2, y2):
    """Counter-clockwise with non-zero area: (y2 - y0)(x1 - x0) > (y1 - y0)(x2 - x0)."""
    return (y2 - y0) * (x1 - x0) > (y1 - y0) * (x2 - x0)


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
    """Screen-space weights w_k = (A_k xp + B_k yp + C_k) / det, clamped to [0, 1], renormalised."""
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    w0 = ((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1)) / det
    w1 = ((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2)) / det
    w2 = ((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0)) / det
    w0 = tl.minimum(tl.maximum(w0, 0.0), 1.0)
    w1 = tl.minimum(tl.maximum(w1, 0.0), 1.0)
    w2 = tl.minimum(tl.maximum(w2, 0.0), 1.0)
    total = w0 + w1 + w2
    return w0 / total, w1 / total, w2 / total
