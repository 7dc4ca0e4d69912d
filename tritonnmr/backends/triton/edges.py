"""The blurred-edge backward (Kato et al. 2018, section 3.3), balanced over scanline crossings.

For each edge (a, b) of a visible face (third vertex c) and each axis, every integer scanline d0
the edge crosses is a *crossing*; ``u`` numbers the scanlines, ``w`` runs along them, and the edge
crosses scanline d0 at ``w_x = w_a + (w_b - w_a) / (u_b - u_a) (d0 - u_a)``. Axis 0 scans columns
(u = x, w = y) and moves the vertices along y; axis 1 scans rows (u = y, w = x), along x.
``d_in`` is the last pixel inside (floor or ceil of w_x, on the outward side), ``d_out`` the first
outside.

- out: when pixel d_in is this face's, every pixel d1 from d_out to the border could be covered by
  moving the edge outwards; it would take the in-pixel's colour: ``delta = sum_c (I[d1] - I[d_in]) dL/dI[d1]``.
- in: every pixel of this face from d_in to where the scanline leaves the face (edge a-c or c-b,
  rounded outward) could be uncovered by moving the edge inwards: ``delta = sum_c (I[d1] - I[d_out]) dL/dI[d1]``.

When delta > 0 the move lowers the loss: vertex a gets ``-delta / dist_a`` with
``dist_a = (u_b - u_a) / (u_b - d0) (d1 - w_x) 2 / N_w`` (how far a alone must move along w, in NDC;
N_w the pixels along w), vertex b likewise with ``(u_b - u_a) / (d0 - u_a)``; dist is pushed away
from zero by eps.

Work split (binning.edge_plan): a face's crossings are numbered slot by slot (slot = 2 edge + axis),
and one program walks a run of at most ``limit`` consecutive crossings of one face, so no program
walks more than ``limit`` scanlines (each at most one image side, BLOCK pixels per trip). It adds
its crossings' gradients into six sums (x0, y0, x1, y1, x2, y2) and writes them once, to the face
(a face with one run) or to its slot (reduce.segment_sum_kernel then adds a face's runs in order).
"""
import triton
import triton.language as tl

from .backward import _store_row


