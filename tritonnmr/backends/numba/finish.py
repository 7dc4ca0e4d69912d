"""The last step of a render as one numba pass each way: pre-flip maps (B, H, W, C) to the pictures
(pooled 2 x 2 when anti-aliasing, flipped so that row 0 is the top), split into named parts.

This is glue that the torch path does with several image-sized operations (permute, avg_pool2d, flip,
the split, and their backwards); here it is one pass over the output rows, shared out by
``_jit.run_jobs`` (each job writes only its own rows). The pooled value is
``(((a00 + a01) + a10) + a11) / 4``, avg_pool2d's order, so the pictures equal torch's bit for bit.
"""
import numpy as np

from .buffers import empty
from ._jit import jit, run_jobs


@jit
def finish_rows(lo, hi, image, pool, part, local, outs):
    """outs[part[c]][b, local[c], y, x] <- channel c of ``image`` (B, H, W, C) at picture row y
    (jobs b * h + y, lo .. hi - 1): rows flipped, 2 x 2 means when ``pool``."""
    H, W, C = image.shape[1], image.shape[2], image.shape[3]
    s = 2 if pool else 1
    h, w = H // s, W // s
    quarter = np.float32(4.0)
    for job in range(lo, hi):
        b, y = job // h, job % h
        r = (h - 1 - y) * s  # the first pre-flip row of picture row y
        for c in range(C):
            out, k = outs[part[c]], local[c]
            if pool:
                for x in range(w):
                    v = image[b, r, 2 * x, c] + image[b, r, 2 * x + 1, c]
                    v = v + image[b, r + 1, 2 * x, c]
                    v = v + image[b, r + 1, 2 * x + 1, c]
                    out[b, k, y, x] = v / quarter
            else:
                for x in range(w):
                    out[b, k, y, x] = image[b, r, x, c]


@jit
def unfinish_rows(lo, hi, grad, present, first, pool, grad_image):
    """Channels first .. first + n - 1 of grad_image (B, H, W, C) <- the gradient of
    :func:`finish_rows` from one part's gradient ``grad`` (B, n, h, w), any strides (zeros where not
    ``present``): a quarter of each picture pixel's gradient to each of its 4 pixels when ``pool``.
    Jobs b * h + y (picture rows), lo .. hi - 1."""
    H, W = grad_image.shape[1], grad_image.shape[2]
    n = grad.shape[1]
    s = 2 if pool else 1
    h, w = H // s, W // s
    zero, quarter = np.float32(0.0), np.float32(4.0)
    for job in range(lo, hi):
        b, y = job // h, job % h
        r = (h - 1 - y) * s
        for k in range(n):
            c = first + k
            for x in range(w):
                v = grad[b, k, y, x] if present else zero
                if pool:
                    v = v / quarter
                    grad_image[b, r, 2 * x, c] = v
                    grad_image[b, r, 2 * x + 1, c] = v
                    grad_image[b, r + 1, 2 * x, c] = v
                    grad_image[b, r + 1, 2 * x + 1, c] = v
                else:
                    grad_image[b, r, x, c] = v


def _channel_map(sizes):
    """(part (C,), local channel (C,)) int64 of the parts' channel counts ``sizes``."""
    part = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    local = np.concatenate([np.arange(n) for n in sizes]).astype(np.int64)
    return part, local


def finish(image, sizes, pool, squeeze):
    """Numpy pre-flip ``image`` (B, H, W, C) float32 -> the parts (B, sizes[i], h, w) float32, or
    (B, h, w) where squeeze[i] (a one-channel part), pooled when ``pool`` (H and W even), flipped
    (sum(sizes) == C)."""
    B, H, W, _ = image.shape
    s = 2 if pool else 1
    h, w = H // s, W // s
    parts = [empty((B, h, w) if flat else (B, n, h, w), np.float32) for n, flat in zip(sizes, squeeze)]
    part, local = _channel_map(sizes)
    run_jobs(finish_rows, B * h, image, pool, part, local, tuple(p.reshape(B, n, h, w) for p, n in zip(parts, sizes)),
             work=image.size)
    return parts


def finish_backward(grads, sizes, pool, height, width):
    """The gradient (B, H, W, C) float32 of the pre-flip image from the parts' gradients ``grads``
    (numpy (B, sizes[i], h, w) or (B, h, w) float32 arrays of any strides, or None for a part without
    one), a pass per part."""
    B = next(g for g in grads if g is not None).shape[0]
    s = 2 if pool else 1
    h, w = height // s, width // s
    grad_image = empty((B, height, width, sum(sizes)), np.float32)
    first = 0
    for g, n in zip(grads, sizes):
        part = np.zeros((B, n, 1, 1), np.float32) if g is None else g.reshape(B, n, h, w)
        run_jobs(unfinish_rows, B * h, part, g is not None, first, pool, grad_image, work=grad_image.size)
        first += n
    return grad_image
