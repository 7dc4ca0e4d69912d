"""The naive PyTorch rasterizer: the backend contract's ops written to be read (the oracle).

It is the test oracle, the CPU fallback and the benchmark baseline; the Triton kernels
(``backends/triton/``) and the numba CPU backend (``backends/numba/``) implement the same functions
with the same arguments (the list is ``backends.OPS``; the conventions are in docs/backend-contract.md).

Maps are pre-flip: row ``r`` of a (B, H, W) map is the pixel row whose centre is at NDC
``y = (2r + 1 - H) / H`` (row 0 is the bottom of the picture), column ``c`` is at
``x = (2c + 1 - W) / W``. Screen-space faces are (B, F, 3, 3) float32: ``faces[b, f, k] = (x, y, z)``,
x and y in NDC, z the depth. Face index maps are int64, -1 where no face covers the pixel.

Memory stays bounded: faces are expanded to (face, pixel) pairs and edges to (scanline, pixel) pairs
in chunks of about ``CHUNK`` elements.
"""
from typing import NamedTuple

import torch

from ..checks import on_device
from .common import EMPTY_KEY, cube_top, drawn, expand, guarded, visible
from .torch_antialias import antialias, antialias_backward, antialias_pairs  # noqa: F401 (the contract's ops)

CHUNK = 1 << 21  # (face, pixel) or (scanline, pixel) pairs handled at once
CORNERS = tuple(tuple(bool((corner >> k) & 1) for k in range(3)) for corner in range(8))  # cube corner c, axis k


# ----------------------------------------------------------------------------------------------
# Geometry shared by the forward and backward passes (``drawn``: front-facing, non-zero area, finite)
# ----------------------------------------------------------------------------------------------


def pixel_centre(index, size):
    """NDC coordinate of the centre of pixel ``index`` along an axis of ``size`` pixels."""
    return (2.0 * index + 1.0 - size) / size


def to_pixels(ndc, size):
    """Pixel coordinate of an NDC coordinate along an axis of ``size`` pixels: 0.5 (v S + S - 1)."""
    return 0.5 * (ndc * size + size - 1)


def inside(xs, ys, xp, yp):
    """Pixel centre (xp, yp) is on the inner side of, or on, all three edges of the face."""
    ok = torch.ones_like(xp, dtype=torch.bool)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ok &= (yp - ys[a]) * (xs[b] - xs[a]) >= (xp - xs[a]) * (ys[b] - ys[a])
    return ok


def barycentric(xs, ys, xp, yp):
    """Screen-space barycentric weights of (xp, yp), clamped to [0, 1] and renormalised.

    ``w_k = (A_k xp + B_k yp + C_k) / det`` with (A_k, B_k, C_k) the rows of the inverse of
    [[x0, x1, x2], [y0, y1, y2], [1, 1, 1]] times det.
    """
    x0, x1, x2 = xs
    y0, y1, y2 = ys
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    w0 = ((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1)) / det
    w1 = ((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2)) / det
    w2 = ((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0)) / det
    w0, w1, w2 = (w.clamp(0.0, 1.0) for w in (w0, w1, w2))
    total = w0 + w1 + w2
    return w0 / total, w1 / total, w2 / total


def perspective_depth(ws, zs):
    """Perspective-correct depth: ``1 / z = sum_k w_k / z_k``."""
    return 1.0 / (ws[0] / zs[0] + ws[1] / zs[1] + ws[2] / zs[2])


def _columns(face_rows):
    """(N, 3, 3) face rows -> ((x0, x1, x2), (y0, y1, y2), (z0, z1, z2)), each entry (N,)."""
    return tuple(tuple(face_rows[:, k, d] for k in range(3)) for d in range(3))


