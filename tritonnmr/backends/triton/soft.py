"""The soft rasterizer's ops (gradient="soft") as Triton kernels: the formulas of backends/torch_soft.py.

- ``pairs_kernel``: the binned plan of the faces' boxes grown by the cut-off radius (binning.binned_plan
  with ``grow``: exact tile lists, no face dropped); one program per item of a tile's face list tests
  FACES faces per trip against the tile's TILE x TILE pixel centres. Run twice: COUNT, then WRITE each
  pair at its place: pixel-major, faces ascending within a pixel (a pixel's faces come from its tile's
  items in order, and within a trip in row order: an exclusive cumsum down the block's rows).
- ``face_sums_kernel``: the backward; the pairs grouped by face (a stable sort), cut into items, one
  program per item summing its pairs' exact gradients (9 numbers) in order, written once (balanced
  and atomic-free, as the rest of the backward; cut faces are added in slot order by reduce).
- ``blend_kernel``: per pixel, BLOCK pixels per program, each walking its own pairs (max of the depth,
  then the sums; the backward a third walk writing each pair's gradient once).

Every fp32 division is ``tl.math.div_rn`` (correctly rounded, as the reference's).
"""
import torch
import triton
import triton.language as tl

from .backward import _item, _store_row
from .geometry import FLT_MAX, face_rows, load_face, pixel_centre, screen_weights
from .raster import _tile_pixels


@triton.jit
def _geometry(x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp, ax, ay):
    """(d2, inside, edge, t, gx, gy, raw0, raw1, raw2, w0, w1, w2, depth) of a face at pixel centres:
    the signed squared distance in square NDC, the nearest edge (0, 1, 2), the closest point's
    parameter t on it and the gap (pixel centre minus closest point), the raw and the clamped,
    renormalised barycentrics, and the perspective depth there (torch_soft.geometry). Inline selects:
    the interpreter pays per helper call."""
    inside = ((yp - y0) * (x1 - x0) >= (xp - x0) * (y1 - y0)) & ((yp - y1) * (x2 - x1) >= (xp - x1) * (y2 - y1)) \
        & ((yp - y2) * (x0 - x2) >= (xp - x2) * (y0 - y2))
    px = ax * xp
    py = ay * yp
    best = tl.full(xp.shape, FLT_MAX, tl.float32)
    edge = tl.zeros(xp.shape, tl.int32)
    best_t = tl.zeros(xp.shape, tl.float32)
    best_gx = tl.zeros(xp.shape, tl.float32)
    best_gy = tl.zeros(xp.shape, tl.float32)
    for e in tl.static_range(3):
        sax = ax * (x0 if e == 0 else (x1 if e == 1 else x2))
        say = ay * (y0 if e == 0 else (y1 if e == 1 else y2))
        ex = ax * (x1 if e == 0 else (x2 if e == 1 else x0)) - sax
        ey = ay * (y1 if e == 0 else (y2 if e == 1 else y0)) - say
        length2 = ex * ex + ey * ey
        t = tl.math.div_rn((px - sax) * ex + (py - say) * ey, tl.where(length2 > 0, length2, 1.0))
        t = tl.where(length2 > 0, tl.minimum(tl.maximum(t, 0.0), 1.0), 0.0)
        gx = px - (sax + t * ex)
        gy = py - (say + t * ey)
        dist2 = gx * gx + gy * gy
        nearer = dist2 < best  # ties keep the lower edge
        best = tl.where(nearer, dist2, best)
        edge = tl.where(nearer, e, edge)
        best_t = tl.where(nearer, t, best_t)
        best_gx = tl.where(nearer, gx, best_gx)
        best_gy = tl.where(nearer, gy, best_gy)
    raw0, raw1, raw2, w0, w1, w2 = screen_weights(x0, y0, x1, y1, x2, y2, xp, yp)
    depth = tl.math.div_rn(1.0, tl.math.div_rn(w0, z0) + tl.math.div_rn(w1, z1) + tl.math.div_rn(w2, z2))
    d2 = tl.where(inside, best, -best)
    return d2, inside, edge, best_t, best_gx, best_gy, raw0, raw1, raw2, w0, w1, w2, depth


