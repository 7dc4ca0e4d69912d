"""Analytic antialiasing (gradient="analytic") as numba kernels: the reference's formulas
(backends/torch_antialias.py), in float32 and in the same order, so alpha, the edge codes, the blended
image and the image gradient equal the reference's bit for bit.

- ``pairs_kernel`` and ``gather_kernel`` (the blend, and the image's gradient): one job per image row
  (threads share the rows out, see _jit.run_jobs); each job writes only its own row's pairs or
  pixels, and a pixel adds its four pairs' terms in the reference's order (right, up, left, below).
- ``face_gradient``: serial, over the pairs with an edge code in the reference's order (direction, then
  the edge's first vertex before its second, then pixel order), adding into each face's gradient:
  the same sums on any number of threads.
"""
import numpy as np
import torch

from ..common import guarded
from ..torch_antialias import CROSSING_SLACK, NO_EDGE
from . import buffers
from ._jit import jit, run_jobs

_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_SLACK = np.float32(CROSSING_SLACK)


@jit
def corner(faces, b, f, k, row, col, d, height, width):
    """(u, v) of vertex k of face (b, f) in pixels from the centre (row, col): u along direction d
    (x for d = 0, y for d = 1), v across it."""
    hf, wf = np.float32(height), np.float32(width)
    px = _HALF * (faces[b, f, k, 0] * wf + wf - _ONE) - np.float32(col)
    py = _HALF * (faces[b, f, k, 1] * hf + hf - _ONE) - np.float32(row)
    if d == 0:
        return px, py
    return py, px


@jit
def pair(faces, face_index, depth, silhouette, b, r, c, d):
    """(alpha, code) of the pair at p0 = (b, r, c) in direction d (torch_antialias.antialias_pairs)."""
    H, W = face_index.shape[1], face_index.shape[2]
    F = faces.shape[1]
    r1, c1 = r + d, c + 1 - d
    f0, f1 = face_index[b, r, c], face_index[b, r1, c1]
    if f0 == f1:
        return _ZERO, NO_EDGE
    second = f0 < 0 or (f1 >= 0 and depth[b, r1, c1] < depth[b, r, c])
    face = f1 if second else f0
    row, col = (r1, c1) if second else (r, c)
    found, steep = False, False
    best, best_edge = _ZERO, 0
    for k in range(3):
        ui, vi = corner(faces, b, face, k, row, col, d, H, W)
        uj, vj = corner(faces, b, face, (k + 1) % 3, row, col, d, H, W)
        crosses = (vi < 0) != (vj < 0)
        dv = vj - vi
        t = (ui * vj - uj * vi) / (dv if crosses else _ONE)
        dc = -t if second else t
        if crosses and (not found or dc > best):
            best, best_edge, steep = dc, k, abs(dv) >= abs(uj - ui)
        found = found or crosses
    if not (found and silhouette[b, face, best_edge] and steep and best > -_SLACK and best < _ONE + _SLACK):
        return _ZERO, NO_EDGE
    clamped = min(max(best, _ZERO), _ONE)
    alpha = _HALF - clamped
    if second:
        alpha = -alpha
    if clamped != best:
        return alpha, NO_EDGE
    return alpha, ((b * F + face) * 3 + best_edge) * 2 + (1 if second else 0)


@jit
def pairs_kernel(lo, hi, faces, face_index, depth, silhouette, alpha, code):
    """alpha, code (B, H, W, 2) (made 0 and NO_EDGE by the caller) <- the pairs of rows lo .. hi - 1
    (jobs b * H + r)."""
    B, H, W = face_index.shape
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            for d in range(2):  # (pairs whose faces agree keep alpha 0 and no edge)
                if r + d < H and c + 1 - d < W and face_index[b, r, c] != face_index[b, r + d, c + 1 - d]:
                    alpha[b, r, c, d], code[b, r, c, d] = pair(faces, face_index, depth, silhouette, b, r, c, d)


@jit
def _term(alpha, values, b, r, c, ch, d, as_first, backward):
    """What the pair at p0 = (b, r, c) in direction d gives its first (``as_first``) or second pixel:
    forward (values: the image), ``alpha (values[p1] - values[p0])`` where that pixel is the one
    blended, else 0; backward (values: the gradient g), ``-alpha g[T]`` to p0 and ``+alpha g[T]`` to p1."""
    a = alpha[b, r, c, d]
    first, second = values[b, r, c, ch], values[b, r + d, c + 1 - d, ch]
    if backward:
        spread = a * (first if a > 0 else second)
        return -spread if as_first else spread
    if (a > 0) != as_first:
        return _ZERO
    return a * (second - first)