@triton.jit
def _walk(img_ptr, grad_ptr, index_ptr, f, line, step, along, d0, ua, wa, ub, wb, uc, wc, direction, eps,
          C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr, COUNT: tl.constexpr):
    """(gradient to a's w, to b's w, loop trips (0 unless COUNT)) from the crossing of edge (a, b)
    with scanline d0 (float), whose pixel d1 sits at ``line + d1 * step``; ``along`` pixels per scanline."""
    along_f = along.to(tl.float32)
    wx = wa + tl.math.div_rn(wb - wa, ub - ua) * (d0 - ua)
    wx_c = tl.minimum(tl.maximum(wx, -2.0), along_f + 1.0)  # far-off crossings stay far off, as ints
    d_in = tl.where(direction > 0, tl.floor(wx_c), tl.ceil(wx_c)).to(tl.int32)
    d_out = d_in + direction
    ok = (d_in >= 0) & (d_in < along) & (d_out >= 0) & (d_out < along)
    p_in = line + tl.minimum(tl.maximum(d_in, 0), along - 1) * step
    p_out = line + tl.minimum(tl.maximum(d_out, 0), along - 1) * step
    ch = tl.arange(0, CP)
    i_in = tl.load(img_ptr + p_in * C + ch, mask=ch < C, other=0.0)
    i_out = tl.load(img_ptr + p_out * C + ch, mask=ch < C, other=0.0)
    # out: from d_out to the border, when the in-pixel is this face's
    do_out = ok & (tl.load(index_ptr + p_in) == f)
    out_lo = tl.where(do_out, tl.where(direction > 0, d_out, 0), along)
    out_hi = tl.where(do_out, tl.where(direction > 0, along - 1, d_out), -1)
    # in: from d_in to where the scanline leaves the face through a-c (d0 strictly between u_a and
    # u_c) or c-b, rounded outward
    between = (d0 - ua) * (d0 - uc) < 0
    via_ac = wa + tl.math.div_rn(wc - wa, tl.where(uc != ua, uc - ua, 1.0)) * (d0 - ua)
    via_cb = tl.where(ub == uc, wc, wc + tl.math.div_rn(wb - wc, tl.where(ub != uc, ub - uc, 1.0)) * (d0 - uc))
    w_far = tl.minimum(tl.maximum(tl.where(between, via_ac, via_cb), -2.0), along_f + 1.0)
    limit = tl.where(direction > 0, tl.ceil(w_far), tl.floor(w_far)).to(tl.int32)
    in_lo = tl.where(ok, tl.maximum(tl.minimum(d_in, limit), 0), along)
    in_hi = tl.where(ok, tl.minimum(tl.maximum(d_in, limit), along - 1), -1)
    # how far each vertex alone must move per pixel of edge shift: a needs u_b != d0, b needs u_a != d0
    # (as 0/1 factors: the interpreter cannot & a one-element bool with a block)
    use_a = tl.where(ub != d0, 1.0, 0.0)
    use_b = tl.where(ua != d0, 1.0, 0.0)
    k_a = tl.math.div_rn(ub - ua, tl.where(ub != d0, ub - d0, 1.0))
    k_b = tl.math.div_rn(ub - ua, tl.where(ua != d0, d0 - ua, 1.0))
    lo = tl.minimum(out_lo, in_lo)
    hi = tl.maximum(out_hi, in_hi)
    acc_a = tl.zeros([BLOCK], tl.float32)
    acc_b = tl.zeros([BLOCK], tl.float32)
    for start in range(lo, hi + 1, BLOCK):
        d1 = start + tl.arange(0, BLOCK)
        pix = line + d1 * step
        m_out = (d1 >= out_lo) & (d1 <= out_hi)
        m_in = (d1 >= in_lo) & (d1 <= in_hi)
        m_in = m_in & (tl.load(index_ptr + pix, mask=m_in, other=-1) == f)
        m2 = (m_out | m_in)[:, None] & (ch < C)[None, :]
        vals = tl.load(img_ptr + pix[:, None] * C + ch[None, :], mask=m2, other=0.0)
        grads = tl.load(grad_ptr + pix[:, None] * C + ch[None, :], mask=m2, other=0.0)
        delta_out = tl.sum((vals - i_in[None, :]) * grads, axis=1)
        delta_in = tl.sum((vals - i_out[None, :]) * grads, axis=1)
        live_out = m_out & (delta_out > 0)
        live_in = m_in & (delta_in > 0)
        # the deltas of the moves that lower the loss (out and in both, should the ranges meet)
        delta = tl.where(live_out, delta_out, 0.0) + tl.where(live_in, delta_in, 0.0)
        live = live_out | live_in
        shift = (d1.to(tl.float32) - wx) * tl.math.div_rn(2.0, along_f)
        dist_a = k_a * shift
        dist_a = tl.where(dist_a > 0, dist_a + eps, dist_a - eps)
        dist_b = k_b * shift
        dist_b = tl.where(dist_b > 0, dist_b + eps, dist_b - eps)
        acc_a += use_a * tl.where(live, tl.math.div_rn(-delta, tl.where(live, dist_a, 1.0)), 0.0)
        acc_b += use_b * tl.where(live, tl.math.div_rn(-delta, tl.where(live, dist_b, 1.0)), 0.0)
    trips = 0
    if COUNT:
        trips = (tl.maximum(hi - lo + 1, 0) + BLOCK - 1) // BLOCK
    return tl.sum(acc_a, axis=0), tl.sum(acc_b, axis=0), trips


