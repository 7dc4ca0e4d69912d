"""Analytic antialiasing (nvdiffrast's ``antialias``; Laine et al. 2020) in plain PyTorch: the reference
of the three ops ``antialias_pairs``, ``antialias`` and ``antialias_backward`` (docs/backend-contract.md).

Pixel pairs: pair (b, r, c, d) joins pixel p0 = (r, c) with its neighbour p1 = (r, c + 1) for d = 0
(across) or (r + 1, c) for d = 1 (up; maps are pre-flip). A pair whose face indices differ is blended
when the nearer face (the only one, next to background; ties to p0's) has a silhouette edge crossing
the segment between the two pixel centres, at least as steep as 45 degrees for d = 0 and at most 45
degrees for d = 1. In pixel coordinates relative to the face's own pixel centre, with u the axis
along the pair (x for d = 0, y for d = 1) and v the other one, an edge (i, j) crosses the segment's
line when v_i and v_j lie on different sides of 0 (``v < 0`` against ``v >= 0``), at
``t = (u_i v_j - u_j v_i) / (v_j - v_i)``; of the crossing edges the one farthest toward the other
pixel is the face's exit. With ``s = +1`` when the face is p0's and -1 when it is p1's, the crossing
lies at the fraction ``c = s t`` of the way from the face's pixel to the other; it counts when
-1/16 < c < 1 + 1/16 (rounding) and is then clamped to [0, 1]:

    alpha = s (1/2 - c),   out[T] += alpha (image[p1] - image[p0]),   T = p0 if alpha > 0 else p1,

that is, the pixel on the crossing's side of the midpoint moves toward its neighbour by |1/2 - c|:
for a straight edge its value becomes its exact area coverage along the pair's axis. Every pixel
adds its (at most four) pairs' terms in one order: right, up, left, below.

Backward: ``image`` gets the blend's own derivative (p0 gets -alpha g[T], p1 gets +alpha g[T]) and the
faces get, through c, ``dL/dt = -sum_C g[T] (image[p1] - image[p0])`` times the derivative of t with
respect to the edge's two vertices (zero where c was clamped); pixel units become NDC by the factors
W / 2 (x) and H / 2 (y). Depth, z and the other vertex get nothing.

Every function here works in the dtype of its inputs (float64 for finite differences).
"""
from typing import Tuple

import torch
from torch import Tensor

from .common import guarded

CROSSING_SLACK = 0.0625  # a crossing this far (in pixels) outside the pair's segment still counts (then clamped)
NO_EDGE = -1  # the edge code of a pair with no position gradient


def _to_pixels(ndc, size):
    """Pixel coordinate ``0.5 (v S + S - 1)`` of an NDC coordinate along an axis of S pixels."""
    return 0.5 * (ndc * size + size - 1)


def _ends(maps, d):
    """(p0, p1) views of ``maps`` (B, H, W, ...) for the pairs of direction d: (B, H - d, W - 1 + d, ...) each."""
    H, W = maps.shape[1:3]
    return maps[:, :H - d, :W - 1 + d], maps[:, d:, 1 - d:]


def _placed(values, d, at_second, shape):
    """(B, H, W, ...) zeros holding pair values (B, H - d, W - 1 + d, ...) at each pair's p0 (or p1)."""
    H, W = shape[1:3]
    out = values.new_zeros(shape)
    if at_second:
        out[:, d:, 1 - d:] = values
    else:
        out[:, :H - d, :W - 1 + d] = values
    return out


def encode(flat_face, edge, second):
    """The edge code of a pair: ((b F + f) 3 + k) 2 + s, for flat face b F + f, edge k = (k, k + 1 mod 3)
    and s = 1 when the face is the pair's second pixel's."""
    return (flat_face * 3 + edge) * 2 + second


def decode(code):
    """(flat face, edge, second) of edge codes (any shape, all >= 0)."""
    return code // 6, (code // 2) % 3, code % 2


class PairGeometry:
    """The pairs of one direction d whose face indices differ, N of them: batch entry, p0's row and
    column, whether the face is p1's (``second``), its flat index, and its corners relative to its own
    pixel centre in pixel units along the pair (u) and across it (v), (N, 3) each."""

    def __init__(self, faces, b, r, c, d, face, second, height, width):
        F = faces.shape[1]
        self.b, self.r, self.c, self.second = b, r, c, second
        self.flat = b * F + face
        corners = faces.reshape(-1, 3, 3)[self.flat]
        px = _to_pixels(corners[..., 0], width) - (c + (1 - d) * second).to(faces.dtype)[:, None]
        py = _to_pixels(corners[..., 1], height) - (r + d * second).to(faces.dtype)[:, None]
        self.u, self.v = (px, py) if d == 0 else (py, px)
        self.sign = 1.0 - 2.0 * second.to(faces.dtype)  # +1: the face is p0's


