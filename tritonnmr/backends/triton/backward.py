"""Backward passes as per-face (or per-texel) sums over grouped pixel lists, without atomics.

The covered pixels are grouped by face (binning.pixel_lists, a stable sort: a face's pixels are
contiguous and ascending) and each face's list is cut into items of a bounded length
(binning.split_segments). One program per item walks its pixels PB at a time, sums their
contributions in registers and writes its D sums once: to the face's row of ``out`` when the
face's list is one item, else to the item's own row (slot) of ``partial``, which
reduce.segment_sum_kernel adds up per face in slot order. The texel gradient of UV maps is the
same with texels for faces: its (pixel, tap) contributions are grouped by texel.
"""
import triton
import triton.language as tl

from .geometry import load_face
from .shade import cube_point, uv_taps


@triton.jit
def _item(item, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr, D):
    """(row of the output it sums, first and end element, slot, offset of its destination row in out
    (slot < 0: a whole list) or in partial) of item ``item``."""
    row = tl.load(item_face_ptr + item).to(tl.int64)
    start = tl.load(item_start_ptr + item)
    stop = tl.load(item_stop_ptr + item)
    slot = tl.load(item_slot_ptr + item).to(tl.int64)
    dest = tl.where(slot < 0, row * D, slot * D)  # offset into out (whole list) or partial (cut list)
    return row, start, stop, slot, dest


@triton.jit
def _store_row(out_ptr, partial_ptr, slot, dest, offsets, values, mask):
    """Store ``values`` at ``offsets`` of this item's destination row."""
    if slot < 0:
        tl.store(out_ptr + dest + offsets, values, mask=mask)
    else:
        tl.store(partial_ptr + dest + offsets, values, mask=mask)


@triton.jit
def depth_sums_kernel(faces_ptr, order_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                      weights_ptr, depth_ptr, grad_ptr, out_ptr, partial_ptr, PB: tl.constexpr):
    """Depth gradient (9 sums) of one face from its pixels: with z = 1 / sum_m w_m / z_m,
    dz/dz_k = z^2 w_k / z_k^2 and dz/d(x_k, y_k) = z^2 w_k sum_m grad_p(w_m) / z_m,
    grad_p(w_m) = (A_m, B_m) / det. So with sum_k = the sum over pixels of g z^2 w_k:
    (x_k, y_k, z_k) get (sum_k kx, sum_k ky, sum_k / z_k^2), kx = sum_m A_m / (det z_m), ky alike."""
    face, start, stop, slot, dest = _item(tl.program_id(0), item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                                          9)
    _drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = load_face(faces_ptr + face * 9)
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # > 0 for a drawn face
    kx = tl.math.div_rn(tl.math.div_rn(y1 - y2, det), z0) + tl.math.div_rn(tl.math.div_rn(y2 - y0, det), z1) \
        + tl.math.div_rn(tl.math.div_rn(y0 - y1, det), z2)
    ky = tl.math.div_rn(tl.math.div_rn(x2 - x1, det), z0) + tl.math.div_rn(tl.math.div_rn(x0 - x2, det), z1) \
        + tl.math.div_rn(tl.math.div_rn(x1 - x0, det), z2)
    acc0 = tl.zeros([PB], tl.float32)  # g z^2 w_k per lane
    acc1 = tl.zeros([PB], tl.float32)
    acc2 = tl.zeros([PB], tl.float32)
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        m = idx < stop
        pix = tl.load(order_ptr + idx, mask=m, other=0)
        z = tl.load(depth_ptr + pix, mask=m, other=0.0)
        gz2 = tl.load(grad_ptr + pix, mask=m, other=0.0) * z * z
        acc0 += gz2 * tl.load(weights_ptr + pix * 3 + 0, mask=m, other=0.0)
        acc1 += gz2 * tl.load(weights_ptr + pix * 3 + 1, mask=m, other=0.0)
        acc2 += gz2 * tl.load(weights_ptr + pix * 3 + 2, mask=m, other=0.0)
    k = tl.arange(0, 16)  # output 3 vertex + coordinate, 9 of 16 lanes
    vertex = k // 3
    sum_k = tl.where(vertex == 0, tl.sum(acc0, axis=0),
                     tl.where(vertex == 1, tl.sum(acc1, axis=0), tl.sum(acc2, axis=0)))
    zk = tl.where(vertex == 0, z0, tl.where(vertex == 1, z1, z2))
    values = tl.where(k % 3 == 0, sum_k * kx, tl.where(k % 3 == 1, sum_k * ky, tl.math.div_rn(sum_k, zk * zk)))
    _store_row(out_ptr, partial_ptr, slot, dest, k, values, k < 9)