@triton.jit(do_not_specialize=["F", "H", "W"])
def edge_kernel(pixels_ptr, face_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                img_ptr, grad_ptr, index_ptr, out_ptr, partial_ptr, trips_ptr, F, H, W, eps,
                C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr, COUNT: tl.constexpr):
    """One run of a face's crossings [start, stop) (numbered slot by slot, scanlines ascending):
    the six sums (x0, y0, x1, y1, x2, y2) of the gradient, to out (B * F, 6) or to its partial slot.
    COUNT: also store the run's pixel-loop trips to trips_ptr (for the work model's tests)."""
    item = tl.program_id(0)
    v = tl.load(item_face_ptr + item).to(tl.int64)
    start = tl.load(item_start_ptr + item)
    stop = tl.load(item_stop_ptr + item)
    slot = tl.load(item_slot_ptr + item)
    flat = tl.load(face_ptr + v)
    b = flat // F
    f = flat % F
    px0 = tl.load(pixels_ptr + v * 6 + 0)
    py0 = tl.load(pixels_ptr + v * 6 + 1)
    px1 = tl.load(pixels_ptr + v * 6 + 2)
    py1 = tl.load(pixels_ptr + v * 6 + 3)
    px2 = tl.load(pixels_ptr + v * 6 + 4)
    py2 = tl.load(pixels_ptr + v * 6 + 5)
    entry = b * H * W
    k8 = tl.arange(0, 8)
    sums = tl.zeros([8], tl.float32)  # x0, y0, x1, y1, x2, y2 (and two unused)
    trips = 0
    done = 0  # crossings of the slots before this one
    for s in range(0, 6):
        # slot s = 2 e + axis: edge (a, b) = (e, e + 1), third vertex c = e + 2 (inline selects:
        # the interpreter pays for every helper call)
        e = s // 2
        axis = s % 2
        xa = tl.where(e == 0, px0, tl.where(e == 1, px1, px2))
        ya = tl.where(e == 0, py0, tl.where(e == 1, py1, py2))
        xb = tl.where(e == 0, px1, tl.where(e == 1, px2, px0))
        yb = tl.where(e == 0, py1, tl.where(e == 1, py2, py0))
        ua = tl.where(axis == 0, xa, ya)
        ub = tl.where(axis == 0, xb, yb)
        lines = tl.where(axis == 0, W, H)
        # its scanlines: the integers in [ceil(min(u_a, u_b)), floor(max)] clipped to the image,
        # none when u_a == u_b (exact float operations, as binning.edge_slots)
        first = tl.maximum(tl.ceil(tl.minimum(ua, ub)), 0.0)
        last = tl.minimum(tl.floor(tl.maximum(ua, ub)), lines.to(tl.float32) - 1.0)
        count = tl.where(ua != ub, tl.maximum(last - first + 1.0, 0.0), 0.0).to(tl.int32)
        lo = tl.maximum(start - done, 0)
        hi = tl.minimum(stop - done, count)
        if lo < hi:  # this item walks crossings lo .. hi - 1 of the slot
            xc = tl.where(e == 0, px2, tl.where(e == 1, px0, px1))
            yc = tl.where(e == 0, py2, tl.where(e == 1, py0, py1))
            uc = tl.where(axis == 0, xc, yc)
            wa = tl.where(axis == 0, ya, xa)
            wb = tl.where(axis == 0, yb, xb)
            wc = tl.where(axis == 0, yc, xc)
            along = tl.where(axis == 0, H, W)
            # outward along w: axis 0: -1 when u_a < u_b, else +1; axis 1: +1 when u_a < u_b, else -1
            direction = tl.where(ua < ub, 1, -1) * tl.where(axis == 0, -1, 1)
            line_step = tl.where(axis == 0, 1, W)  # scanline d0 starts at entry + d0 * line_step
            step = tl.where(axis == 0, W, 1)  # pixel d1 of a scanline is d1 * step further
            ga = 0.0  # this slot's gradient to a's w and to b's w
            gb = 0.0
            for i in range(lo, hi):
                d0 = first + i
                line = entry + d0.to(tl.int64) * line_step
                da, db, n = _walk(img_ptr, grad_ptr, index_ptr, f, line, step, along, d0, ua, wa, ub, wb, uc, wc,
                                  direction, eps, C, CP, BLOCK, COUNT)
                ga += da
                gb += db
                if COUNT:
                    trips += n
            a_out = e * 2 + 1 - axis  # axis 0 moves y, axis 1 moves x
            b_out = ((e + 1) % 3) * 2 + 1 - axis
            sums += tl.where(k8 == a_out, ga, 0.0) + tl.where(k8 == b_out, gb, 0.0)
        done += count
    _store_row(out_ptr, partial_ptr, slot, tl.where(slot < 0, flat.to(tl.int64), slot.to(tl.int64)) * 6, k8, sums,
               k8 < 6)
    if COUNT:
        tl.store(trips_ptr + item, trips)