@triton.jit(do_not_specialize=["F", "H", "W", "tiles_x", "tiles_per_entry"])
def pairs_kernel(faces_ptr, pair_face_ptr, item_tile_ptr, item_start_ptr, item_stop_ptr, counts_ptr, base_ptr,
                 pixel_ptr, face_ptr, d2_ptr, depth_ptr, bary_ptr, F, H, W, tiles_x, tiles_per_entry, near, far, r2,
                 ax, ay, TILE: tl.constexpr, FACES: tl.constexpr, WRITE: tl.constexpr):
    """One item of a tile's (grown-box) face list: which of its faces reach each of the tile's pixels
    (inside, or d2 > -r2; depth in (near, far)). COUNT (WRITE false): counts[item, lane] <- how many.
    WRITE: each pair at base[item, lane] + (the pixel's pairs of this item before it)."""
    item = tl.program_id(0)
    tile = tl.load(item_tile_ptr + item)
    start = tl.load(item_start_ptr + item)
    stop = tl.load(item_stop_ptr + item)
    b, offs, px, py, valid = _tile_pixels(tile, tiles_x, tiles_per_entry, H, W, TILE)
    lanes = tl.arange(0, TILE * TILE)
    xp = tl.broadcast_to(pixel_centre(px, W.to(tl.float32))[None, :], (FACES, TILE * TILE))
    yp = tl.broadcast_to(pixel_centre(py, H.to(tl.float32))[None, :], (FACES, TILE * TILE))
    entry_faces = faces_ptr + b.to(tl.int64) * F * 9
    written = tl.zeros([TILE * TILE], tl.int64)
    if WRITE:
        written = tl.load(base_ptr + item.to(tl.int64) * TILE * TILE + lanes)
    for j in range(start, stop, FACES):
        rows = j + tl.arange(0, FACES)
        live = rows < stop
        f = tl.load(pair_face_ptr + rows, mask=live, other=0)
        p = entry_faces + f.to(tl.int64) * 9
        # rows past the list read a harmless triangle and are dropped
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = face_rows(p, live, xp.shape)
        d2, _inside, _edge, _t, _gx, _gy, _r0, _r1, _r2, w0, w1, w2, depth = _geometry(
            x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp, ax, ay)
        keep = live[:, None] & valid[None, :] & ((d2 >= 0) | (-d2 < r2)) & (depth > near) & (depth < far)
        hits = keep.to(tl.int64)
        if WRITE:
            at = written[None, :] + tl.cumsum(hits, axis=0) - hits  # each lane's pairs, in row (face) order
            at = tl.where(keep, at, 0)
            flat_face = b.to(tl.int64) * F + tl.broadcast_to(f.to(tl.int64)[:, None], xp.shape)
            tl.store(pixel_ptr + at, tl.broadcast_to(offs[None, :], xp.shape), mask=keep)
            tl.store(face_ptr + at, flat_face, mask=keep)
            tl.store(d2_ptr + at, d2, mask=keep)
            tl.store(depth_ptr + at, depth, mask=keep)
            tl.store(bary_ptr + at * 3 + 0, tl.math.div_rn(w0 * depth, z0), mask=keep)
            tl.store(bary_ptr + at * 3 + 1, tl.math.div_rn(w1 * depth, z1), mask=keep)
            tl.store(bary_ptr + at * 3 + 2, tl.math.div_rn(w2 * depth, z2), mask=keep)
        written += tl.sum(hits, axis=0)
    if not WRITE:
        tl.store(counts_ptr + item.to(tl.int64) * TILE * TILE + lanes, written.to(tl.int32))


