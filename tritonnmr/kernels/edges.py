"""The blurred-edge backward (Kato et al. 2018, section 3.3): one program per (batch, face).

For each edge (a, b) of a front face and each axis, every integer scanline d0 the edge crosses
is visited. ``u`` runs along the scanlines' index, ``w`` along the scanline; the edge crosses
scanline d0 at w_x. Pixels the edge could reach by moving outwards ("out") would take the colour
of the last pixel inside; pixels of this face it could uncover by moving inwards ("in") would
take the colour of the first pixel outside. delta = sum_c (I - I_new) * dL/dI; when delta > 0
the move lowers the loss and each vertex gets -delta / dist, dist being how far that vertex alone
must move along w for the edge to reach the pixel. Sums stay in registers and are written once.
"""
import triton
import triton.language as tl

from .geometry import load_face


@triton.jit
def _move(delta, mask, k, shift, eps):
    """-delta / dist for the pixels in ``mask`` with delta > 0; dist = k * shift pushed away from 0 by eps."""
    dist = k * shift
    dist = tl.where(dist > 0, dist + eps, dist - eps)
    live = mask & (delta > 0)
    return tl.where(live, -delta / tl.where(live, dist, 1.0), 0.0)


@triton.jit
def _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front, ua, wa, ub, wb, uc, wc,
               AXIS: tl.constexpr, C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr):
    """Gradients (to a's w, to b's w) from edge (a, b) along one axis (0: columns, 1: rows)."""
    Sf = S.to(tl.float32)
    if AXIS == 0:  # scanline d0 is column d0; d1 walks rows; outward is -w when ua < ub
        direction = tl.where(ua < ub, -1, 1)
        s0 = 1
        s1 = S
    else:  # scanline d0 is row d0; d1 walks columns; outward is +w when ua < ub
        direction = tl.where(ua < ub, 1, -1)
        s0 = S
        s1 = 1
    first = tl.maximum(tl.ceil(tl.minimum(ua, ub)), 0.0)
    last = tl.minimum(tl.floor(tl.maximum(ua, ub)), Sf - 1.0)
    n = tl.where(front & (ua != ub) & (last >= first), (last - first).to(tl.int32) + 1, 0)
    ch = tl.arange(0, CP)
    cmask = ch < C
    acc_a = tl.zeros([BLOCK], tl.float32)
    acc_b = tl.zeros([BLOCK], tl.float32)
    for i in range(0, n):
        d0 = first.to(tl.int32) + i
        d0f = d0.to(tl.float32)
        wx = (wb - wa) / (ub - ua) * (d0f - ua) + wa
        d_in = tl.where(direction > 0, tl.floor(wx), tl.ceil(wx)).to(tl.int32)
        d_out = d_in + direction
        ok = (d_in >= 0) & (d_in < S) & (d_out >= 0) & (d_out < S)
        line = b.to(tl.int64) * S * S + d0 * s0  # pixel (d0, d1) sits at line + d1 * s1
        p_in = line + tl.minimum(tl.maximum(d_in, 0), S - 1) * s1
        p_out = line + tl.minimum(tl.maximum(d_out, 0), S - 1) * s1
        i_in = tl.load(img_ptr + p_in * C + ch, mask=cmask, other=0.0)
        i_out = tl.load(img_ptr + p_out * C + ch, mask=cmask, other=0.0)
        # out: from d_out to the border, only when the in-pixel is this face's
        do_out = ok & (tl.load(index_ptr + p_in) == f)
        out_lo = tl.where(do_out, tl.where(direction > 0, d_out, 0), S)
        out_hi = tl.where(do_out, tl.where(direction > 0, S - 1, d_out), -1)
        # in: from d_in to where the scanline leaves the face (edge a-c or c-b), rounded outward
        between = (d0f - ua) * (d0f - uc) < 0
        via_ac = (wc - wa) / tl.where(uc == ua, 1.0, uc - ua) * (d0f - ua) + wa  # used only when between
        via_cb = tl.where(ub == uc, wc, (wb - wc) / tl.where(ub == uc, 1.0, ub - uc) * (d0f - uc) + wc)
        w_far = tl.where(between, via_ac, via_cb)
        limit = tl.where(direction > 0, tl.ceil(w_far), tl.floor(w_far)).to(tl.int32)
        in_lo = tl.where(ok, tl.maximum(tl.minimum(d_in, limit), 0), S)
        in_hi = tl.where(ok, tl.minimum(tl.maximum(d_in, limit), S - 1), -1)
        # distance factors: vertex a alone (needs ub != d0), vertex b alone (needs ua != d0)
        use_a = tl.where(ub != d0f, 1.0, 0.0)
        use_b = tl.where(ua != d0f, 1.0, 0.0)
        k_a = (ub - ua) / tl.where(ub != d0f, ub - d0f, 1.0)
        k_b = (ub - ua) / tl.where(ua != d0f, d0f - ua, 1.0)
        for start in range(tl.minimum(out_lo, in_lo), tl.maximum(out_hi, in_hi) + 1, BLOCK):
            d1 = start + tl.arange(0, BLOCK)
            pix = line + d1 * s1
            m_out = (d1 >= out_lo) & (d1 <= out_hi)
            m_in = (d1 >= in_lo) & (d1 <= in_hi)
            m_any = m_out | m_in
            m_in = m_in & (tl.load(index_ptr + pix, mask=m_in, other=-1) == f)
            m2 = m_any[:, None] & cmask[None, :]
            vals = tl.load(img_ptr + pix[:, None] * C + ch[None, :], mask=m2, other=0.0)
            grads = tl.load(grad_ptr + pix[:, None] * C + ch[None, :], mask=m2, other=0.0)
            delta_out = tl.sum((vals - i_in[None, :]) * grads, axis=1)
            delta_in = tl.sum((vals - i_out[None, :]) * grads, axis=1)
            shift = (d1.to(tl.float32) - wx) * (2.0 / Sf)
            delta = tl.where(m_out, delta_out, delta_in)  # the two ranges are disjoint
            acc_a += use_a * _move(delta, m_out | m_in, k_a, shift, eps)
            acc_b += use_b * _move(delta, m_out | m_in, k_b, shift, eps)
    return tl.sum(acc_a, axis=0), tl.sum(acc_b, axis=0)


