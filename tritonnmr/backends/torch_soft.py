"""The soft rasterizer's ops (``gradient="soft"``; Liu et al. 2019), the readable reference.

A face j reaches pixel p when it is drawn (front-facing, non-zero area, finite), p's centre lies
inside it or within ``radius`` of it, and the perspective-correct depth at the barycentric point
clamped to the face lies in (near, far). Distances are taken in *square NDC*: NDC scaled so that
the shorter image side spans [-1, 1] (``square_scale``), in which a pixel is 2 / min(H, W) across in
both directions; on a square image that is plain NDC, SoftRas's unit.

``soft_fragments`` lists those (pixel, face) pairs, pixel by pixel (flat b H W + r W + c ascending),
faces ascending within a pixel, with per pair

- ``d2``: the signed squared distance ``s d^2`` (s = +1 inside, -1 outside) from the pixel centre to
  the face, ``d^2 = min over the three edges of the squared distance to the edge segment``;
- ``depth``: ``1 / sum_k w_k / z_k`` with w the screen-space barycentrics clamped to [0, 1] and
  renormalised (the hard rasterizer's weights, now also outside the face);
- ``bary``: the perspective-correct barycentrics ``w_k depth / z_k`` of that point (what shaders take).

``soft_blend`` makes the pixel's alpha ``1 - prod_j (1 - D_j)`` and colour
``(sum_j D_j w_j C_j + w_bg C_bg) / (sum_j D_j w_j + w_bg)``, with ``D_j = sigmoid(d2_j / sigma)``,
``w_j = exp((zn_j - zmax) / gamma)`` for the normalised depth ``zn_j = (far - depth_j) / (far - near)``,
``w_bg = exp((eps - zmax) / gamma)`` and ``zmax = max(eps, max_j zn_j)`` (subtracting the largest
exponent, which cancels in the ratio, keeps every exp finite). The backward ops are the exact
derivatives of these.
"""
from typing import NamedTuple

import torch

from .common import drawn, expand

CHUNK = 1 << 21  # candidate (face, pixel) pairs handled at once


def square_scale(height, width):
    """(ax, ay): square NDC is (ax x, ay y), the shorter side spanning [-1, 1]."""
    short = min(height, width)
    return width / short, height / short


def _pixel_centre(index, size):
    return (2.0 * index + 1.0 - size) / size


class Geometry(NamedTuple):
    """A face seen from a pixel centre (every field (N,) or (N, 3))."""
    d2: torch.Tensor      # signed squared distance in square NDC
    edge: torch.Tensor    # the nearest edge e (vertices e, e + 1)
    t: torch.Tensor       # where on it: the closest point is a + t (b - a), t in [0, 1]
    gap: torch.Tensor     # (N, 2): pixel centre minus closest point, square NDC
    raw: torch.Tensor     # (N, 3) screen-space barycentrics, unclamped
    weights: torch.Tensor  # (N, 3) clamped to [0, 1] and renormalised
    depth: torch.Tensor
    bary: torch.Tensor    # (N, 3) perspective-correct: weights_k depth / z_k


def geometry(tri, xp, yp, ax, ay):
    """The :class:`Geometry` of faces ``tri`` (N, 3, 3) (x, y NDC, z depth) at pixel centres (xp, yp)."""
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    # inside: on the inner side of, or on, all three edges (the hard rasterizer's test)
    inside = torch.ones_like(xp, dtype=torch.bool)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        inside &= (yp - y[:, a]) * (x[:, b] - x[:, a]) >= (xp - x[:, a]) * (y[:, b] - y[:, a])
    # squared distance to each edge segment, in square NDC
    px, py = ax * xp, ay * yp
    sx, sy = ax * x, ay * y
    best = None
    for e in range(3):
        a, b = e, (e + 1) % 3
        ex, ey = sx[:, b] - sx[:, a], sy[:, b] - sy[:, a]
        length2 = ex * ex + ey * ey
        t = ((px - sx[:, a]) * ex + (py - sy[:, a]) * ey) / torch.where(length2 > 0, length2, 1.0)
        t = torch.where(length2 > 0, t.clamp(0.0, 1.0), 0.0)
        gx, gy = px - (sx[:, a] + t * ex), py - (sy[:, a] + t * ey)
        dist2 = gx * gx + gy * gy
        if best is None:
            best = [dist2, torch.zeros_like(xp, dtype=torch.long), t, gx, gy]
        else:
            nearer = dist2 < best[0]  # ties keep the lower edge
            for i, value in enumerate((dist2, torch.full_like(best[1], e), t, gx, gy)):
                best[i] = torch.where(nearer, value, best[i])
    dist2, edge, t, gx, gy = best
    # screen-space barycentrics (as reference.barycentric, but kept raw too)
    x0, x1, x2 = x.unbind(1)
    y0, y1, y2 = y.unbind(1)
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    raw = torch.stack([((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1)) / det,
                       ((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2)) / det,
                       ((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0)) / det], 1)
    clamped = raw.clamp(0.0, 1.0)
    weights = clamped / clamped.sum(1, keepdim=True)
    depth = 1.0 / (weights / z).sum(1)
    bary = weights * depth[:, None] / z
    return Geometry(torch.where(inside, dist2, -dist2), edge, t, torch.stack([gx, gy], 1), raw, weights, depth, bary)