@jit
def gather_kernel(lo, hi, values, alpha, out, backward):
    """out (B, H, W, C) <- each pixel's value plus its pairs' terms (_term) in the order right, up,
    left, below: the blended image (values: the image) or the image's gradient (values: the
    gradient, ``backward``), rows (jobs b * H + r) lo .. hi - 1."""
    B, H, W, C = values.shape
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            right = c + 1 < W and alpha[b, r, c, 0] != 0
            up = r + 1 < H and alpha[b, r, c, 1] != 0
            left = c > 0 and alpha[b, r, c - 1, 0] != 0
            below = r > 0 and alpha[b, r - 1, c, 1] != 0
            for ch in range(C):
                value = values[b, r, c, ch]
                if right or up or left or below:  # (a zero term adds nothing: skipped)
                    value = value + (_term(alpha, values, b, r, c, ch, 0, True, backward) if right else _ZERO)
                    value = value + (_term(alpha, values, b, r, c, ch, 1, True, backward) if up else _ZERO)
                    value = value + (_term(alpha, values, b, r, c - 1, ch, 0, False, backward) if left else _ZERO)
                    value = value + (_term(alpha, values, b, r - 1, c, ch, 1, False, backward) if below else _ZERO)
                out[b, r, c, ch] = value


@jit
def face_gradient(faces, image, alpha, code, listed, grad, out):
    """out (B, F, 3, 3) <- the faces' gradient through the crossings of the pairs ``listed`` (flat pair
    ids 2 p + d, ascending: those with an edge code)."""
    B, H, W, C = image.shape
    F = faces.shape[1]
    for d in range(2):
        su = _HALF * np.float32(W if d == 0 else H)
        sv = _HALF * np.float32(H if d == 0 else W)
        for role in range(2):  # the edge's first vertex, then its second
            for q in listed:
                if q % 2 != d:
                    continue
                b, r, c = q // 2 // (H * W), q // 2 // W % H, q // 2 % W
                e = code[b, r, c, d]
                flat, k, second = e // 6, (e // 2) % 3, e % 2
                f = flat % F
                r1, c1 = r + d, c + 1 - d
                row, col = (r1, c1) if second else (r, c)
                ui, vi = corner(faces, b, f, k, row, col, d, H, W)
                uj, vj = corner(faces, b, f, (k + 1) % 3, row, col, d, H, W)
                a = alpha[b, r, c, d]
                dalpha = _ZERO
                for ch in range(C):
                    g = grad[b, r, c, ch] if a > 0 else grad[b, r1, c1, ch]
                    dalpha += g * (image[b, r1, c1, ch] - image[b, r, c, ch])
                grad_t = -dalpha
                dv, du = vj - vi, ui - uj
                if role == 0:
                    along, across, vertex = vj / dv, vj * du / (dv * dv), k
                else:
                    along, across, vertex = -vi / dv, -vi * du / (dv * dv), (k + 1) % 3
                gu, gv = grad_t * along * su, grad_t * across * sv
                out[b, f, vertex, 0] += gu if d == 0 else gv
                out[b, f, vertex, 1] += gv if d == 0 else gu


def _np(t):
    return t.detach().numpy()


@guarded
def antialias_pairs(faces, face_index, depth, silhouette):
    """(alpha (B, H, W, 2) float32, edge (B, H, W, 2) int64) of every pixel pair: see torch_antialias."""
    B, H, W = face_index.shape
    alpha = buffers.zeros((B, H, W, 2), np.float32)
    code = buffers.full((B, H, W, 2), NO_EDGE, np.int64)
    run_jobs(pairs_kernel, B * H, _np(faces), _np(face_index), _np(depth), _np(silhouette), alpha, code)
    return torch.from_numpy(alpha), torch.from_numpy(code)


@guarded
def antialias(image, alpha):
    """(B, H, W, C) float32: image blended along the pairs' alpha (B, H, W, 2)."""
    out = buffers.empty(tuple(image.shape), np.float32)
    run_jobs(gather_kernel, image.shape[0] * image.shape[1], _np(image), _np(alpha), out, False)
    return torch.from_numpy(out)


@guarded
def antialias_backward(faces, image, alpha, edge, grad):
    """(grad_image (B, H, W, C), grad_faces (B, F, 3, 3)) float32 of :func:`antialias`."""
    grad_image = buffers.empty(tuple(grad.shape), np.float32)
    run_jobs(gather_kernel, grad.shape[0] * grad.shape[1], _np(grad), _np(alpha), grad_image, True)
    grad_faces = buffers.zeros(tuple(faces.shape), np.float32)
    code = _np(edge)
    face_gradient(_np(faces), _np(image), _np(alpha), code, np.flatnonzero(code.reshape(-1) >= 0), _np(grad),
                  grad_faces)
    return torch.from_numpy(grad_image), torch.from_numpy(grad_faces)
