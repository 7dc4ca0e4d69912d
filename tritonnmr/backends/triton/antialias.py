"""Analytic antialiasing (gradient="analytic") as Triton kernels: the formulas of backends/torch_antialias.py.

- ``pairs_kernel``: one lane per pixel pair (pair id 2 p + d, p the flat pixel): which face, which of its
  edges crosses between the two centres, alpha and the edge code. Nothing is summed: each lane writes
  its own pair.
- ``gather_kernel``: one lane per pixel and channel, gathering its four pairs in the reference's order
  (right, up, left, below): the blended image, or (BACKWARD) the image's gradient.
- ``face_sums_kernel``: the faces' gradient. The pairs with an edge code are grouped by face (a
  stable sort: binning.pixel_items over the map of the pairs' faces) and cut into items; one program
  per item sums its pairs' contributions (6 numbers: x and y of the three vertices) in registers and
  writes them once, to the face's row or to its slot, which reduce.segment_sum_kernel adds in slot
  order: balanced and atomic-free, bit-identical whatever order the programs run in.

Every fp32 division is ``tl.math.div_rn``; no lane, masked or not, divides by zero (a masked lane's
crossing denominator is replaced by 1).

The ops use the package's launch helpers (``_launch``, ``device_of``, ``_slots``, ``_add_slots``),
looked up when they run: the package imports this module, so this module cannot import it (as
``gradients.estimator`` loads the estimator modules by name).
"""
import importlib

import torch
import triton
import triton.language as tl

from ..common import guarded
from ..torch_antialias import CROSSING_SLACK, NO_EDGE
from . import binning, tuning
from .backward import _item, _store_row

SLACK = tl.constexpr(CROSSING_SLACK)
NONE = tl.constexpr(NO_EDGE)


def _package():
    """The Triton backend package (tritonnmr.backends.triton), for its launch helpers."""
    return importlib.import_module(__package__)


@triton.jit
def _to_pixels(ndc, size_f, centre):
    """Pixel coordinate 0.5 (v S + S - 1) of NDC ``ndc``, less the pixel index ``centre`` (float)."""
    return 0.5 * (ndc * size_f + size_f - 1.0) - centre


@triton.jit
def _exit(ui, vi, uj, vj, k: tl.constexpr, second, live, sil_ptr, found, best, best_edge, steep, sil):
    """The search for the face's exit edge, after edge k = (i, j): it crosses the pair's line when
    v_i, v_j lie on different sides of 0, at c = +-(u_i v_j - u_j v_i) / (v_j - v_i) (the sign: + when
    the face is p0's); the farthest crossing wins, ties to the lower k. Returns the updated (found,
    best c, its edge, whether it is steep enough, its silhouette flag)."""
    crosses = live & ((vi < 0.0) ^ (vj < 0.0))
    dv = vj - vi
    t = tl.math.div_rn(ui * vj - uj * vi, tl.where(crosses, dv, 1.0))
    dc = tl.where(second, -t, t)
    better = crosses & (~found | (dc > best))
    flag = tl.load(sil_ptr + k, mask=crosses, other=0)
    return (found | crosses, tl.where(better, dc, best), tl.where(better, k, best_edge),
            tl.where(better, tl.abs(dv) >= tl.abs(uj - ui), steep), tl.where(better, flag != 0, sil))