@guarded
def antialias_pairs(faces: Tensor, face_index: Tensor, depth: Tensor, silhouette: Tensor) -> Tuple[Tensor, Tensor]:
    """The blend of every pixel pair: (alpha (B, H, W, 2), edge (B, H, W, 2) int64); [..., d] is the pair
    of direction d at p0. alpha is 0 where nothing is blended; edge is the code (:func:`encode`) of
    the crossing edge where the position gradient flows, NO_EDGE elsewhere (no blend, or c clamped).

    faces (B, F, 3, 3) screen space, face_index (B, H, W), depth (B, H, W) and silhouette (B, F, 3)
    bool: whether edge k = (k, k + 1 mod 3) of each face may be a silhouette (see
    tritonnmr.gradients.silhouettes)."""
    B, F = faces.shape[:2]
    H, W = face_index.shape[1:]
    alpha = torch.zeros((B, H, W, 2), dtype=faces.dtype, device=faces.device)
    code = torch.full((B, H, W, 2), NO_EDGE, dtype=torch.int64, device=faces.device)
    for d in (0, 1):
        f0, f1 = _ends(face_index, d)
        z0, z1 = _ends(depth, d)
        second = (f0 < 0) | ((f1 >= 0) & (z1 < z0))
        b, r, c = torch.nonzero(f0 != f1, as_tuple=True)
        second = second[b, r, c].long()
        face = torch.where(second == 1, f1[b, r, c], f0[b, r, c])
        g = PairGeometry(faces, b, r, c, d, face, second, H, W)
        found = torch.zeros_like(b, dtype=torch.bool)
        best = torch.zeros_like(g.sign)
        best_edge = torch.zeros_like(b)
        steep = torch.zeros_like(found)
        for k in range(3):  # the crossing edge farthest toward the other pixel (ties: the lower k)
            ui, vi, uj, vj = g.u[:, k], g.v[:, k], g.u[:, (k + 1) % 3], g.v[:, (k + 1) % 3]
            crosses = (vi < 0) != (vj < 0)
            dv = vj - vi
            dc = g.sign * ((ui * vj - uj * vi) / torch.where(crosses, dv, 1.0))
            better = crosses & (~found | (dc > best))
            best = torch.where(better, dc, best)
            best_edge = torch.where(better, k, best_edge)
            steep = torch.where(better, dv.abs() >= (uj - ui).abs(), steep)
            found = found | crosses
        ok = found & silhouette[b, face, best_edge] & steep & (best > -CROSSING_SLACK) & (best < 1 + CROSSING_SLACK)
        clamped = best.clamp(0.0, 1.0)
        alpha[b, r, c, d] = torch.where(ok, g.sign * (0.5 - clamped), 0.0)
        code[b, r, c, d] = torch.where(ok & (clamped == best), encode(g.flat, best_edge, second), NO_EDGE)
    return alpha, code


def _target(alpha, at_p0, at_p1):
    """Per pair, the value of the pixel it blends: ``at_p0`` where alpha > 0, else ``at_p1``."""
    return torch.where(alpha > 0, at_p0, at_p1)


@guarded
def antialias(image: Tensor, alpha: Tensor) -> Tensor:
    """The blended image (B, H, W, C): image (B, H, W, C) plus, at each pair's target pixel T,
    ``alpha (image[p1] - image[p0])``, alpha (B, H, W, 2) from :func:`antialias_pairs`."""
    to_p0, to_p1 = [], []
    for d in (0, 1):
        a = _ends(alpha[..., d], d)[0][..., None]
        i0, i1 = _ends(image, d)
        term = a * (i1 - i0)
        to_p0.append(_placed(torch.where(a > 0, term, 0.0), d, False, image.shape))
        to_p1.append(_placed(torch.where(a > 0, 0.0, term), d, True, image.shape))
    return image + to_p0[0] + to_p0[1] + to_p1[0] + to_p1[1]  # right, up, left, below


@guarded
def antialias_backward(faces: Tensor, image: Tensor, alpha: Tensor, edge: Tensor,
                       grad: Tensor) -> Tuple[Tensor, Tensor]:
    """(grad_image (B, H, W, C), grad_faces (B, F, 3, 3)) of :func:`antialias` from grad (B, H, W, C),
    the faces' through the crossings of the pairs whose ``edge`` code is not NO_EDGE (z column 0)."""
    B, F = faces.shape[:2]
    H, W = image.shape[1:3]
    out = torch.zeros((B * F * 3, 3), dtype=faces.dtype, device=faces.device)
    at_p0, at_p1 = [], []
    for d in (0, 1):
        a = _ends(alpha[..., d], d)[0]
        g0, g1 = _ends(grad, d)
        i0, i1 = _ends(image, d)
        blend = a[..., None] * _target(a[..., None], g0, g1)
        at_p0.append(_placed(-blend, d, False, image.shape))
        at_p1.append(_placed(blend, d, True, image.shape))
        # the faces: every pair with a position gradient, through its crossing t
        b, r, c = torch.nonzero(_ends(edge[..., d], d)[0] >= 0, as_tuple=True)
        flat, k, second = decode(edge[b, r, c, d])
        g = PairGeometry(faces, b, r, c, d, flat % F, second, H, W)
        n = torch.arange(len(b), device=b.device)
        ui, vi, uj, vj = g.u[n, k], g.v[n, k], g.u[n, (k + 1) % 3], g.v[n, (k + 1) % 3]
        grad_t = -(_target(a[b, r, c][:, None], g0[b, r, c], g1[b, r, c]) * (i1[b, r, c] - i0[b, r, c])).sum(-1)
        dv, du = vj - vi, ui - uj
        # t = (u_i v_j - u_j v_i) / (v_j - v_i): its derivatives by u_i, u_j, v_i, v_j
        d_ui, d_uj = vj / dv, -vi / dv
        d_vi, d_vj = vj * du / (dv * dv), -vi * du / (dv * dv)
        scale_u, scale_v = (0.5 * W, 0.5 * H) if d == 0 else (0.5 * H, 0.5 * W)
        for vertex, along, across in ((k, d_ui, d_vi), ((k + 1) % 3, d_uj, d_vj)):
            gu, gv = grad_t * along * scale_u, grad_t * across * scale_v
            gx, gy = (gu, gv) if d == 0 else (gv, gu)
            out.index_add_(0, flat * 3 + vertex, torch.stack([gx, gy, torch.zeros_like(gx)], -1))
    grad_image = grad + at_p0[0] + at_p0[1] + at_p1[0] + at_p1[1]  # right, up, left, below
    return grad_image, out.view(B, F, 3, 3)
