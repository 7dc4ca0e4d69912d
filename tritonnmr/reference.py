"""The naive PyTorch rasterizer: the same maths as the Triton kernels, written to be read.

It is the test oracle, the CPU path and the benchmark baseline. Every function works on
pre-flip maps: row ``r`` of a map is the pixel row whose centre is at NDC ``y = (2r + 1 - S) / S``
(so row 0 is the bottom of the picture; the public functions flip at the very end).

Screen-space faces are ``(B, F, 3, 3)`` float32 tensors: ``faces[b, f, k] = (x, y, z)`` of vertex
``k`` with x, y in NDC ([-1, 1] spans the image) and z the depth. Face indices in the maps are
int64, ``-1`` where no face covers the pixel.

Memory stays bounded: faces are expanded to (face, pixel) pairs and edges to scanlines in chunks
of at most ``CHUNK`` elements, so the teapot at 1024^2 needs a few hundred MB, not pixels x faces.
"""

import torch

CHUNK = 1 << 21  # (face, pixel) pairs or (scanline, pixel) pairs handled at once
EMPTY_KEY = torch.iinfo(torch.int64).max


# ----------------------------------------------------------------------------------------------
# Geometry shared by the forward and backward passes
# ----------------------------------------------------------------------------------------------
def front_facing(faces):
    """(B, F) bool: the face is counter-clockwise on screen and has non-zero area.

    A face is culled when ``(y2 - y0)(x1 - x0) < (y1 - y0)(x2 - x0)``; with equality it has no area.
    """
    x, y = faces[..., 0], faces[..., 1]
    lhs = (y[..., 2] - y[..., 0]) * (x[..., 1] - x[..., 0])
    rhs = (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    return lhs > rhs


def pixel_centre(index, size):
    """NDC coordinate of the centre of pixel ``index`` along an axis of ``size`` pixels."""
    return (2.0 * index + 1.0 - size) / size


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


def _unbind_face(face_rows):
    """(N, 3, 3) -> three tuples (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) of (N,) tensors."""
    return tuple(tuple(face_rows[:, k, d] for k in range(3)) for d in range(3))


def _expand_ranges(starts, counts):
    """For ranges [start, start + count): (owner index, value) of every element, vectorised."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(owner.numel(), device=counts.device) - first[owner]
    return owner, starts[owner] + local


def _chunks_by_cost(costs, limit=CHUNK):
    """Split items into consecutive groups of summed cost about ``limit`` (at most limit + one item)."""
    group = torch.div(torch.cumsum(costs, 0) - costs, limit, rounding_mode="floor")
    edges = torch.nonzero(group[1:] != group[:-1]).flatten() + 1
    bounds = [0] + edges.tolist() + [len(costs)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


# ----------------------------------------------------------------------------------------------
# Forward: z-buffered face index, weights and depth
# ----------------------------------------------------------------------------------------------
def rasterize_fragments(faces, image_size, near, far):
    """Face index (B, S, S) int64, weights (B, S, S, 3) and depth (B, S, S) maps of ``faces``.

    Face-parallel: every front-facing face is expanded into the pixels of its clipped bounding
    box; covered pixels with ``near < z < far`` compete through a 64-bit key (depth bits above
    the face index), so the nearest face wins and ties go to the lower index.
    Empty pixels have face index -1, weights 0 and depth ``far``.
    """
    B, F = faces.shape[:2]
    S = image_size
    dev = faces.device
    flat = faces.reshape(B * F, 3, 3)
    xs, ys = flat[..., 0], flat[..., 1]
    valid = front_facing(faces).reshape(-1) & torch.isfinite(flat).all(dim=(1, 2))
    # Bounding box in pixel indices (one pixel of slack; the inside test is exact).
    lo_x = (0.5 * (xs.min(1).values * S + S - 1)).floor().clamp(0, S - 1)
    hi_x = (0.5 * (xs.max(1).values * S + S - 1)).ceil().clamp(0, S - 1)
    lo_y = (0.5 * (ys.min(1).values * S + S - 1)).floor().clamp(0, S - 1)
    hi_y = (0.5 * (ys.max(1).values * S + S - 1)).ceil().clamp(0, S - 1)
    width = torch.where(valid, hi_x - lo_x + 1, 0).long()
    height = torch.where(valid, hi_y - lo_y + 1, 0).long()
    ids = torch.nonzero(valid).flatten()
    zbuf = torch.full((B * S * S,), EMPTY_KEY, dtype=torch.int64, device=dev)
    area = (width * height)[ids]
    for start, stop in _chunks_by_cost(area):
        face_id = ids[start:stop]
        owner, offset = _expand_ranges(torch.zeros_like(face_id), area[start:stop])
        fid = face_id[owner]
        w = width[fid]
        px = lo_x[fid].long() + offset % w
        py = lo_y[fid].long() + torch.div(offset, w, rounding_mode="floor")
        xp, yp = pixel_centre(px.float(), S), pixel_centre(py.float(), S)
        fx, fy, fz = (tuple(c[fid] for c in t) for t in _unbind_face(flat))
        cover = inside(fx, fy, xp, yp)
        z = perspective_depth(barycentric(fx, fy, xp, yp), fz)
        cover &= (z > near) & (z < far)
        key = (z[cover].view(torch.int32).long() << 32) | (fid[cover] % F)
        pix = (fid[cover] // F) * S * S + py[cover] * S + px[cover]
        zbuf.scatter_reduce_(0, pix, key, reduce="amin")
    return resolve(zbuf.view(B, S, S), faces, far)


def resolve(zbuf, faces, far):
    """Decode a key map into face index, weights and depth (depth straight from the key bits)."""
    B, S, _ = zbuf.shape
    F = faces.shape[1]
    hit = zbuf != EMPTY_KEY
    face_index = torch.where(hit, zbuf & 0xFFFFFFFF, -1)
    depth = torch.full((B, S, S), float(far), dtype=faces.dtype, device=faces.device)
    depth[hit] = (zbuf[hit] >> 32).int().view(torch.float32)
    weights = torch.zeros((B, S, S, 3), dtype=faces.dtype, device=faces.device)
    b, py, px = torch.nonzero(hit, as_tuple=True)
    rows = faces.reshape(B * F, 3, 3)[b * F + face_index[hit]]
    fx, fy, _ = _unbind_face(rows)
    ws = barycentric(fx, fy, pixel_centre(px.to(faces.dtype), S), pixel_centre(py.to(faces.dtype), S))
    weights[hit] = torch.stack(ws, dim=-1)
    return face_index, weights, depth


def _covered_rows(faces, face_index, *maps):
    """Batch, face and (x, y, z) rows of every covered pixel, plus ``maps`` at those pixels."""
    B, F = faces.shape[:2]
    hit = face_index >= 0
    b = torch.nonzero(hit, as_tuple=True)[0]
    flat_face = b * F + face_index[hit]
    return (hit, flat_face, faces.reshape(B * F, 3, 3)[flat_face]) + tuple(m[hit] for m in maps)


# ----------------------------------------------------------------------------------------------
# Depth backward: exact derivative of z = 1 / sum_k w_k / z_k for the winning face
# ----------------------------------------------------------------------------------------------
def depth_backward(faces, face_index, weights, depth, grad_depth):
    """Gradient (B, F, 3, 3) of the loss with respect to the screen-space faces, through depth.

    With ``q = sum_m w_m / z_m``:  dz/dz_k = z^2 w_k / z_k^2, and since moving vertex k by delta
    changes every weight by ``-w_k grad_p(w_m) . delta``, dz/d(x_k, y_k) = z^2 w_k sum_m grad_p(w_m) / z_m.
    """
    B, F = faces.shape[:2]
    hit, flat_face, rows, w, z, g = _covered_rows(faces, face_index, weights, depth, grad_depth)
    (x0, x1, x2), (y0, y1, y2), zk = _unbind_face(rows)
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    # grad_p(w_m) = (A_m, B_m) / det
    ax = torch.stack([y1 - y2, y2 - y0, y0 - y1], 1) / det[:, None]
    by = torch.stack([x2 - x1, x0 - x2, x1 - x0], 1) / det[:, None]
    zk = torch.stack(zk, 1)
    gz2 = g * z * z
    sx = (ax / zk).sum(1)
    sy = (by / zk).sum(1)
    grad = torch.stack([gz2[:, None] * w * sx[:, None],
                        gz2[:, None] * w * sy[:, None],
                        gz2[:, None] * w / (zk * zk)], dim=2)  # (N, 3 vertices, 3 coords)
    out = torch.zeros((B * F, 3, 3), dtype=faces.dtype, device=faces.device)
    out.index_add_(0, flat_face, grad)
    return out.view(B, F, 3, 3)


# ----------------------------------------------------------------------------------------------
# Texture cubes: trilinear sampling and its gradient
# ----------------------------------------------------------------------------------------------
def texture_coordinates(rows, w, z, size, eps):
    """Per pixel: lower corner index (N, 3), upper corner index (N, 3) and fraction (N, 3).

    ``t_k = clamp(w_k (T - 1) z / z_k, 0, T - 1 - eps)`` for the three cube axes.
    """
    zk = rows[:, :, 2]
    t = (w * (size - 1) * z[:, None] / zk).clamp(0.0, max(size - 1 - eps, 0.0))
    lower = t.floor()
    return lower.long(), (lower.long() + 1).clamp(max=size - 1), t - lower


def _texture_corners(rows, w, z, size, eps):
    """The 8 corners' flat cube offsets (N, 8) and trilinear weights (N, 8)."""
    lo, hi, frac = texture_coordinates(rows, w, z, size, eps)
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


def sample_textures(faces, face_index, weights, depth, textures, eps):
    """RGB (B, S, S, 3) sampled from per-face cubes ``textures`` (B, F, T, T, T, 3); 0 where empty."""
    B, F, T = textures.shape[:3]
    hit, flat_face, rows, w, z = _covered_rows(faces, face_index, weights, depth)
    offsets, tw = _texture_corners(rows, w, z, T, eps)
    cells = textures.reshape(B * F, T ** 3, 3)[flat_face[:, None], offsets]  # (N, 8, 3)
    rgb = torch.zeros(face_index.shape + (3,), dtype=textures.dtype, device=textures.device)
    rgb[hit] = (cells * tw[..., None]).sum(1)
    return rgb


def sample_textures_backward(faces, face_index, weights, depth, texture_shape, grad_rgb, eps):
    """Gradient (B, F, T, T, T, 3) to the cubes: each pixel's gradient goes to its 8 cells."""
    B, F, T = texture_shape[:3]
    hit, flat_face, rows, w, z, g = _covered_rows(faces, face_index, weights, depth, grad_rgb)
    offsets, tw = _texture_corners(rows, w, z, T, eps)
    grad = torch.zeros((B * F * T ** 3, 3), dtype=grad_rgb.dtype, device=grad_rgb.device)
    cell = flat_face[:, None] * T ** 3 + offsets
    grad.index_add_(0, cell.reshape(-1), (tw[..., None] * g[:, None, :]).reshape(-1, 3))
    return grad.view(texture_shape)


# ----------------------------------------------------------------------------------------------
# Per-vertex attributes: perspective-correct interpolation and its gradient
# ----------------------------------------------------------------------------------------------
def interpolate(faces, face_index, weights, depth, attributes):
    """(B, S, S, C) = z * sum_k w_k a_k / z_k, attributes (B, F, 3, C) per face vertex; 0 where empty."""
    B, F, _, C = attributes.shape
    hit, flat_face, rows, w, z = _covered_rows(faces, face_index, weights, depth)
    pw = w * z[:, None] / rows[:, :, 2]  # perspective-correct weights
    out = torch.zeros(face_index.shape + (C,), dtype=attributes.dtype, device=attributes.device)
    out[hit] = (attributes.reshape(B * F, 3, C)[flat_face] * pw[..., None]).sum(1)
    return out


def interpolate_backward(faces, face_index, weights, depth, attribute_shape, grad_out):
    """Gradient (B, F, 3, C) to the face-vertex attributes of :func:`interpolate`."""
    B, F, _, C = attribute_shape
    hit, flat_face, rows, w, z, g = _covered_rows(faces, face_index, weights, depth, grad_out)
    pw = w * z[:, None] / rows[:, :, 2]
    grad = torch.zeros((B * F, 3, C), dtype=grad_out.dtype, device=grad_out.device)
    grad.index_add_(0, flat_face, pw[..., None] * g[:, None, :])
    return grad.view(attribute_shape)


# ----------------------------------------------------------------------------------------------
# The blurred-edge backward (Kato et al. 2018, section 3.3)
# ----------------------------------------------------------------------------------------------
def _edge_scanlines(faces, visible, S):
    """Every (face, edge, axis, scanline d0) that the blurred-edge pass visits, as flat tensors.

    Axis 0 scans columns (u = x, w = y) and moves vertices along y; axis 1 scans rows
    (u = y, w = x) and moves them along x. Coordinates are in pixels: 0.5 (v S + S - 1).
    """
    pix = 0.5 * (faces[..., :2] * S + S - 1)  # (B, F, 3, 2)
    ids = torch.nonzero(visible.reshape(-1)).flatten()
    pix = pix.reshape(-1, 3, 2)[ids]
    out = []
    for edge in range(3):
        a, b, c = edge, (edge + 1) % 3, (edge + 2) % 3
        for axis in range(2):
            u = pix[:, :, axis]
            w = pix[:, :, 1 - axis]
            lo = torch.minimum(u[:, a], u[:, b]).ceil().clamp(min=0)
            hi = torch.maximum(u[:, a], u[:, b]).floor().clamp(max=S - 1)
            count = torch.where(u[:, a] != u[:, b], hi - lo + 1, 0).clamp(min=0)
            count = torch.nan_to_num(count, nan=0.0).long()
            owner, d0 = _expand_ranges(lo.long(), count)
            take = lambda t, k: t[owner, k]  # noqa: E731
            out.append(dict(face=ids[owner], a=a, b=b, axis=axis, d0=d0,
                            ua=take(u, a), ub=take(u, b), uc=take(u, c),
                            wa=take(w, a), wb=take(w, b), wc=take(w, c)))
    return out


def _edge_contributions(s, d1, delta, mask, S, eps):
    """Summed ``-delta / dist`` for vertices a and b over the pixels where the move helps."""
    use = mask & (delta > 0)
    shift = (d1 - s["wx"][:, None]) * (2.0 / S)
    grads = []
    for denom in (s["ub"] - s["d0f"], s["d0f"] - s["ua"]):  # vertex a alone, then b alone
        dist = ((s["ub"] - s["ua"]) / denom)[:, None] * shift
        dist = torch.where(dist > 0, dist + eps, dist - eps)
        g = torch.where(use & (denom != 0)[:, None], -delta / dist, 0.0).sum(1)
        grads.append(g)
    return grads


def edge_backward(faces, face_index, image, grad_image, eps):
    """Blurred-edge gradient (B, F, 3, 3) to the screen-space faces from an image's gradient.

    ``image`` and ``grad_image`` are (B, S, S, C) pre-flip maps (C channels, e.g. rgb + alpha).
    For each visible front face, edge and scanline: pixels the edge could cover by moving out
    ("out") take the in-pixel's colour, pixels of the face it could uncover by moving in ("in")
    take the out-pixel's colour; ``delta`` is the summed change times the arriving gradient, and a
    move that lowers the loss (delta > 0) adds ``-delta / dist`` for the distance each vertex
    must move. Everything else (occluded pixels, moves that raise the loss) contributes nothing.
    """
    B, F = faces.shape[:2]
    S = face_index.shape[-1]
    grad = torch.zeros((B * F, 3, 3), dtype=faces.dtype, device=faces.device)
    seen = torch.zeros(B * F, dtype=torch.bool, device=faces.device)
    hit = face_index >= 0
    bidx = torch.nonzero(hit, as_tuple=True)[0]
    seen[bidx * F + face_index[hit]] = True
    visible = front_facing(faces) & seen.view(B, F)
    # lines[axis][b, d0] is scanline d0 of batch b: a column for axis 0, a row for axis 1
    lines = [(image.transpose(1, 2), grad_image.transpose(1, 2), face_index.transpose(1, 2)),
             (image, grad_image, face_index)]
    for scan in _edge_scanlines(faces, visible, S):
        axis = scan["axis"]
        img, gimg, fidx = (t.reshape(B * S, S, -1) if t.dim() == 4 else t.reshape(B * S, S)
                           for t in lines[axis])
        n, step = scan["d0"].numel(), max(1, CHUNK // S)
        for start, stop in ((i, min(i + step, n)) for i in range(0, n, step)):
            s = {k: (v[start:stop] if torch.is_tensor(v) else v) for k, v in scan.items()}
            flat_face, d0 = s["face"], s["d0"]
            bd = (flat_face // F) * S + d0  # which line
            d0f = d0.to(faces.dtype)
            s["d0f"] = d0f
            up = s["ua"] < s["ub"]
            direction = torch.where(up, -1, 1) if axis == 0 else torch.where(up, 1, -1)
            wx = (s["wb"] - s["wa"]) / (s["ub"] - s["ua"]) * (d0f - s["ua"]) + s["wa"]
            s["wx"] = wx
            d_in = torch.where(direction > 0, wx.floor(), wx.ceil()).long()
            d_out = d_in + direction
            ok = (d_in >= 0) & (d_in < S) & (d_out >= 0) & (d_out < S)
            d_in_c, d_out_c = d_in.clamp(0, S - 1), d_out.clamp(0, S - 1)
            line, gline, fline = img[bd], gimg[bd], fidx[bd]  # (N, S, C), (N, S, C), (N, S)
            rows = torch.arange(len(bd), device=faces.device)
            i_in, i_out = line[rows, d_in_c], line[rows, d_out_c]  # (N, C)
            face_of_line = flat_face % F
            d1 = torch.arange(S, device=faces.device)[None, :].expand(len(bd), S)
            d1f = d1.to(faces.dtype)
            # out: pixels from d_out to the border, when the in-pixel is this face's
            in_is_face = fline[rows, d_in_c] == face_of_line
            beyond = torch.where(direction[:, None] > 0, d1 >= d_out[:, None], d1 <= d_out[:, None])
            m_out = (ok & in_is_face)[:, None] & beyond
            delta_out = ((line - i_in[:, None, :]) * gline).sum(-1)
            # in: this face's pixels from d_in to where the scanline leaves the face
            between = (d0f - s["ua"]) * (d0f - s["uc"]) < 0
            via_ac = (s["wc"] - s["wa"]) / (s["uc"] - s["ua"]) * (d0f - s["ua"]) + s["wa"]
            via_cb = (s["wb"] - s["wc"]) / (s["ub"] - s["uc"]) * (d0f - s["uc"]) + s["wc"]
            via_cb = torch.where(s["ub"] == s["uc"], s["wc"], via_cb)
            w_far = torch.where(between, via_ac, via_cb)
            limit = torch.where(direction > 0, w_far.ceil(), w_far.floor()).long()
            lo = torch.minimum(d_in, limit).clamp(min=0)
            hi = torch.maximum(d_in, limit).clamp(max=S - 1)
            m_in = ok[:, None] & (d1 >= lo[:, None]) & (d1 <= hi[:, None]) \
                & (fline == face_of_line[:, None])
            delta_in = ((line - i_out[:, None, :]) * gline).sum(-1)
            ga_o, gb_o = _edge_contributions(s, d1f, delta_out, m_out, S, eps)
            ga_i, gb_i = _edge_contributions(s, d1f, delta_in, m_in, S, eps)
            coord = 1 - axis
            grad[:, scan["a"], coord].index_add_(0, flat_face, ga_o + ga_i)
            grad[:, scan["b"], coord].index_add_(0, flat_face, gb_o + gb_i)
    return grad.view(B, F, 3, 3)