@triton.jit(do_not_specialize=["F", "H", "W", "total"])
def pairs_kernel(faces_ptr, index_ptr, depth_ptr, sil_ptr, alpha_ptr, code_ptr, F, H, W, total,
                 BLOCK: tl.constexpr):
    """alpha and edge code of BLOCK pairs (torch_antialias.antialias_pairs)."""
    q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = q < total
    across = (q % 2) == 0
    pix = q // 2
    rem = pix % (H * W)
    b = pix // (H * W)
    r = rem // W
    c = rem % W
    has = m & tl.where(across, c + 1 < W, r + 1 < H)
    pix1 = pix + tl.where(across, 1, W)
    f0 = tl.load(index_ptr + pix, mask=m, other=-1)
    f1 = tl.load(index_ptr + pix1, mask=has, other=-1)
    z0 = tl.load(depth_ptr + pix, mask=m, other=0.0)
    z1 = tl.load(depth_ptr + pix1, mask=has, other=0.0)
    live = has & (f0 != f1)
    second = (f0 < 0) | ((f1 >= 0) & (z1 < z0))
    flat = b * F + tl.where(live, tl.where(second, f1, f0), 0)
    rowf = (r + tl.where(second & ~across, 1, 0)).to(tl.float32)
    colf = (c + tl.where(second & across, 1, 0)).to(tl.float32)
    W_f = W.to(tl.float32)
    H_f = H.to(tl.float32)
    corner = faces_ptr + flat * 9
    px0 = _to_pixels(tl.load(corner + 0, mask=live, other=0.0), W_f, colf)
    py0 = _to_pixels(tl.load(corner + 1, mask=live, other=0.0), H_f, rowf)
    px1 = _to_pixels(tl.load(corner + 3, mask=live, other=0.0), W_f, colf)
    py1 = _to_pixels(tl.load(corner + 4, mask=live, other=0.0), H_f, rowf)
    px2 = _to_pixels(tl.load(corner + 6, mask=live, other=0.0), W_f, colf)
    py2 = _to_pixels(tl.load(corner + 7, mask=live, other=0.0), H_f, rowf)
    u0, v0 = tl.where(across, px0, py0), tl.where(across, py0, px0)
    u1, v1 = tl.where(across, px1, py1), tl.where(across, py1, px1)
    u2, v2 = tl.where(across, px2, py2), tl.where(across, py2, px2)
    sil_face = sil_ptr + flat * 3
    found = tl.zeros([BLOCK], tl.int1)
    best = tl.zeros([BLOCK], tl.float32)
    best_edge = tl.zeros([BLOCK], tl.int32)
    steep = found
    sil = found
    found, best, best_edge, steep, sil = _exit(u0, v0, u1, v1, 0, second, live, sil_face, found, best, best_edge,
                                               steep, sil)
    found, best, best_edge, steep, sil = _exit(u1, v1, u2, v2, 1, second, live, sil_face, found, best, best_edge,
                                               steep, sil)
    found, best, best_edge, steep, sil = _exit(u2, v2, u0, v0, 2, second, live, sil_face, found, best, best_edge,
                                               steep, sil)
    ok = found & sil & steep & (best > -SLACK) & (best < 1.0 + SLACK)
    clamped = tl.minimum(tl.maximum(best, 0.0), 1.0)
    alpha = 0.5 - clamped
    alpha = tl.where(second, -alpha, alpha)
    code = (flat * 3 + best_edge) * 2 + second.to(tl.int64)
    tl.store(alpha_ptr + q, tl.where(ok, alpha, 0.0), mask=m)
    tl.store(code_ptr + q, tl.where(ok & (clamped == best), code, NONE), mask=m)


@triton.jit
def _pixels(program, BLOCK: tl.constexpr, CP: tl.constexpr, H, W, total, C):
    """(flat pixel (BLOCK,), pixel mask, its row and column, channel offsets (BLOCK, CP), their mask) of
    program ``program``'s BLOCK pixels."""
    pix = program.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = pix < total
    rem = pix % (H * W)
    ch = tl.arange(0, CP)
    return pix, m, rem // W, rem % W, pix[:, None] * C + ch[None, :], m[:, None] & (ch < C)[None, :]


@triton.jit
def _term(alpha_ptr, values_ptr, off, p0, has, d: tl.constexpr, shift, m2, value, AS_FIRST: tl.constexpr,
          BACKWARD: tl.constexpr):
    """What one of a pixel's pairs (p0 its first pixel, d its direction; the neighbour's values at
    ``off + shift``) gives it: forward, ``alpha (image[p1] - image[p0])`` where the pixel is the one the
    pair blends, else 0; backward (values: the gradient g), ``-alpha g[T]`` as p0, ``+alpha g[T]`` as p1."""
    a = tl.load(alpha_ptr + p0 * 2 + d, mask=has, other=0.0)[:, None]
    other = tl.load(values_ptr + off + shift, mask=has[:, None] & m2, other=0.0)
    first = value if AS_FIRST else other
    second = other if AS_FIRST else value
    if BACKWARD:
        spread = a * tl.where(a > 0.0, first, second)
        term = tl.where(has[:, None], -spread if AS_FIRST else spread, 0.0)
    else:
        to_this = (a > 0.0) if AS_FIRST else ~(a > 0.0)
        term = tl.where(has[:, None] & to_this, a * (second - first), 0.0)
    return term


@triton.jit(do_not_specialize=["H", "W", "total", "C"])
def gather_kernel(values_ptr, alpha_ptr, out_ptr, H, W, total, C, CP: tl.constexpr, BLOCK: tl.constexpr,
                  BACKWARD: tl.constexpr):
    """out = values plus the pixel's pairs' terms (_term) in the order right, up, left, below: the
    blended image (values: the image), or with BACKWARD the image's gradient (values: the gradient)."""
    pix, m, r, c, off, m2 = _pixels(tl.program_id(0), BLOCK, CP, H, W, total, C)
    value = tl.load(values_ptr + off, mask=m2, other=0.0)
    out = value + _term(alpha_ptr, values_ptr, off, pix, m & (c + 1 < W), 0, C, m2, value, True, BACKWARD)
    out = out + _term(alpha_ptr, values_ptr, off, pix, m & (r + 1 < H), 1, W * C, m2, value, True, BACKWARD)
    out = out + _term(alpha_ptr, values_ptr, off, pix - 1, m & (c > 0), 0, -C, m2, value, False, BACKWARD)
    out = out + _term(alpha_ptr, values_ptr, off, pix - W, m & (r > 0), 1, -W * C, m2, value, False, BACKWARD)
    tl.store(out_ptr + off, out, mask=m2)