@triton.jit(do_not_specialize=["C"])
def interpolate_sums_kernel(order_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr, bary_ptr,
                            grad_ptr, out_ptr, partial_ptr, C, CP: tl.constexpr, PB: tl.constexpr):
    """Gradient (3, C) of one face's vertex attributes: sum over its pixels of bary_k * grad."""
    face, start, stop, slot, dest = _item(tl.program_id(0), item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                                          3 * C)
    ch = tl.arange(0, CP)
    acc0 = tl.zeros([PB, CP], tl.float32)
    acc1 = tl.zeros([PB, CP], tl.float32)
    acc2 = tl.zeros([PB, CP], tl.float32)
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        m = idx < stop
        pix = tl.load(order_ptr + idx, mask=m, other=0)
        g = tl.load(grad_ptr + (pix * C)[:, None] + ch[None, :], mask=m[:, None] & (ch < C)[None, :], other=0.0)
        acc0 += tl.load(bary_ptr + pix * 3 + 0, mask=m, other=0.0)[:, None] * g
        acc1 += tl.load(bary_ptr + pix * 3 + 1, mask=m, other=0.0)[:, None] * g
        acc2 += tl.load(bary_ptr + pix * 3 + 2, mask=m, other=0.0)[:, None] * g
    _store_row(out_ptr, partial_ptr, slot, dest, ch, tl.sum(acc0, axis=0), ch < C)
    _store_row(out_ptr, partial_ptr, slot, dest, C + ch, tl.sum(acc1, axis=0), ch < C)
    _store_row(out_ptr, partial_ptr, slot, dest, 2 * C + ch, tl.sum(acc2, axis=0), ch < C)


@triton.jit(do_not_specialize=["T", "C"])
def cube_sums_kernel(order_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr, bary_ptr, grad_ptr,
                     out_ptr, partial_ptr, T, C, top, CP: tl.constexpr, CB: tl.constexpr, PB: tl.constexpr):
    """Gradient of one face's cube (T^3 cells x C) for cells [CB program_id(1), + CB): each pixel's
    gradient times the trilinear weight of each of its 8 cells. Per trip, the weights of PB pixels
    form a (PB, CB) matrix W (one-hot cells times weights), and the cells gain W^T grad."""
    cells = T * T * T
    face, start, stop, slot, dest = _item(tl.program_id(0), item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                                          cells * C)
    cell = tl.program_id(1) * CB + tl.arange(0, CB)
    ch = tl.arange(0, CP)
    acc = tl.zeros([CB, CP], tl.float32)
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        m = idx < stop
        pix = tl.load(order_ptr + idx, mask=m, other=0)
        lo0, hi0, f0, lo1, hi1, f1, lo2, hi2, f2 = cube_point(tl.load(bary_ptr + pix * 3 + 0, mask=m, other=0.0),
                                                             tl.load(bary_ptr + pix * 3 + 1, mask=m, other=0.0),
                                                             tl.load(bary_ptr + pix * 3 + 2, mask=m, other=0.0), T, top)
        weights = tl.zeros([PB, CB], tl.float32)
        for corner in tl.static_range(8):  # the cell and weight of corner c, as in shade.cubes_kernel
            c = ((hi0 if corner & 1 else lo0) * T + (hi1 if corner & 2 else lo1)) * T + (hi2 if corner & 4 else lo2)
            w = (f0 if corner & 1 else 1.0 - f0) * (f1 if corner & 2 else 1.0 - f1)
            w = w * (f2 if corner & 4 else 1.0 - f2)
            weights += tl.where(c[:, None] == cell[None, :], w[:, None], 0.0)
        g = tl.load(grad_ptr + (pix * C)[:, None] + ch[None, :], mask=m[:, None] & (ch < C)[None, :], other=0.0)
        acc += tl.sum(weights[:, :, None] * g[:, None, :], axis=0)
    _store_row(out_ptr, partial_ptr, slot, dest, cell[:, None] * C + ch[None, :], acc,
               (cell < cells)[:, None] & (ch < C)[None, :])