@triton.jit(do_not_specialize=["F", "H", "W"])
def face_sums_kernel(faces_ptr, order_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr, pixel_ptr,
                     grad_d2_ptr, grad_depth_ptr, grad_bary_ptr, out_ptr, partial_ptr, F, H, W, ax, ay,
                     PB: tl.constexpr):
    """The gradient (9 sums) of one face from the pairs order[start:stop] (its pairs, in pixel order):
    torch_soft.pair_gradient per pair, PB pairs per trip."""
    face, start, stop, slot, dest = _item(tl.program_id(0), item_face_ptr, item_start_ptr, item_stop_ptr,
                                          item_slot_ptr, 9)
    _drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = load_face(faces_ptr + face * 9)  # a listed face is drawn
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    ga0 = tl.math.div_rn(y1 - y2, det)  # d raw_m / d xp
    ga1 = tl.math.div_rn(y2 - y0, det)
    ga2 = tl.math.div_rn(y0 - y1, det)
    gb0 = tl.math.div_rn(x2 - x1, det)  # d raw_m / d yp
    gb1 = tl.math.div_rn(x0 - x2, det)
    gb2 = tl.math.div_rn(x1 - x0, det)
    acc = tl.zeros([PB, 16], tl.float32)  # x0 y0 z0 x1 y1 z1 x2 y2 z2 in columns 0..8
    col = tl.arange(0, 16)[None, :]
    HW = H * W
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        m = idx < stop
        k = tl.load(order_ptr + idx, mask=m, other=0)
        pix = tl.load(pixel_ptr + k, mask=m, other=0) % HW
        xp = pixel_centre(pix % W, W.to(tl.float32))
        yp = pixel_centre(pix // W, H.to(tl.float32))
        g_d2 = tl.load(grad_d2_ptr + k, mask=m, other=0.0)
        g_z = tl.load(grad_depth_ptr + k, mask=m, other=0.0)
        g0 = tl.load(grad_bary_ptr + k * 3 + 0, mask=m, other=0.0)
        g1 = tl.load(grad_bary_ptr + k * 3 + 1, mask=m, other=0.0)
        g2 = tl.load(grad_bary_ptr + k * 3 + 2, mask=m, other=0.0)
        d2, inside, edge, t, gx, gy, raw0, raw1, raw2, w0, w1, w2, z = _geometry(
            x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp, ax, ay)
        # the distance: d d2 / d a = -2 s (p - c)(1 - t), d d2 / d b = -2 s (p - c) t (square NDC; x ax, y ay)
        sign = tl.where(inside, 1.0, -1.0)
        pull_x = -2.0 * sign * g_d2 * gx * ax
        pull_y = -2.0 * sign * g_d2 * gy * ay
        # depth and bary: dL/dw_m = (z / z_m)(g_m - G), G = g_z z + sum_k g_k bary_k; the explicit z_m gets
        # -(w_m / z_m) dL/dw_m; the clamp and renormalisation pass it to the raw weights inside (0, 1)
        b0 = tl.math.div_rn(w0 * z, z0)
        b1 = tl.math.div_rn(w1 * z, z1)
        b2 = tl.math.div_rn(w2 * z, z2)
        G = g_z * z + g0 * b0 + g1 * b1 + g2 * b2
        dw0 = tl.math.div_rn(z, z0) * (g0 - G)
        dw1 = tl.math.div_rn(z, z1) * (g1 - G)
        dw2 = tl.math.div_rn(z, z2) * (g2 - G)
        total = tl.minimum(tl.maximum(raw0, 0.0), 1.0) + tl.minimum(tl.maximum(raw1, 0.0), 1.0) \
            + tl.minimum(tl.maximum(raw2, 0.0), 1.0)
        mean = w0 * dw0 + w1 * dw1 + w2 * dw2
        dr0 = tl.where((raw0 > 0) & (raw0 < 1), tl.math.div_rn(dw0 - mean, total), 0.0)
        dr1 = tl.where((raw1 > 0) & (raw1 < 1), tl.math.div_rn(dw1 - mean, total), 0.0)
        dr2 = tl.where((raw2 > 0) & (raw2 < 1), tl.math.div_rn(dw2 - mean, total), 0.0)
        sx = dr0 * ga0 + dr1 * ga1 + dr2 * ga2
        sy = dr0 * gb0 + dr1 * gb1 + dr2 * gb2
        for v in tl.static_range(3):
            raw = raw0 if v == 0 else (raw1 if v == 1 else raw2)
            share = tl.where(edge == v, 1.0 - t, 0.0) + tl.where((edge + 1) % 3 == v, t, 0.0)
            wv = w0 if v == 0 else (w1 if v == 1 else w2)
            zv = z0 if v == 0 else (z1 if v == 1 else z2)
            dwv = dw0 if v == 0 else (dw1 if v == 1 else dw2)
            vx = tl.where(m, pull_x * share - raw * sx, 0.0)
            vy = tl.where(m, pull_y * share - raw * sy, 0.0)
            vz = tl.where(m, -tl.math.div_rn(wv, zv) * dwv, 0.0)
            acc += tl.where(col == 3 * v, vx[:, None], 0.0) + tl.where(col == 3 * v + 1, vy[:, None], 0.0) \
                + tl.where(col == 3 * v + 2, vz[:, None], 0.0)
    k16 = tl.arange(0, 16)
    _store_row(out_ptr, partial_ptr, slot, dest, k16, tl.sum(acc, axis=0), k16 < 9)


@triton.jit
def _sigmoids(x):
    """(sigmoid(x), sigmoid(-x)) without overflow: exp(-|x|) <= 1."""
    e = tl.exp(-tl.abs(x))
    small = tl.math.div_rn(e, 1.0 + e)
    large = tl.math.div_rn(1.0, 1.0 + e)
    return tl.where(x >= 0, large, small), tl.where(x >= 0, small, large)


@triton.jit(do_not_specialize=["P", "C"])
def blend_kernel(starts_ptr, d2_ptr, depth_ptr, colours_ptr, background_ptr, grad_rgb_ptr, grad_alpha_ptr, rgb_ptr,
                 alpha_ptr, grad_d2_ptr, grad_depth_ptr, grad_colours_ptr, P, C, sigma, gamma, eps, near, far,
                 CP: tl.constexpr, BLOCK: tl.constexpr, BACKWARD: tl.constexpr):
    """Pixels [BLOCK program_id, + BLOCK): each walks its pairs [starts[p], starts[p + 1]): the depth
    softmax's max, then D = sigmoid(d2 / sigma), w = exp((zn - zmax) / gamma) and the sums; forward:
    rgb and alpha (torch_soft.soft_blend); BACKWARD: each pair's gradients (soft_blend_backward)."""
    pixels = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = pixels < P
    lo = tl.load(starts_ptr + pixels, mask=valid, other=0)
    hi = tl.load(starts_ptr + pixels + 1, mask=valid, other=0)
    count = hi - lo
    most = tl.max(count, axis=0)
    ch = tl.arange(0, CP)
    cm = ch < C
    span = far - near
    zmax = tl.full([BLOCK], 0.0, tl.float32) + eps
    for i in range(0, most):
        m = i < count
        zn = tl.math.div_rn(far - tl.load(depth_ptr + lo + i, mask=m, other=far), span)
        zmax = tl.where(m, tl.maximum(zmax, zn), zmax)
    w_bg = tl.exp(tl.math.div_rn(eps - zmax, gamma))
    S = w_bg
    nonzero = tl.full([BLOCK], 1.0, tl.float32)
    zeros = tl.zeros([BLOCK], tl.int32)
    numerator = w_bg[:, None] * tl.load(background_ptr + ch, mask=cm, other=0.0)[None, :]
    for i in range(0, most):
        m = i < count
        D, keep = _sigmoids(tl.math.div_rn(tl.load(d2_ptr + lo + i, mask=m, other=0.0), sigma))
        zn = tl.math.div_rn(far - tl.load(depth_ptr + lo + i, mask=m, other=far), span)
        w = tl.exp(tl.math.div_rn(zn - zmax, gamma))
        S += tl.where(m, D * w, 0.0)
        zeros += tl.where(m & (keep == 0), 1, 0)
        nonzero = tl.where(m & (keep != 0), nonzero * keep, nonzero)
        colour = tl.load(colours_ptr + (lo + i)[:, None] * C + ch[None, :], mask=m[:, None] & cm[None, :], other=0.0)
        numerator += tl.where(m, D * w, 0.0)[:, None] * colour
    rgb = tl.math.div_rn(numerator, S[:, None])
    if not BACKWARD:
        tl.store(rgb_ptr + pixels[:, None] * C + ch[None, :], rgb, mask=valid[:, None] & cm[None, :])
        tl.store(alpha_ptr + pixels, 1.0 - tl.where(zeros > 0, 0.0, nonzero), mask=valid)
    else:
        g_rgb = tl.load(grad_rgb_ptr + pixels[:, None] * C + ch[None, :], mask=valid[:, None] & cm[None, :], other=0.0)
        g_alpha = tl.load(grad_alpha_ptr + pixels, mask=valid, other=0.0)
        for i in range(0, most):
            m = i < count
            D, keep = _sigmoids(tl.math.div_rn(tl.load(d2_ptr + lo + i, mask=m, other=0.0), sigma))
            zn = tl.math.div_rn(far - tl.load(depth_ptr + lo + i, mask=m, other=far), span)
            w = tl.exp(tl.math.div_rn(zn - zmax, gamma))
            others = tl.where(keep == 0, tl.where(zeros == 1, nonzero, 0.0),
                              tl.where(zeros == 0, tl.math.div_rn(nonzero, tl.where(keep == 0, 1.0, keep)), 0.0))
            colour = tl.load(colours_ptr + (lo + i)[:, None] * C + ch[None, :], mask=m[:, None] & cm[None, :],
                             other=0.0)
            spread = tl.math.div_rn(tl.sum((colour - rgb) * g_rgb, axis=1), S)
            d_D = g_alpha * others + w * spread
            tl.store(grad_d2_ptr + lo + i, tl.math.div_rn(d_D * D * keep, sigma), mask=m)
            tl.store(grad_depth_ptr + lo + i, -tl.math.div_rn(D * spread * w, gamma * span), mask=m)
            tl.store(grad_colours_ptr + (lo + i)[:, None] * C + ch[None, :],
                     tl.math.div_rn(D * w, S)[:, None] * g_rgb, mask=m[:, None] & cm[None, :])