@triton.jit
def _vertex(k, x0, x1, x2):
    """Per lane, the value of vertex k (0, 1 or 2) among x0, x1, x2 (scalars of one face)."""
    return tl.where(k == 0, x0, tl.where(k == 1, x1, x2))


@triton.jit(do_not_specialize=["H", "W", "C"])
def face_sums_kernel(order_ptr, item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr, faces_ptr, image_ptr,
                     alpha_ptr, code_ptr, grad_ptr, out_ptr, partial_ptr, H, W, C, CP: tl.constexpr,
                     PB: tl.constexpr):
    """Gradient (x0, y0, x1, y1, x2, y2) of one face from its pairs: dL/dt = -sum_C g[T] (image[p1] -
    image[p0]) times dt/d(u_i, u_j, v_i, v_j) = (v_j, -v_i, v_j (u_i - u_j) / D, -v_i (u_i - u_j) / D)
    / D, D = v_j - v_i, in NDC by W / 2 (x) and H / 2 (y)."""
    face, start, stop, slot, dest = _item(tl.program_id(0), item_face_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                                          6)
    x0 = tl.load(faces_ptr + face * 9 + 0)
    y0 = tl.load(faces_ptr + face * 9 + 1)
    x1 = tl.load(faces_ptr + face * 9 + 3)
    y1 = tl.load(faces_ptr + face * 9 + 4)
    x2 = tl.load(faces_ptr + face * 9 + 6)
    y2 = tl.load(faces_ptr + face * 9 + 7)
    W_f = W.to(tl.float32)
    H_f = H.to(tl.float32)
    ch = tl.arange(0, CP)[None, :]
    acc_x0 = tl.zeros([PB], tl.float32)
    acc_y0 = tl.zeros([PB], tl.float32)
    acc_x1 = tl.zeros([PB], tl.float32)
    acc_y1 = tl.zeros([PB], tl.float32)
    acc_x2 = tl.zeros([PB], tl.float32)
    acc_y2 = tl.zeros([PB], tl.float32)
    for j in range(start, stop, PB):
        idx = j + tl.arange(0, PB)
        mk = idx < stop
        q = tl.load(order_ptr + idx, mask=mk, other=0)
        e = tl.load(code_ptr + q, mask=mk, other=0)
        k = (e // 2) % 3
        second = (e % 2) == 1
        across = (q % 2) == 0
        pix = q // 2
        rem = pix % (H * W)
        pix1 = pix + tl.where(across, 1, W)
        a = tl.load(alpha_ptr + q, mask=mk, other=0.0)
        m2 = mk[:, None] & (ch < C)
        g0 = tl.load(grad_ptr + pix[:, None] * C + ch, mask=m2, other=0.0)
        g1 = tl.load(grad_ptr + pix1[:, None] * C + ch, mask=m2, other=0.0)
        i0 = tl.load(image_ptr + pix[:, None] * C + ch, mask=m2, other=0.0)
        i1 = tl.load(image_ptr + pix1[:, None] * C + ch, mask=m2, other=0.0)
        grad_t = -tl.sum(tl.where((a > 0.0)[:, None], g0, g1) * (i1 - i0), axis=1)
        rowf = (rem // W + tl.where(second & ~across, 1, 0)).to(tl.float32)
        colf = (rem % W + tl.where(second & across, 1, 0)).to(tl.float32)
        kj = (k + 1) % 3
        pxi = _to_pixels(_vertex(k, x0, x1, x2), W_f, colf)
        pyi = _to_pixels(_vertex(k, y0, y1, y2), H_f, rowf)
        pxj = _to_pixels(_vertex(kj, x0, x1, x2), W_f, colf)
        pyj = _to_pixels(_vertex(kj, y0, y1, y2), H_f, rowf)
        ui, vi = tl.where(across, pxi, pyi), tl.where(across, pyi, pxi)
        uj, vj = tl.where(across, pxj, pyj), tl.where(across, pyj, pxj)
        dv = tl.where(mk, vj - vi, 1.0)
        du = ui - uj
        su = tl.where(across, 0.5 * W_f, 0.5 * H_f)
        sv = tl.where(across, 0.5 * H_f, 0.5 * W_f)
        gui = grad_t * tl.math.div_rn(vj, dv) * su
        gvi = grad_t * tl.math.div_rn(vj * du, dv * dv) * sv
        guj = grad_t * tl.math.div_rn(-vi, dv) * su
        gvj = grad_t * tl.math.div_rn(-vi * du, dv * dv) * sv
        gxi, gyi = tl.where(across, gui, gvi), tl.where(across, gvi, gui)
        gxj, gyj = tl.where(across, guj, gvj), tl.where(across, gvj, guj)
        acc_x0 += tl.where(k == 0, gxi, 0.0) + tl.where(kj == 0, gxj, 0.0)
        acc_y0 += tl.where(k == 0, gyi, 0.0) + tl.where(kj == 0, gyj, 0.0)
        acc_x1 += tl.where(k == 1, gxi, 0.0) + tl.where(kj == 1, gxj, 0.0)
        acc_y1 += tl.where(k == 1, gyi, 0.0) + tl.where(kj == 1, gyj, 0.0)
        acc_x2 += tl.where(k == 2, gxi, 0.0) + tl.where(kj == 2, gxj, 0.0)
        acc_y2 += tl.where(k == 2, gyi, 0.0) + tl.where(kj == 2, gyj, 0.0)
    n = tl.arange(0, 8)
    values = tl.where(n == 0, tl.sum(acc_x0, axis=0), tl.where(n == 1, tl.sum(acc_y0, axis=0),
                      tl.where(n == 2, tl.sum(acc_x1, axis=0), tl.where(n == 3, tl.sum(acc_y1, axis=0),
                               tl.where(n == 4, tl.sum(acc_x2, axis=0), tl.sum(acc_y2, axis=0))))))
    _store_row(out_ptr, partial_ptr, slot, dest, n, values, n < 6)


# ----------------------------------------------------------------------------------------------
# The ops (backends.OPS)
# ----------------------------------------------------------------------------------------------
def _map(kernel, count, height, width, lanes_per_item, *args, **meta):
    """Launch a pair- or pixel-parallel kernel over ``count`` items, map_block of them per program, under
    the device of its first argument."""
    package = _package()
    block = tuning.config(height, width, 1).map_block
    with package.device_of(args[0]):
        package._launch(kernel, (triton.cdiv(count, block),), block * lanes_per_item)(*args, BLOCK=block, **meta)


def _gather(values, alpha, backward):
    """gather_kernel's result (B, H, W, C): the blend of an image, or (``backward``) the image's gradient."""
    B, H, W, C = values.shape
    CP = triton.next_power_of_2(C)
    out = torch.empty_like(values)
    _map(gather_kernel, B * H * W, H, W, CP, values, alpha, out, H, W, B * H * W, C, CP=CP, BACKWARD=backward)
    return out


@guarded
def antialias_pairs(faces, face_index, depth, silhouette):
    """(alpha (B, H, W, 2), edge (B, H, W, 2) int64) of every pixel pair (torch_antialias.antialias_pairs)."""
    B, H, W = face_index.shape
    alpha = torch.empty((B, H, W, 2), dtype=faces.dtype, device=faces.device)
    code = torch.empty((B, H, W, 2), dtype=torch.int64, device=faces.device)
    _map(pairs_kernel, alpha.numel(), H, W, 1, faces, face_index, depth, silhouette.view(torch.uint8), alpha, code,
         faces.shape[1], H, W, alpha.numel())
    return alpha, code


@guarded
def antialias(image, alpha):
    """(B, H, W, C): image blended along the pairs' alpha (B, H, W, 2)."""
    return _gather(image, alpha, False)


@guarded
def antialias_backward(faces, image, alpha, edge, grad):
    """(grad_image (B, H, W, C), grad_faces (B, F, 3, 3)) of :func:`antialias`, atomic-free."""
    package = _package()
    B, F = faces.shape[:2]
    _, H, W, C = image.shape
    CP = triton.next_power_of_2(C)
    grad_image = _gather(grad, alpha, True)
    with package.device_of(faces):
        sums = torch.zeros((B * F, 6), dtype=faces.dtype, device=faces.device)
        cfg = tuning.config(H, W, F)
        owner = torch.where(edge >= 0, torch.div(edge, 6, rounding_mode="floor") % F, -1).view(B, H, 2 * W)
        lists, items = binning.pixel_items(owner, F, cfg.item_trips, cfg.pixel_block, tuning.programs(faces.device))
        if items.num_items:
            partial = package._slots(items, 6, faces)
            package._launch(face_sums_kernel, (items.num_items,), cfg.pixel_block * CP)(
                lists.order, *package._item_args(items), faces, image, alpha, edge, grad, sums, partial, H, W, C,
                CP=CP, PB=cfg.pixel_block)
            package._add_slots(items, partial, sums)
    grad_faces = torch.zeros((B, F, 3, 3), dtype=faces.dtype, device=faces.device)
    grad_faces[..., :2] = sums.view(B, F, 3, 2)
    return grad_image, grad_faces