def _chunks_by_cost(costs, limit=CHUNK):
    """Split items into consecutive groups of summed cost about ``limit`` (at most limit + one item)."""
    if len(costs) == 0:
        return []
    group = torch.div(torch.cumsum(costs, 0) - costs, limit, rounding_mode="floor")
    edges = torch.nonzero(group[1:] != group[:-1]).flatten() + 1
    bounds = [0] + edges.tolist() + [len(costs)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _pixel_box(coords, size):
    """First and last pixel index (float) of a face's bounding box along one axis, clipped."""
    lo = to_pixels(coords.min(1).values, size).floor().clamp(0, size - 1)
    hi = to_pixels(coords.max(1).values, size).ceil().clamp(0, size - 1)
    return lo, hi


# ----------------------------------------------------------------------------------------------
# Forward: z-buffered face index, weights and depth
# ----------------------------------------------------------------------------------------------
@guarded
def rasterize_fragments(faces, height, width, near, far):
    """Face index (B, H, W) int64, weights (B, H, W, 3) and depth (B, H, W) maps of ``faces``.

    Empty pixels have face index -1, weights 0 and depth ``far`` (see :func:`zbuffer`)."""
    return _decode(zbuffer(faces, height, width, near, far)[0], faces, far)


def zbuffer(faces, height, width, near, far):
    """(key map (B, H, W) int64, number of covered (face, pixel) pairs, a 0-dim tensor).

    Face-parallel: every drawn face is expanded into the pixels of its clipped bounding box;
    covered pixels with ``near < z < far`` compete through a 64-bit key (the float bits of z above
    the face index; z > 0 so the bits order like the floats): the nearest face wins, ties go to
    the lower index; pixels no face covers keep EMPTY_KEY.
    """
    B, F = faces.shape[:2]
    H, W = height, width
    flat = faces.reshape(B * F, 3, 3)
    valid = drawn(faces).reshape(-1)
    lo_x, hi_x = _pixel_box(flat[..., 0], W)
    lo_y, hi_y = _pixel_box(flat[..., 1], H)
    box_w = torch.where(valid, hi_x - lo_x + 1, 0).long()
    box_h = torch.where(valid, hi_y - lo_y + 1, 0).long()
    ids = torch.nonzero(valid).flatten()
    area = (box_w * box_h)[ids]
    zbuf = torch.full((B * H * W,), EMPTY_KEY, dtype=torch.int64, device=faces.device)
    hits = torch.zeros((), dtype=torch.int64, device=faces.device)
    for start, stop in _chunks_by_cost(area):
        face_id = ids[start:stop]
        owner, offset = expand(area[start:stop])
        fid = face_id[owner]
        px = lo_x[fid].long() + offset % box_w[fid]
        py = lo_y[fid].long() + torch.div(offset, box_w[fid], rounding_mode="floor")
        xp, yp = pixel_centre(px.float(), W), pixel_centre(py.float(), H)
        fx, fy, fz = (tuple(c[fid] for c in t) for t in _columns(flat))
        z = perspective_depth(barycentric(fx, fy, xp, yp), fz)
        cover = inside(fx, fy, xp, yp) & (z > near) & (z < far)
        key = (z[cover].view(torch.int32).long() << 32) | (fid[cover] % F)
        pixel = (fid[cover] // F) * H * W + py[cover] * W + px[cover]
        zbuf.scatter_reduce_(0, pixel, key, reduce="amin")
        hits += cover.sum()
    return zbuf.view(B, H, W), hits


def _decode(zbuf, faces, far):
    """Key map -> face index, weights (recomputed at the pixel centres) and depth (the key's bits)."""
    B, H, W = zbuf.shape
    F = faces.shape[1]
    hit = zbuf != EMPTY_KEY
    face_index = torch.where(hit, zbuf & 0xFFFFFFFF, -1)
    depth = torch.full((B, H, W), float(far), dtype=faces.dtype, device=faces.device)
    depth[hit] = (zbuf[hit] >> 32).int().view(torch.float32)
    weights = torch.zeros((B, H, W, 3), dtype=faces.dtype, device=faces.device)
    b, py, px = torch.nonzero(hit, as_tuple=True)
    fx, fy, _ = _columns(faces.reshape(B * F, 3, 3)[b * F + face_index[hit]])
    ws = barycentric(fx, fy, pixel_centre(px.to(faces.dtype), W), pixel_centre(py.to(faces.dtype), H))
    weights[hit] = torch.stack(ws, dim=-1)
    return face_index, weights, depth


@guarded
def perspective_barycentrics(faces, face_index, weights, depth):
    """(B, H, W, 3) perspective-correct barycentrics ``bary_k = w_k z / z_k`` of each covered pixel
    in its face (they sum to 1), 0 where empty: what the shading ops take."""
    hit, batch, face, w, z = _covered(face_index, weights, depth)
    out = torch.zeros_like(weights)
    out[hit] = w * z[:, None] / faces[batch, face][:, :, 2]
    return out


def _covered(face_index, *maps):
    """Mask of covered pixels, the (batch, face) of each, and ``maps`` at those pixels."""
    hit = face_index >= 0
    batch = torch.nonzero(hit, as_tuple=True)[0]
    return (hit, batch, face_index[hit]) + tuple(m[hit] for m in maps)


# ----------------------------------------------------------------------------------------------
# Depth backward: exact derivative of z = 1 / sum_k w_k / z_k for the winning face
# ----------------------------------------------------------------------------------------------
@guarded
def depth_backward(faces, face_index, weights, depth, grad_depth):
    """Gradient (B, F, 3, 3) of the loss with respect to the screen-space faces, through depth.

    With ``q = sum_m w_m / z_m`` and ``z = 1 / q``: dz/dz_k = z^2 w_k / z_k^2, and since moving
    vertex k by delta changes every weight by ``-w_k grad_p(w_m) . delta``,
    dz/d(x_k, y_k) = z^2 w_k sum_m grad_p(w_m) / z_m with grad_p(w_m) = (A_m, B_m) / det.
    Only covered pixels contribute, and a face covers pixels only when det != 0 and z_k != 0.
    """
    B, F = faces.shape[:2]
    _, batch, face, w, z, g = _covered(face_index, weights, depth, grad_depth)
    (x0, x1, x2), (y0, y1, y2), zk = _columns(faces[batch, face])
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    grad_w_x = torch.stack([y1 - y2, y2 - y0, y0 - y1], 1) / det[:, None]  # d w_m / d xp
    grad_w_y = torch.stack([x2 - x1, x0 - x2, x1 - x0], 1) / det[:, None]  # d w_m / d yp
    zk = torch.stack(zk, 1)
    gz2 = (g * z * z)[:, None]
    sx = (grad_w_x / zk).sum(1, keepdim=True)
    sy = (grad_w_y / zk).sum(1, keepdim=True)
    grad = torch.stack([gz2 * w * sx, gz2 * w * sy, gz2 * w / (zk * zk)], dim=2)  # (N, vertex, xyz)
    out = torch.zeros((B * F, 3, 3), dtype=faces.dtype, device=faces.device)
    out.index_add_(0, batch * F + face, grad)
    return out.view(B, F, 3, 3)


# ----------------------------------------------------------------------------------------------
# Texture cubes: trilinear sampling at t_k = bary_k (T - 1), and its gradient
# ----------------------------------------------------------------------------------------------
def cube_corners(bary, size, eps):
    """The 8 corners around ``t_k = clamp(bary_k (T - 1), 0, T - 1 - eps)``: flat cell offsets
    (N, 8) into a (T, T, T) cube and trilinear weights (N, 8). Bit k of the corner number picks the
    upper (1) or lower (0) cell on axis k; the upper index is clamped to T - 1."""
    t = (bary * (size - 1)).clamp(0.0, cube_top(size, eps))
    lower = t.floor()
    lo = lower.long()
    hi = (lo + 1).clamp(max=size - 1)
    frac = t - lower
    offsets, weights = [], []
    for corner in range(8):
        offset, weight = 0, 1.0
        for k in range(3):
            upper = (corner >> k) & 1
            offset = offset * size + (hi[:, k] if upper else lo[:, k])
            weight = weight * (frac[:, k] if upper else 1.0 - frac[:, k])
        offsets.append(offset)
        weights.append(weight)
    return torch.stack(offsets, 1), torch.stack(weights, 1)


@guarded
def sample_cubes(face_index, bary, textures, eps):
    """Colours (B, H, W, C) sampled from per-face cubes ``textures`` (B, F, T, T, T, C); 0 where empty."""
    B, F, T = textures.shape[:3]
    C = textures.shape[-1]
    hit, batch, face, b = _covered(face_index, bary)
    offsets, tw = cube_corners(b, T, eps)
    cells = textures.reshape(B * F, T ** 3, C)[(batch * F + face)[:, None], offsets]  # (N, 8, C)
    out = torch.zeros(face_index.shape + (C,), dtype=textures.dtype, device=textures.device)
    out[hit] = (cells * tw[..., None]).sum(1)
    return out


@guarded
def sample_cubes_backward(face_index, bary, grad, textures, eps):
    """Gradient (B, F, T, T, T, C) to the cubes ``textures``: each pixel's gradient goes to its 8 cells."""
    texture_shape = textures.shape
    B, F, T = texture_shape[:3]
    C = texture_shape[-1]
    _, batch, face, b, g = _covered(face_index, bary, grad)
    offsets, tw = cube_corners(b, T, eps)
    cell = (batch * F + face)[:, None] * T ** 3 + offsets
    out = torch.zeros((B * F * T ** 3, C), dtype=grad.dtype, device=grad.device)
    out.index_add_(0, cell.reshape(-1), (tw[..., None] * g[:, None, :]).reshape(-1, C))
    return out.view(texture_shape)


# ----------------------------------------------------------------------------------------------
# Per face-vertex attributes: sum_k bary_k a_k, and its gradient
# ----------------------------------------------------------------------------------------------
@guarded
def interpolate(face_index, bary, attributes):
    """(B, H, W, C) = sum_k bary_k a_k for attributes (B, F, 3, C) per face vertex; 0 where empty."""
    B, F, _, C = attributes.shape
    hit, batch, face, b = _covered(face_index, bary)
    out = torch.zeros(face_index.shape + (C,), dtype=attributes.dtype, device=attributes.device)
    out[hit] = (attributes[batch, face] * b[..., None]).sum(1)
    return out


@guarded
def interpolate_backward(face_index, bary, grad, attributes):
    """Gradient (B, F, 3, C) to the face-vertex ``attributes`` of :func:`interpolate`."""
    attribute_shape = attributes.shape
    B, F, _, C = attribute_shape
    _, batch, face, b, g = _covered(face_index, bary, grad)
    out = torch.zeros((B * F, 3, C), dtype=grad.dtype, device=grad.device)
    out.index_add_(0, batch * F + face, b[..., None] * g[:, None, :])
    return out.view(attribute_shape)


# ----------------------------------------------------------------------------------------------
# UV texture maps: bilinear sampling of a packed texel table, and its gradients
# ----------------------------------------------------------------------------------------------
def wrap_index(i, size, wrap):
    """Texel index ``i`` wrapped into [0, size): 0 REPEAT, 1 MIRRORED_REPEAT, 2 CLAMP_TO_EDGE."""
    if wrap == 0:
        return torch.remainder(i, size)
    if wrap == 1:
        j = torch.remainder(i, 2 * size)
        return torch.where(j < size, j, 2 * size - 1 - j)
    return torch.minimum(i.clamp(min=0), size - 1)


class UVSamples(NamedTuple):
    """What bilinear UV sampling needs per covered pixel (N of them)."""
    hit: torch.Tensor     # (B, H, W) covered mask
    batch: torch.Tensor   # (N,) batch entry
    face: torch.Tensor    # (N,) face
    bary: torch.Tensor    # (N, 3)
    index: torch.Tensor   # (N, 4) texel rows: top-left, top-right, bottom-left, bottom-right
    weight: torch.Tensor  # (N, 4) their bilinear weights
    fx: torch.Tensor      # (N,) fraction across, between the left and right texels
    fy: torch.Tensor      # (N,) fraction down, between the top and bottom texels
    h: torch.Tensor       # (N,) texture height
    w: torch.Tensor       # (N,) texture width


def _uv_samples(face_index, bary, uvs, material, table, wrap):
    """The 4 texels around each covered pixel's uv point (texel centres at x = u w - 0.5,
    y = (1 - v) h - 0.5, row 0 at v = 1), wrapped, with their bilinear weights."""
    hit, batch, face, b = _covered(face_index, bary)
    uv = (b[..., None] * uvs[batch, face]).sum(1)  # (N, 2)
    offset, h, w = table[material[batch, face]].unbind(-1)
    x = uv[:, 0] * w - 0.5
    y = (1.0 - uv[:, 1]) * h - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    cols = [wrap_index(x0.long() + dx, w, wrap) for dx in (0, 1)]
    rows = [wrap_index(y0.long() + dy, h, wrap) for dy in (0, 1)]
    index = torch.stack([offset + rows[dy] * w + cols[dx] for dy in (0, 1) for dx in (0, 1)], 1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
    return UVSamples(hit, batch, face, b, index, weight, fx, fy, h, w)


@guarded
def sample_uv(face_index, bary, uvs, texels, material, table, wrap):
    """Colours (B, H, W, C) of UV-mapped textures: the pixel's uv is ``sum_k bary_k uvs[b, f, k]``,
    bilinearly sampled from material ``material[b, f]``'s texels; 0 where empty."""
    s = _uv_samples(face_index, bary, uvs, material, table, wrap)
    out = torch.zeros(face_index.shape + (texels.shape[-1],), dtype=texels.dtype, device=texels.device)
    out[s.hit] = (texels[s.index] * s.weight[..., None]).sum(1)
    return out


@guarded
def sample_uv_backward(face_index, bary, grad, uvs, texels, material, table, wrap):
    """Gradients (uvs (B, F, 3, 2), texels (N, C)) of :func:`sample_uv`.

    Texels get each pixel's gradient times its bilinear weight. With x = u w - 0.5 and
    y = (1 - v) h - 0.5, d colour / du = w [(1 - fy)(T01 - T00) + fy (T11 - T10)] and
    d colour / dv = -h [(1 - fx)(T10 - T00) + fx (T11 - T01)]; a face vertex's uv gets bary_k times that.
    """
    B, F = uvs.shape[:2]
    s = _uv_samples(face_index, bary, uvs, material, table, wrap)
    g = grad[s.hit]  # (N, C)
    grad_texels = torch.zeros_like(texels)
    grad_texels.index_add_(0, s.index.reshape(-1), (s.weight[..., None] * g[:, None, :]).reshape(-1, texels.shape[-1]))
    t00, t01, t10, t11 = texels[s.index].unbind(1)  # (N, C) each: top-left, top-right, bottom-left, bottom-right
    fx, fy = s.fx[:, None], s.fy[:, None]
    du = s.w[:, None] * ((1 - fy) * (t01 - t00) + fy * (t11 - t10))
    dv = -s.h[:, None] * ((1 - fx) * (t10 - t00) + fx * (t11 - t01))
    duv = torch.stack([(du * g).sum(-1), (dv * g).sum(-1)], -1)  # (N, 2)
    grad_uvs = torch.zeros((B * F, 3, 2), dtype=uvs.dtype, device=uvs.device)
    grad_uvs.index_add_(0, s.batch * F + s.face, s.bary[..., None] * duv[:, None, :])
    return grad_uvs.view(B, F, 3, 2), grad_texels


# ----------------------------------------------------------------------------------------------
# The shading ops' gradients to the barycentrics (where bary depends on the faces: gradient="soft").
# Pixel-local (each pixel's own gather, no sum across pixels): every backend shares these.
# ----------------------------------------------------------------------------------------------
@guarded
def interpolate_bary_backward(face_index, bary, grad, attributes):
    """(B, H, W, 3) gradient to bary of :func:`interpolate`: ``d colour / d bary_k = a_k``."""
    hit, batch, face, _, g = _covered(face_index, bary, grad)
    out = torch.zeros_like(bary)
    out[hit] = (attributes[batch, face] * g[:, None, :]).sum(-1)
    return out


@guarded
def sample_cubes_bary_backward(face_index, bary, grad, textures, eps):
    """(B, H, W, 3) gradient to bary of :func:`sample_cubes`: with t_k = clamp(bary_k (T - 1), 0, top),
    the trilinear weights' derivative along t_k (each corner's weight is a product over the axes of f or
    1 - f, f the fraction within the cell) times T - 1 where the clamp passes t_k through."""
    B, F, T = textures.shape[:3]
    C = textures.shape[-1]
    hit, batch, face, b, g = _covered(face_index, bary, grad)
    offsets, _ = cube_corners(b, T, eps)
    cells = textures.reshape(B * F, T ** 3, C)[(batch * F + face)[:, None], offsets]  # (N, 8, C)
    along = (cells * g[:, None, :]).sum(-1)  # (N, 8): each corner's value times the colour's gradient
    raw = b * (T - 1)
    t = raw.clamp(0.0, cube_top(T, eps))
    frac = t - t.floor()
    passed = ((raw >= 0) & (raw <= cube_top(T, eps))).to(b.dtype) * (T - 1)
    upper = on_device(CORNERS, hit)  # (8, 3) bool: corner c is on the upper side of axis k
    factors = torch.where(upper, frac[:, None, :], 1.0 - frac[:, None, :])  # (N, 8, 3)
    others = torch.stack([factors[..., 1] * factors[..., 2], factors[..., 0] * factors[..., 2],
                          factors[..., 0] * factors[..., 1]], -1)  # the product over the other two axes
    slope = torch.where(upper, 1.0, -1.0) * others  # d weight / d t_k
    out = torch.zeros_like(bary)
    out[hit] = (slope * along[..., None]).sum(1) * passed
    return out


@guarded
def sample_uv_bary_backward(face_index, bary, grad, uvs, texels, material, table, wrap):
    """(B, H, W, 3) gradient to bary of :func:`sample_uv`: the pixel's uv is ``sum_k bary_k uv_k``, so
    ``d colour / d bary_k = d colour / du u_k + d colour / dv v_k`` (the uv derivatives of the bilinear
    blend, as in :func:`sample_uv_backward`)."""
    s = _uv_samples(face_index, bary, uvs, material, table, wrap)
    g = grad[s.hit]
    t00, t01, t10, t11 = texels[s.index].unbind(1)
    fx, fy = s.fx[:, None], s.fy[:, None]
    du = (s.w[:, None] * ((1 - fy) * (t01 - t00) + fy * (t11 - t10)) * g).sum(-1)
    dv = (-s.h[:, None] * ((1 - fx) * (t10 - t00) + fx * (t11 - t01)) * g).sum(-1)
    corner_uv = uvs[s.batch, s.face]  # (N, 3, 2)
    out = torch.zeros_like(bary)
    out[s.hit] = du[:, None] * corner_uv[..., 0] + dv[:, None] * corner_uv[..., 1]
    return out


# ----------------------------------------------------------------------------------------------
# The blurred-edge backward (Kato et al. 2018, section 3.3)
# ----------------------------------------------------------------------------------------------
class Crossings(NamedTuple):
    """Every place where an edge (a, b) of a visible face crosses a scanline, for one axis.

    u runs across scanlines (the scanline index d0 is an integer u), w along them; coordinates are
    in pixels. Axis 0 scans columns (u = x, w = y) and moves vertices along y; axis 1 scans rows
    (u = y, w = x) and moves them along x. ``c`` is the face's third vertex."""
    face: torch.Tensor  # flat (batch * F + face) index, (N,)
    d0: torch.Tensor    # scanline index, (N,) int64
    ua: torch.Tensor
    ub: torch.Tensor
    uc: torch.Tensor
    wa: torch.Tensor
    wb: torch.Tensor
    wc: torch.Tensor


def _crossings(pix, edge, axis, lines):
    """Where edge (a, b) = (edge, edge + 1) of each face in ``pix`` (N, 3, 2), pixel coordinates,
    crosses the integer scanlines 0 .. lines - 1 of ``axis``. Returns (owner: the row of ``pix`` of
    each crossing, d0: its scanline, (ua, ub, uc), (wa, wb, wc): the face's vertices a, b and the
    third one c, across (u) and along (w) the scanlines), each (M,)."""
    a, b, c = edge, (edge + 1) % 3, (edge + 2) % 3
    u, w = pix[:, :, axis], pix[:, :, 1 - axis]
    first = torch.minimum(u[:, a], u[:, b]).ceil().clamp(min=0)
    last = torch.maximum(u[:, a], u[:, b]).floor().clamp(max=lines - 1)
    count = torch.where(u[:, a] != u[:, b], (last - first + 1).clamp(min=0), 0).long()
    owner, local = expand(count)
    return owner, first.long()[owner] + local, u[owner][:, [a, b, c]].unbind(1), w[owner][:, [a, b, c]].unbind(1)


def _move_gradient(delta, use, wx, d1, ua, ub, d0, along, eps):
    """Sum over pixels of ``-delta / dist`` where ``use & (delta > 0)``, for vertex a and b alone.

    Moving vertex a alone by s along w moves the edge's crossing with scanline d0 by
    s (ub - d0) / (ub - ua); to reach pixel d1 it must move ``dist_a = (ub - ua) / (ub - d0) (d1 - wx)``
    pixels, times 2 / along to make NDC. Likewise ``dist_b = (ub - ua) / (d0 - ua) (d1 - wx)``.
    Each dist is pushed away from zero by eps; a vertex on the scanline (denominator 0) gets nothing.
    """
    use = use & (delta > 0)
    shift = (d1 - wx[:, None]) * (2.0 / along)
    grads = []
    for denom in (ub - d0, d0 - ua):  # vertex a alone, then vertex b alone
        safe = torch.where(denom != 0, denom, 1.0)
        dist = ((ub - ua) / safe)[:, None] * shift
        dist = torch.where(dist > 0, dist + eps, dist - eps)
        grads.append(torch.where(use & (denom != 0)[:, None], -delta / dist, 0.0).sum(1))
    return grads


@guarded
def edge_backward(faces, face_index, image, grad_image, eps):
    """Blurred-edge gradient (B, F, 3, 3) to the screen-space faces from an image's gradient.

    ``image`` and ``grad_image`` are (B, H, W, C) pre-flip maps (C channels, e.g. rgb + alpha).
    For each visible face (drawn, and covering at least one pixel), edge and scanline: pixels the
    edge could cover by moving out ("out") would take the in-pixel's colour, pixels of the face it
    could uncover by moving in ("in") would take the out-pixel's colour; ``delta`` is the summed
    change times the arriving gradient, and a move that lowers the loss (delta > 0) adds
    ``-delta / dist`` for the distance each vertex alone must move. Everything else (occluded
    pixels, moves that raise the loss) contributes nothing. The z column is zero.
    """
    B, F = faces.shape[:2]
    H, W = face_index.shape[1:]
    grad = torch.zeros((B * F, 3, 3), dtype=faces.dtype, device=faces.device)
    ids = torch.nonzero(visible(faces, face_index)).flatten()
    if ids.numel() == 0:
        return grad.view(B, F, 3, 3)
    flat = faces.reshape(B * F, 3, 3)[ids]
    pix = torch.stack([to_pixels(flat[..., 0], W), to_pixels(flat[..., 1], H)], -1)  # (N, 3, 2)
    for axis in (0, 1):
        # scanlines of this axis as rows of a (B * lines, along) table: columns for axis 0, rows for 1
        lines, along = (W, H) if axis == 0 else (H, W)
        table = [t.transpose(1, 2) if axis == 0 else t for t in (image, grad_image, face_index)]
        img, gimg, fidx = (t.reshape(B * lines, along, -1) for t in table)
        fidx = fidx[..., 0]
        for edge in range(3):
            owner, d0, (ua, ub, uc), (wa, wb, wc) = _crossings(pix, edge, axis, lines)
            step = max(1, CHUNK // along)
            for s in range(0, d0.numel(), step):
                sl = slice(s, s + step)
                cross = Crossings(ids[owner[sl]], d0[sl], ua[sl], ub[sl], uc[sl], wa[sl], wb[sl], wc[sl])
                ga, gb = _scanline_gradients(cross, axis, lines, along, F, img, gimg, fidx, eps)
                coord = 1 - axis  # axis 0 moves y, axis 1 moves x
                grad[:, edge, coord].index_add_(0, cross.face, ga)
                grad[:, (edge + 1) % 3, coord].index_add_(0, cross.face, gb)
    return grad.view(B, F, 3, 3)


class Walk(NamedTuple):
    """Where the scanline walk of each crossing goes, in pixels d1 along the scanline (N,) each."""
    wx: torch.Tensor         # where the edge crosses the scanline
    direction: torch.Tensor  # outward along w: +1 or -1
    d_in: torch.Tensor       # the last pixel inside (int64)
    d_out: torch.Tensor      # the first pixel outside
    ok: torch.Tensor         # both lie in the image
    in_lo: torch.Tensor      # the face's pixels an inward move could uncover lie in [in_lo, in_hi]
    in_hi: torch.Tensor


def walk(x, axis, along):
    """The :class:`Walk` of crossings ``x`` (:class:`Crossings`) of ``axis``, ``along`` pixels per
    scanline (axis and along may be ints, or tensors per crossing).

    The edge crosses scanline d0 at ``wx = wa + (wb - wa) / (ub - ua) (d0 - ua)``; far-off crossings
    are clamped just outside the image, as the kernels do, so they stay far off as integers. The
    outward direction along w is -1 when ua < ub for axis 0 and +1 for axis 1 (the opposite when
    ua > ub). The inward move can uncover the face's pixels from d_in to where the scanline leaves
    the face through edge a-c (when d0 lies strictly between ua and uc) or c-b, rounded outward."""
    d0 = x.d0.to(x.ua.dtype)
    direction = torch.where(x.ua < x.ub, 1, -1) * (1 - 2 * (axis == 0))
    wx = torch.clamp(torch.clamp(x.wa + (x.wb - x.wa) / (x.ub - x.ua) * (d0 - x.ua), min=-2.0), max=along + 1.0)
    d_in = torch.where(direction > 0, wx.floor(), wx.ceil()).long()
    d_out = d_in + direction
    ok = (d_in >= 0) & (d_in < along) & (d_out >= 0) & (d_out < along)
    between = (d0 - x.ua) * (d0 - x.uc) < 0
    via_ac = x.wa + (x.wc - x.wa) / torch.where(x.uc != x.ua, x.uc - x.ua, 1.0) * (d0 - x.ua)
    via_cb = torch.where(x.ub == x.uc, x.wc,
                         x.wc + (x.wb - x.wc) / torch.where(x.ub != x.uc, x.ub - x.uc, 1.0) * (d0 - x.uc))
    w_far = torch.clamp(torch.clamp(torch.where(between, via_ac, via_cb), min=-2.0), max=along + 1.0)
    limit = torch.where(direction > 0, w_far.ceil(), w_far.floor()).long()
    in_lo = torch.clamp(torch.minimum(d_in, limit), min=0)
    in_hi = torch.clamp(torch.maximum(d_in, limit), max=along - 1)
    return Walk(wx, direction, d_in, d_out, ok, in_lo, in_hi)


def _scanline_gradients(x, axis, lines, along, F, img, gimg, fidx, eps):
    """Gradients to the w of vertices a and b, one value each per crossing in ``x``."""
    d0 = x.d0.to(x.ua.dtype)
    wx, direction, d_in, d_out, ok, in_lo, in_hi = walk(x, axis, along)
    line = (x.face // F) * lines + x.d0  # row of the scanline table: batch entry, then scanline
    row, grow, frow = img[line], gimg[line], fidx[line]  # (N, along, C), (N, along, C), (N, along)
    n = torch.arange(len(line), device=line.device)
    i_in = row[n, d_in.clamp(0, along - 1)]
    i_out = row[n, d_out.clamp(0, along - 1)]
    this_face = (x.face % F)[:, None]
    d1 = torch.arange(along, device=line.device)[None, :]
    # out: from d_out to the border, when the in-pixel is this face's
    in_is_face = frow[n, d_in.clamp(0, along - 1)] == this_face[:, 0]
    beyond = torch.where(direction[:, None] > 0, d1 >= d_out[:, None], d1 <= d_out[:, None])
    use_out = (ok & in_is_face)[:, None] & beyond
    delta_out = ((row - i_in[:, None, :]) * grow).sum(-1)
    # in: this face's pixels of the inward span
    use_in = ok[:, None] & (d1 >= in_lo[:, None]) & (d1 <= in_hi[:, None]) & (frow == this_face)
    delta_in = ((row - i_out[:, None, :]) * grow).sum(-1)
    d1f = d1.to(d0.dtype)
    ga_out, gb_out = _move_gradient(delta_out, use_out, wx, d1f, x.ua, x.ub, d0, along, eps)
    ga_in, gb_in = _move_gradient(delta_in, use_in, wx, d1f, x.ua, x.ub, d0, along, eps)
    return ga_out + ga_in, gb_out + gb_in



# The soft rasterizer's ops (gradient="soft") are written out in their own module.
from .torch_soft import soft_blend, soft_blend_backward, soft_fragments, soft_fragments_backward  # noqa: E402,F401
