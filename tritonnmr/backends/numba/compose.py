"""The hard image of the blurred-edge and analytic estimators as one numba pass each way: each pixel's
shaded colour times its face's light, the background where no face is, and alpha (coverage), stacked
along channels (B, H, W, C + 1).

The torch path (gradients.hard_image) does this with a gather of the light, a product, a where, a
cast and a concatenation, each image-sized, and their backwards. Here the forward and the colours'
gradient are one pass over image rows shared out by ``_jit.run_jobs`` (each job writes its own rows);
the light's gradient, a per-face sum over the face's pixels, is one pass in raster order per batch
entry (the entries shared out: each owns its faces' sums). The
arithmetic is the torch path's in float32 and in its order (the light's sums in pixel order, as
index_add_ adds them), so the results are equal bit for bit.
"""
import numpy as np

from .buffers import empty, zeros
from ._jit import jit, run_jobs


@jit
def compose_rows(lo, hi, face_index, colours, light, background, alpha, out):
    """out (B, H, W, C + alpha) <- rows lo .. hi - 1 (jobs b * H + r) of the stacked image: colours
    (B, H, W, C) times light[b, f] ((B, F, C) or (B, F, 1) grey; none when it has no face), the
    background (C,) where face_index is -1, then alpha (1 where covered) when ``alpha``."""
    H, W = face_index.shape[1], face_index.shape[2]
    C = colours.shape[3]
    lit, grey = light.shape[1] > 0, light.shape[2] == 1
    zero, one = np.float32(0.0), np.float32(1.0)
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            f = face_index[b, r, c]
            for ch in range(C):
                if f < 0:
                    out[b, r, c, ch] = background[ch]
                elif lit:
                    out[b, r, c, ch] = colours[b, r, c, ch] * light[b, f, 0 if grey else ch]
                else:
                    out[b, r, c, ch] = colours[b, r, c, ch]
            if alpha:
                out[b, r, c, C] = one if f >= 0 else zero


@jit
def colour_gradient_rows(lo, hi, face_index, light, grad, grad_colours):
    """grad_colours (B, H, W, C) <- the colours' gradient from the stacked image's ``grad``: grad times
    the pixel's light where covered, 0 elsewhere (rows lo .. hi - 1)."""
    H, W = face_index.shape[1], face_index.shape[2]
    C = grad_colours.shape[3]
    lit, grey = light.shape[1] > 0, light.shape[2] == 1
    zero = np.float32(0.0)
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            f = face_index[b, r, c]
            for ch in range(C):
                g = grad[b, r, c, ch] if f >= 0 else zero
                grad_colours[b, r, c, ch] = g * light[b, f, 0 if grey else ch] if lit and f >= 0 else g


@jit
def light_gradient(lo, hi, face_index, colours, grad, grad_light):
    """grad_light (B, F, C') (zeroed) += grad times colour over each face's pixels, in raster order
    (C' = 1: the channels' products added in channel order for the grey light), batch entries
    lo .. hi - 1 (each job writes only its own entry's faces)."""
    _, H, W = face_index.shape
    C = colours.shape[3]
    grey = grad_light.shape[2] == 1
    for b in range(lo, hi):
        for r in range(H):
            for c in range(W):
                f = face_index[b, r, c]
                if f < 0:
                    continue
                if grey:
                    s = grad[b, r, c, 0] * colours[b, r, c, 0]
                    for ch in range(1, C):
                        s += grad[b, r, c, ch] * colours[b, r, c, ch]
                    grad_light[b, f, 0] += s
                else:
                    for ch in range(C):
                        grad_light[b, f, ch] += grad[b, r, c, ch] * colours[b, r, c, ch]


def compose(face_index, colours, light, background, alpha):
    """Numpy: the stacked image (B, H, W, C + alpha) float32 (see compose_rows); colours (B, H, W, C)
    (C = 0: alpha alone), light (B, F, C or 1) or (B, 0, 1) for none, background (C,)."""
    B, H, W = face_index.shape
    C = colours.shape[3]
    out = empty((B, H, W, C + int(alpha)), np.float32)
    run_jobs(compose_rows, B * H, face_index, colours, light, background, bool(alpha), out, work=out.size)
    return out


def compose_backward(face_index, colours, light, grad, want_colours, want_light):
    """Numpy (grad_colours (B, H, W, C) or None, grad_light like light or None) from ``grad``, the
    stacked image's gradient (its first C channels are the colours')."""
    B, H, W = face_index.shape
    C = colours.shape[3]
    grad_colours = grad_light = None
    if want_colours:
        grad_colours = empty((B, H, W, C), np.float32)
        run_jobs(colour_gradient_rows, B * H, face_index, light, grad, grad_colours, work=grad.size)
    if want_light:
        grad_light = zeros(light.shape, np.float32)
        run_jobs(light_gradient, B, face_index, colours, grad, grad_light, work=grad.size)
    return grad_colours, grad_light