@triton.jit(do_not_specialize=["F", "HW", "wrap", "C"])
def uv_sums_kernel(order_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr, index_ptr, bary_ptr,
                   uvs_ptr, material_ptr, texels_ptr, table_ptr, grad_ptr, out_ptr, partial_ptr, F, HW, wrap, C,
                   CP: tl.constexpr, PB: tl.constexpr):
    """Gradient (3, 2) of one face's vertex uvs: bary_k times d colour/d(u, v) . grad, with
    d/du = w [(1 - fy)(T01 - T00) + fy (T11 - T10)] and d/dv = -h [(1 - fx)(T10 - T00) + fx (T11 - T01)]."""
    face, start, stop, slot, dest = _item(tl.program_id(0), item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                                          6)
    ch = tl.arange(0, CP)[None, :]
    du0 = tl.zeros([PB], tl.float32)
    du1 = tl.zeros([PB], tl.float32)
    du2 = tl.zeros([PB], tl.float32)
    dv0 = tl.zeros([PB], tl.float32)
    dv1 = tl.zeros([PB], tl.float32)
    dv2 = tl.zeros([PB], tl.float32)
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        m = idx < stop
        pix = tl.load(order_ptr + idx, mask=m, other=0)
        t00, t01, t10, t11, fx, fy, h, w, _f, b0, b1, b2 = uv_taps(pix, m, index_ptr, bary_ptr, uvs_ptr,
                                                                   material_ptr, table_ptr, F, HW, wrap)
        m2 = m[:, None] & (ch < C)
        g = tl.load(grad_ptr + (pix * C)[:, None] + ch, mask=m2, other=0.0)
        v00 = tl.load(texels_ptr + t00[:, None] * C + ch, mask=m2, other=0.0)
        v01 = tl.load(texels_ptr + t01[:, None] * C + ch, mask=m2, other=0.0)
        v10 = tl.load(texels_ptr + t10[:, None] * C + ch, mask=m2, other=0.0)
        v11 = tl.load(texels_ptr + t11[:, None] * C + ch, mask=m2, other=0.0)
        du = w * tl.sum(((1 - fy)[:, None] * (v01 - v00) + fy[:, None] * (v11 - v10)) * g, axis=1)
        dv = -h * tl.sum(((1 - fx)[:, None] * (v10 - v00) + fx[:, None] * (v11 - v01)) * g, axis=1)
        du0 += b0 * du
        du1 += b1 * du
        du2 += b2 * du
        dv0 += b0 * dv
        dv1 += b1 * dv
        dv2 += b2 * dv
    k = tl.arange(0, 8)
    values = tl.where(k == 0, tl.sum(du0, axis=0), tl.where(k == 1, tl.sum(dv0, axis=0),
                      tl.where(k == 2, tl.sum(du1, axis=0), tl.where(k == 3, tl.sum(dv1, axis=0),
                               tl.where(k == 4, tl.sum(du2, axis=0), tl.sum(dv2, axis=0))))))
    _store_row(out_ptr, partial_ptr, slot, dest, k, values, k < 6)


@triton.jit(do_not_specialize=["F", "HW", "wrap", "C"])
def texel_sums_kernel(contrib_ptr, pixels_ptr, item_texel_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                      index_ptr, bary_ptr, uvs_ptr, material_ptr, table_ptr, grad_ptr, out_ptr, partial_ptr,
                      F, HW, wrap, C, CP: tl.constexpr, PB: tl.constexpr):
    """Gradient (C,) of one texel: over its contributions c (pixel pixels[c // 4], tap q = c % 4), the
    tap's bilinear weight times the pixel's gradient."""
    texel, start, stop, slot, dest = _item(tl.program_id(0), item_texel_ptr, item_start_ptr, item_stop_ptr,
                                           item_slot_ptr,
                                           C)
    ch = tl.arange(0, CP)[None, :]
    acc = tl.zeros([PB, CP], tl.float32)
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        m = idx < stop
        c = tl.load(contrib_ptr + idx, mask=m, other=0)
        pix = tl.load(pixels_ptr + c // 4, mask=m, other=0)
        q = c % 4
        _t00, _t01, _t10, _t11, fx, fy, _h, _w, _f, _b0, _b1, _b2 = uv_taps(
            pix, m, index_ptr, bary_ptr, uvs_ptr, material_ptr, table_ptr, F, HW, wrap)
        wx = tl.where(q % 2 == 1, fx, 1 - fx)
        wy = tl.where(q >= 2, fy, 1 - fy)
        g = tl.load(grad_ptr + (pix * C)[:, None] + ch, mask=m[:, None] & (ch < C), other=0.0)
        acc += (wx * wy)[:, None] * g
    _store_row(out_ptr, partial_ptr, slot, dest, tl.arange(0, CP), tl.sum(acc, axis=0), tl.arange(0, CP) < C)