def _boxes(faces, height, width, radius):
    """Per flat face: the first and last pixel column and row its box grown by ``radius`` (square NDC)
    reaches, clipped to the image, and its number of pixels (0 for faces that are not drawn)."""
    flat = faces.reshape(-1, 3, 3)
    grow = radius * min(height, width) / 2.0  # pixels
    live = drawn(faces).reshape(-1) & (flat[..., 2] != 0).all(1)
    out = []
    for axis, size in ((0, width), (1, height)):
        coord = torch.where(live[:, None], flat[..., axis], 0.0)
        lo = (0.5 * (coord.min(1).values * size + size - 1) - grow).floor()
        hi = (0.5 * (coord.max(1).values * size + size - 1) + grow).ceil()
        live = live & (hi >= 0) & (lo <= size - 1)
        out.append((lo.clamp(0, size - 1).long(), hi.clamp(0, size - 1).long()))
    (lo_x, hi_x), (lo_y, hi_y) = out
    count = torch.where(live, (hi_x - lo_x + 1) * (hi_y - lo_y + 1), 0)
    return lo_x, lo_y, hi_x - lo_x + 1, count


def soft_fragments(faces, height, width, near, far, radius):
    """The pairs (see the module's docstring): (pixel (N,) int64, face (N,) int64 flat b F + f, d2 (N,),
    depth (N,), bary (N, 3)), pixel-major, faces ascending within a pixel."""
    B, F = faces.shape[:2]
    H, W = height, width
    flat = faces.reshape(B * F, 3, 3)
    ax, ay = square_scale(H, W)
    lo_x, lo_y, nx, count = _boxes(faces, H, W, radius)
    ids = torch.nonzero(count).flatten()
    kept = []
    costs = count[ids]
    start = 0
    while start < len(ids):  # faces in chunks of about CHUNK candidate pairs
        stop = start + max(1, int((torch.cumsum(costs[start:], 0) <= CHUNK).sum()))
        fid = ids[start:stop]
        owner, local = expand(count[fid])
        face = fid[owner]
        px = lo_x[face] + local % nx[face]
        py = lo_y[face] + local // nx[face]
        g = geometry(flat[face], _pixel_centre(px.to(faces.dtype), W), _pixel_centre(py.to(faces.dtype), H), ax, ay)
        keep = ((g.d2 >= 0) | (-g.d2 < radius * radius)) & (g.depth > near) & (g.depth < far)
        pixel = (face // F) * H * W + py * W + px
        kept.append((pixel[keep], face[keep], g.d2[keep], g.depth[keep], g.bary[keep]))
        start = stop
    if not kept:
        empty = torch.zeros(0, dtype=torch.long, device=faces.device)
        return empty, empty.clone(), faces.new_zeros(0), faces.new_zeros(0), faces.new_zeros(0, 3)
    pixel, face, d2, depth, bary = (torch.cat(parts) for parts in zip(*kept))
    order = torch.sort(pixel * max(B * F, 1) + face).indices
    return pixel[order], face[order], d2[order], depth[order], bary[order]


def pair_centres(pixel, height, width, dtype=torch.float32):
    """NDC centres (xp, yp) of flat pixel ids."""
    column = pixel % width
    row = (pixel // width) % height
    return _pixel_centre(column.to(dtype), width), _pixel_centre(row.to(dtype), height)


def pair_gradient(tri, xp, yp, ax, ay, grad_d2, grad_depth, grad_bary):
    """(N, 3, 3): the gradient of ``sum(grad_d2 d2 + grad_depth depth + grad_bary . bary)`` with respect
    to each pair's face ``tri`` (N, 3, 3), exactly.

    - d2 = s |p - c|^2 with c = a + t (b - a) the closest point of the nearest edge: by the envelope
      theorem ``d d2 / d a = -2 s (p - c)(1 - t)`` and ``d d2 / d b = -2 s (p - c) t`` (square NDC;
      times ax, ay for NDC).
    - depth z = 1 / q, q = sum_m w_m / z_m, and bary_k = w_k z / z_k. With G = g_z z + sum_k g_k bary_k:
      ``dL / dw_m = (z / z_m)(g_m - G)`` and ``dL / dz_m = -(w_m / z_m) dL / dw_m`` (the explicit z_m).
    - w = c / sum c with c = clamp(raw, 0, 1): ``dL / dc_n = (dL / dw_n - sum_m w_m dL / dw_m) / sum c``,
      passed to raw where 0 < raw < 1.
    - raw barycentrics: moving vertex k by delta changes raw_m by ``-raw_k grad_p(raw_m) . delta``, with
      grad_p(raw_m) = (A_m, B_m) / det.
    """
    g = geometry(tri, xp, yp, ax, ay)
    N = tri.shape[0]
    out = torch.zeros_like(tri)
    # the distance term
    sign = torch.where(g.d2 >= 0, 1.0, -1.0)
    scale = tri.new_tensor([ax, ay])
    pull = -2.0 * (sign * grad_d2)[:, None] * g.gap * scale  # (N, 2)
    n = torch.arange(N, device=tri.device)
    a, b = g.edge, (g.edge + 1) % 3
    out[n, a, :2] += pull * (1.0 - g.t)[:, None]
    out[n, b, :2] += pull * g.t[:, None]
    # the depth and barycentric terms
    z = tri[..., 2]
    G = grad_depth * g.depth + (grad_bary * g.bary).sum(1)
    d_w = (g.depth[:, None] / z) * (grad_bary - G[:, None])          # dL / dw_m
    out[..., 2] += -(g.weights / z) * d_w                            # explicit z_m
    total = g.raw.clamp(0.0, 1.0).sum(1, keepdim=True)
    d_c = (d_w - (g.weights * d_w).sum(1, keepdim=True)) / total     # dL / dc_n
    d_raw = torch.where((g.raw > 0) & (g.raw < 1), d_c, 0.0)
    x0, x1, x2 = tri[..., 0].unbind(1)
    y0, y1, y2 = tri[..., 1].unbind(1)
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    grad_x = torch.stack([y1 - y2, y2 - y0, y0 - y1], 1) / det[:, None]  # d raw_m / d xp
    grad_y = torch.stack([x2 - x1, x0 - x2, x1 - x0], 1) / det[:, None]  # d raw_m / d yp
    sx, sy = (d_raw * grad_x).sum(1), (d_raw * grad_y).sum(1)
    out[..., 0] += -g.raw * sx[:, None]
    out[..., 1] += -g.raw * sy[:, None]
    return out


def soft_fragments_backward(faces, height, width, pixel, face, grad_d2, grad_depth, grad_bary):
    """Gradient (B, F, 3, 3) to the faces from the gradients of the pairs' d2 (N,), depth (N,) and
    bary (N, 3) (see :func:`pair_gradient`); every pair's face gathers its pairs' terms."""
    B, F = faces.shape[:2]
    ax, ay = square_scale(height, width)
    out = torch.zeros((B * F, 3, 3), dtype=faces.dtype, device=faces.device)
    for start in range(0, pixel.numel(), CHUNK):
        sl = slice(start, start + CHUNK)
        xp, yp = pair_centres(pixel[sl], height, width, faces.dtype)
        grad = pair_gradient(faces.reshape(B * F, 3, 3)[face[sl]], xp, yp, ax, ay, grad_d2[sl], grad_depth[sl],
                             grad_bary[sl])
        out.index_add_(0, face[sl], grad)
    return out.view(B, F, 3, 3)


# ----------------------------------------------------------------------------------------------
# Aggregation per pixel
# ----------------------------------------------------------------------------------------------
class Blend(NamedTuple):
    """Per pair and per pixel quantities of the aggregation."""
    D: torch.Tensor        # (N,) sigmoid(d2 / sigma)
    keep: torch.Tensor     # (N,) 1 - D = sigmoid(-d2 / sigma), computed directly (no cancellation)
    w: torch.Tensor        # (N,) exp((zn - zmax) / gamma)
    w_bg: torch.Tensor     # (P,) per pixel
    S: torch.Tensor        # (P,) sum D w + w_bg
    others: torch.Tensor   # (N,) prod over the pixel's other pairs of (1 - D)
    alpha: torch.Tensor    # (P,)


def _blend(pixel, d2, depth, num_pixels, sigma, gamma, eps, near, far):
    D, keep = torch.sigmoid(d2 / sigma), torch.sigmoid(-d2 / sigma)
    zn = (far - depth) / (far - near)
    zmax = torch.full((num_pixels,), eps, dtype=d2.dtype, device=d2.device).scatter_reduce(0, pixel, zn, "amax")
    w = torch.exp((zn - zmax[pixel]) / gamma)
    w_bg = torch.exp((eps - zmax) / gamma)
    S = w_bg.index_add(0, pixel, D * w)
    # prod of (1 - D) over the pixel, and over its other pairs, without dividing by a zero factor
    zero = keep == 0
    nonzero = torch.ones(num_pixels, dtype=d2.dtype, device=d2.device).scatter_reduce(
        0, pixel, torch.where(zero, 1.0, keep), "prod")
    zeros = torch.zeros(num_pixels, dtype=torch.long, device=d2.device).index_add(0, pixel, zero.long())
    alpha = 1.0 - torch.where(zeros > 0, 0.0, nonzero)
    n0 = zeros[pixel]
    others = torch.where(zero, torch.where(n0 == 1, nonzero[pixel], 0.0),
                         torch.where(n0 == 0, nonzero[pixel] / torch.where(zero, 1.0, keep), 0.0))
    return Blend(D, keep, w, w_bg, S, others, alpha)


def soft_blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far):
    """(rgb (P, C), alpha (P,)) of ``num_pixels`` pixels from the pairs (pixel (N,), d2 (N,), depth (N,),
    colours (N, C) (C may be 0: alpha alone)); background (C,)."""
    s = _blend(pixel, d2, depth, num_pixels, sigma, gamma, eps, near, far)
    numerator = (s.w_bg[:, None] * background[None, :]).index_add(0, pixel, (s.D * s.w)[:, None] * colours)
    return numerator / s.S[:, None], s.alpha


def soft_blend_backward(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far,
                        grad_rgb, grad_alpha):
    """(grad_d2 (N,), grad_depth (N,), grad_colours (N, C)) of :func:`soft_blend` from grad_rgb (P, C)
    and grad_alpha (P,). Every pair's gradient depends on its own pixel only:

    ``d alpha / d D_j = prod_{k != j} (1 - D_k)``; with rgb = N / S, ``d rgb / d D_j = w_j (C_j - rgb) / S``,
    ``d rgb / d w_j = D_j (C_j - rgb) / S``, ``d rgb / d C_j = D_j w_j / S``; ``dD/d d2 = D (1 - D) / sigma``,
    ``dw/d depth = -w / (gamma (far - near))``.
    """
    s = _blend(pixel, d2, depth, num_pixels, sigma, gamma, eps, near, far)
    rgb, _ = soft_blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far)
    g = grad_rgb[pixel]                                     # (N, C)
    spread = ((colours - rgb[pixel]) * g).sum(1) / s.S[pixel]  # sum_c g_c (C_jc - rgb_c) / S
    d_D = grad_alpha[pixel] * s.others + s.w * spread
    grad_d2 = d_D * s.D * s.keep / sigma
    grad_depth = -s.D * spread * s.w / (gamma * (far - near))
    grad_colours = (s.D * s.w / s.S[pixel])[:, None] * g
    return grad_d2, grad_depth, grad_colours