@triton.jit(do_not_specialize=["F", "S"])
def edge_backward_kernel(faces_ptr, img_ptr, grad_ptr, index_ptr, out_ptr, F, S, eps,
                         C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr):
    """Gradient (B, F, 3, 3) to screen-space faces from image (B, S, S, C) and its gradient.
    Faces that are not drawn (see geometry.sanitize) scan nothing and get exactly 0."""
    pid = tl.program_id(0)
    b = pid // F
    f = pid % F
    front, x0, y0, z0, x1, y1, z1, x2, y2, z2 = load_face(faces_ptr + pid.to(tl.int64) * 9)
    Sf = S.to(tl.float32)
    # pixel coordinates 0.5 (v S + S - 1)
    px0 = 0.5 * (x0 * Sf + Sf - 1.0)
    px1 = 0.5 * (x1 * Sf + Sf - 1.0)
    px2 = 0.5 * (x2 * Sf + Sf - 1.0)
    py0 = 0.5 * (y0 * Sf + Sf - 1.0)
    py1 = 0.5 * (y1 * Sf + Sf - 1.0)
    py2 = 0.5 * (y2 * Sf + Sf - 1.0)
    # axis 0 (u = x, w = y) moves vertices along y; axis 1 (u = y, w = x) along x
    gy0, gy1 = _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front,
                           px0, py0, px1, py1, px2, py2, 0, C, CP, BLOCK)
    gx0, gx1 = _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front,
                           py0, px0, py1, px1, py2, px2, 1, C, CP, BLOCK)
    gy1b, gy2 = _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front,
                           px1, py1, px2, py2, px0, py0, 0, C, CP, BLOCK)
    gx1b, gx2 = _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front,
                           py1, px1, py2, px2, py0, px0, 1, C, CP, BLOCK)
    gy2b, gy0b = _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front,
                           px2, py2, px0, py0, px1, py1, 0, C, CP, BLOCK)
    gx2b, gx0b = _edge_axis(img_ptr, grad_ptr, index_ptr, b, f, S, eps, front,
                           py2, px2, py0, px0, py1, px1, 1, C, CP, BLOCK)
    out = out_ptr + pid.to(tl.int64) * 9
    tl.store(out + 0, gx0 + gx0b)
    tl.store(out + 1, gy0 + gy0b)
    tl.store(out + 2, 0.0)
    tl.store(out + 3, gx1 + gx1b)
    tl.store(out + 4, gy1 + gy1b)
    tl.store(out + 5, 0.0)
    tl.store(out + 6, gx2 + gx2b)
    tl.store(out + 7, gy2 + gy2b)
    tl.store(out + 8, 0.0)
