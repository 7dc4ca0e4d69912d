"""Triton backend: the ops of the backend contract (docs/backend-contract.md) as Triton kernels.

Import this module only after deciding on the interpreter: TRITON_INTERPRET=1 must be set before
triton is imported for the kernels to run on CPU tensors.

The forward z-buffer is binned (raster.tile_kernel: one program per item of a screen tile's face
list; the strategies it is benchmarked against live in tritonnmr/bench/zbuffers.py). Every backward
pass is balanced and atomic-free: per-face (or per-texel) items of bounded length write their sums
once, and cut lists are added in slot order (binning, reduce), so every gradient is bit-identical
between runs. Sizes come from tuning.config.

The interpreter accepts code that the real compiler rejects; tests/test_compile.py compiles every
launch for sm_80 and sm_90. So, in every kernel: a module global read inside a kernel is a
``tl.constexpr(...)``; an int argument that may be 1 is in ``do_not_specialize`` (Triton turns an
int equal to 1 into a constant, which has no ``.to()``); and no lane, masked or not, divides by zero
(plans list only drawn faces; elsewhere faces are replaced by a harmless triangle: geometry.sanitize).
On a GPU: every fp32 division is ``tl.math.div_rn`` (a plain ``/`` compiles to the approximate
``div.full.f32``; the compile test reads the PTX for it); every op runs under its tensors' device
(``device_of``); each plan reads its sizes back in one go (binning), and the covered-pixel plan is
built once per face index map and shared by the backward ops of a render (``_pixel_plan``).
Empty input never reaches a kernel (common.guarded returns the zero result).
"""
import contextlib
import functools

import torch
import triton

from ..common import cube_top, guarded
from . import backward, binning, edges, raster, reduce, shade, soft, tuning
from .antialias import antialias, antialias_backward, antialias_pairs  # noqa: F401 (the contract's ops)


def _launch(kernel, grid, lanes):
    """``kernel[grid]`` with floating-point contraction off (no fused multiply-adds, so every kernel
    rounds exactly as the reference does: pixel-centre tests, floors of scanline crossings and texel
    coordinates land on the same side; Triton 3.10 makes this the default) and the warps that a
    block of ``lanes`` elements needs (tuning.warps)."""
    return functools.partial(kernel[grid], enable_fp_fusion=False, num_warps=tuning.warps(lanes))


def device_of(tensor):
    """The context that makes ``tensor``'s GPU the current one (nothing for CPU tensors): Triton
    launches on the current CUDA device, whatever device the pointers belong to."""
    return torch.cuda.device(tensor.device) if tensor.device.type == "cuda" else contextlib.nullcontext()


def _on_device(op):
    """``op`` run under the device of its first tensor argument (see :func:`device_of`)."""
    @functools.wraps(op)
    def run(*args, **kwargs):
        with device_of(next(a for a in args if torch.is_tensor(a))):
            return op(*args, **kwargs)
    return run


def _slots(items, width, like):
    """The partial buffer of a plan: one row of ``width`` per slot (at least one row: a kernel needs
    a real pointer even when it writes nothing there)."""
    return torch.empty((max(items.num_slots, 1), width), dtype=like.dtype, device=like.device)


def _add_slots(items, partial, out, rows=None):
    """out[rows[s]] = sum of the slots of cut segment s, in slot order (rows: the segments by default)."""
    if not items.split_segment.numel():
        return
    rows = items.split_segment if rows is None else rows
    D = partial.shape[1]
    block = min(64, triton.next_power_of_2(D))
    _launch(reduce.segment_sum_kernel, (rows.numel(), triton.cdiv(D, block)), tuning.config(1, 1, 1).reduce_rows * block)(
        partial, rows, items.split_first, items.split_count, out, D, ROWS=tuning.config(1, 1, 1).reduce_rows, DB=block)


def _item_args(items):
    return items.segment, items.start, items.stop, items.slot


# ----------------------------------------------------------------------------------------------
# Forward: fragments
# ----------------------------------------------------------------------------------------------
@guarded
@_on_device
def rasterize_fragments(faces, height, width, near, far):
    """Face index (B, H, W) int64 (-1: empty), weights (B, H, W, 3) and depth (B, H, W) (far: empty)
    of faces (B, F, 3, 3), by the binned z-buffer (:func:`binned`)."""
    B = faces.shape[0]
    face_index = torch.full((B, height, width), -1, dtype=torch.int64, device=faces.device)
    weights = torch.zeros((B, height, width, 3), dtype=faces.dtype, device=faces.device)
    depth = torch.full((B, height, width), float(far), dtype=faces.dtype, device=faces.device)
    binned(faces, height, width, near, far, face_index, weights, depth)
    return face_index, weights, depth


def binned(faces, H, W, near, far, face_index, weights, depth):
    """Fill face_index, weights and depth (made empty by the caller) from the tile lists
    (binning.binned_plan): one tile_kernel program per item, merge_kernel per cut list; tiles with
    no face keep the empty fragments."""
    F = faces.shape[1]
    cfg = tuning.config(H, W, F)
    plan = binning.binned_plan(faces, H, W, near, far, cfg.tile, cfg.min_faces, tuning.programs(faces.device),
                               cfg.faces_per_trip)
    items = plan.items
    if not items.num_items:
        return
    tiles_x, tiles_y = binning.tile_grid(H, W, cfg.tile)
    slot_keys = _slots(items, cfg.tile * cfg.tile, face_index)
    _launch(raster.tile_kernel, (items.num_items,), cfg.faces_per_trip * cfg.tile * cfg.tile)(
        faces, plan.lists.face, *_item_args(items), slot_keys, face_index, weights, depth, F, H, W, tiles_x,
        tiles_x * tiles_y, near, far, TILE=cfg.tile, FACES=cfg.faces_per_trip)
    if items.split_segment.numel():
        _launch(raster.merge_kernel, (items.split_segment.numel(),), cfg.merge_rows * cfg.tile * cfg.tile)(
            slot_keys, items.split_segment, items.split_first, items.split_count, faces, face_index, weights, depth,
            F, H, W, tiles_x, tiles_x * tiles_y, far, TILE=cfg.tile, ROWS=cfg.merge_rows)


def _pixels(kernel, face_index, *args, **meta):
    """Launch a pixel-parallel kernel over every pixel of face_index, map_block pixels per program."""
    total = face_index.numel()
    if total:
        block = tuning.config(*face_index.shape[1:], 1).map_block
        _launch(kernel, (triton.cdiv(total, block),), block)(*args, BLOCK=block, **meta)


@guarded
@_on_device
def perspective_barycentrics(faces, face_index, weights, depth):
    """(B, H, W, 3) bary_k = w_k z / z_k at covered pixels, 0 where empty."""
    out = torch.empty_like(weights)
    H, W = face_index.shape[1:]
    _pixels(shade.barycentrics_kernel, face_index, faces, face_index, weights, depth, out, faces.shape[1], H * W,
            face_index.numel())
    return out


# ----------------------------------------------------------------------------------------------
# Backward of the forward: depth and the blurred edge
# ----------------------------------------------------------------------------------------------
def _pixel_plan(face_index, num_faces):
    """(config, pixel lists by face, items) of the per-face passes over face_index's covered pixels
    (depth, cubes, vertex colours, uvs). Built once per face index map and kept on it, so every
    backward op of one render shares one sort and one host read; rebuilt if the map was changed in
    place. Items hold a multiple of the config's pixel_block pixels; a kernel walking fewer pixels
    per trip (the cube gradient) does more trips of less work each."""
    key = (face_index._version, num_faces)
    memo = getattr(face_index, "_tritonnmr_pixel_plan", None)
    if memo is None or memo[0] != key:
        H, W = face_index.shape[1:]
        cfg = tuning.config(H, W, num_faces)
        lists, items = binning.pixel_items(face_index, num_faces, cfg.item_trips, cfg.pixel_block,
                                           tuning.programs(face_index.device))
        memo = (key, (cfg, lists, items))
        face_index._tritonnmr_pixel_plan = memo
    return memo[1]


@guarded
@_on_device
def depth_backward(faces, face_index, weights, depth, grad_depth):
    """Gradient (B, F, 3, 3) to the faces of sum(grad_depth * depth), exact; 0 for faces with no pixel."""
    B, F = faces.shape[:2]
    out = torch.zeros((B * F, 9), dtype=faces.dtype, device=faces.device)
    cfg, lists, items = _pixel_plan(face_index, F)
    if items.num_items:
        partial = _slots(items, 9, faces)
        _launch(backward.depth_sums_kernel, (items.num_items,), cfg.pixel_block)(
            faces, lists.order, *_item_args(items), weights, depth, grad_depth, out, partial, PB=cfg.pixel_block)
        _add_slots(items, partial, out)
    return out.view(B, F, 3, 3)


@guarded
@_on_device
def edge_backward(faces, face_index, image, grad_image, eps):
    """Blurred-edge gradient (B, F, 3, 3) (z column 0) from image and grad_image (B, H, W, C)."""
    return edge_pass(faces, face_index, image, grad_image, eps)[0]


def edge_pass(faces, face_index, image, grad_image, eps, count_trips=False):
    """(the blurred-edge gradient, the loop trips of each item (items,) int32 as the kernel counted
    them (with ``count_trips``, for the work model's tests; else None), the binning.EdgePlan)."""
    B, F = faces.shape[:2]
    H, W = face_index.shape[1:]
    C = image.shape[-1]
    sums = torch.zeros((B * F, 6), dtype=faces.dtype, device=faces.device)  # x0, y0, x1, y1, x2, y2
    plan, trips = None, None
    if sums.numel() and face_index.numel() and C:
        cfg = tuning.config(H, W, F)
        plan = binning.edge_plan(faces, face_index, binning.edge_limit(H, W, cfg.edge_block, cfg.edge_trips))
        items = plan.items
        trips = torch.zeros(max(items.num_items, 1), dtype=torch.int32, device=faces.device)
        if items.num_items:
            partial = _slots(items, 6, faces)
            CP = triton.next_power_of_2(C)
            _launch(edges.edge_kernel, (items.num_items,), cfg.edge_block)(
                plan.pixels, plan.faces, *_item_args(items), image, grad_image, face_index, sums, partial, trips,
                F, H, W, eps, C=C, CP=CP, BLOCK=cfg.edge_block, COUNT=count_trips, maxnreg=tuning.edge_registers(CP))
            _add_slots(items, partial, sums, plan.faces[items.split_segment.long()])
        trips = trips[:items.num_items]
    grad = torch.zeros((B, F, 3, 3), dtype=faces.dtype, device=faces.device)
    grad[..., :2] = sums.view(B, F, 3, 2)
    return grad, (trips if count_trips else None), plan


# ----------------------------------------------------------------------------------------------
# Shading ops on perspective-correct barycentrics
# ----------------------------------------------------------------------------------------------
def cube_block(cells, channels_padded, pixel_block):
    """(CB cells per program, PB pixels per trip) of backward.cube_sums_kernel: its per-trip
    (PB, CB, CP) product stays at 1024 values (8 per thread; more spills registers)."""
    CB = min(64, max(8, triton.next_power_of_2(cells)))
    return CB, max(8, min(pixel_block, 1024 // (CB * channels_padded)))


@guarded
@_on_device
def sample_cubes(face_index, bary, textures, eps):
    """(B, H, W, C) trilinear samples of per-face cubes textures (B, F, T, T, T, C); 0 where empty."""
    B, F, T = textures.shape[:3]
    C = textures.shape[-1]
    H, W = face_index.shape[1:]
    out = torch.zeros(face_index.shape + (C,), dtype=textures.dtype, device=textures.device)
    _pixels(shade.cubes_kernel, face_index, face_index, bary, textures, out, F, H * W, T, face_index.numel(),
            cube_top(T, eps), C=C, CP=triton.next_power_of_2(C))
    return out


@guarded
@_on_device
def sample_cubes_backward(face_index, bary, grad, textures, eps):
    """Gradient (B, F, T, T, T, C) to the cubes ``textures``: each pixel's gradient spread over its 8 cells."""
    texture_shape = textures.shape
    B, F, T = texture_shape[:3]
    C = texture_shape[-1]
    cells = T * T * T
    out = torch.zeros((B * F, cells * C), dtype=grad.dtype, device=grad.device)
    CP = triton.next_power_of_2(C)
    cfg, lists, items = _pixel_plan(face_index, F)
    CB, PB = cube_block(cells, CP, cfg.pixel_block)
    if items.num_items:
        partial = _slots(items, cells * C, grad)
        _launch(backward.cube_sums_kernel, (items.num_items, triton.cdiv(cells, CB)), PB * CB * CP)(
            lists.order, *_item_args(items), bary, grad, out, partial, T, C, cube_top(T, eps), CP=CP, CB=CB, PB=PB)
        _add_slots(items, partial, out)
    return out.view(texture_shape)


@guarded
@_on_device
def interpolate(face_index, bary, attributes):
    """(B, H, W, C) = sum_k bary_k attributes[b, f, k] for attributes (B, F, 3, C); 0 where empty."""
    F, C = attributes.shape[1], attributes.shape[-1]
    H, W = face_index.shape[1:]
    out = torch.zeros(face_index.shape + (C,), dtype=attributes.dtype, device=attributes.device)
    _pixels(shade.interpolate_kernel, face_index, face_index, bary, attributes, out, F, H * W, face_index.numel(),
            C=C, CP=triton.next_power_of_2(C))
    return out


@guarded
@_on_device
def interpolate_backward(face_index, bary, grad, attributes):
    """Gradient (B, F, 3, C) to the face-vertex ``attributes`` of :func:`interpolate`."""
    attribute_shape = attributes.shape
    B, F, _, C = attribute_shape
    out = torch.zeros((B * F, 3 * C), dtype=grad.dtype, device=grad.device)
    CP = triton.next_power_of_2(C)
    cfg, lists, items = _pixel_plan(face_index, F)
    if items.num_items:
        partial = _slots(items, 3 * C, grad)
        _launch(backward.interpolate_sums_kernel, (items.num_items,), cfg.pixel_block * CP)(
            lists.order, *_item_args(items), bary, grad, out, partial, C, CP=CP, PB=cfg.pixel_block)
        _add_slots(items, partial, out)
    return out.view(attribute_shape)


@guarded
@_on_device
def sample_uv(face_index, bary, uvs, texels, material, table, wrap):
    """(B, H, W, C) bilinear samples of texels (N, C) at each pixel's uv; 0 where empty."""
    F, C = uvs.shape[1], texels.shape[-1]
    H, W = face_index.shape[1:]
    out = torch.zeros(face_index.shape + (C,), dtype=texels.dtype, device=texels.device)
    _pixels(shade.uv_kernel, face_index, face_index, bary, uvs, material, texels, table, out, F, H * W,
            face_index.numel(), int(wrap), C=C, CP=triton.next_power_of_2(C))
    return out


@guarded
@_on_device
def sample_uv_backward(face_index, bary, grad, uvs, texels, material, table, wrap):
    """(grad_uvs (B, F, 3, 2), grad_texels (N, C)) of :func:`sample_uv`, both without atomics: the uv
    gradient summed per face over its pixels, the texel gradient per texel over its (pixel, tap)
    contributions, grouped by a stable sort of their texel rows."""
    B, F = uvs.shape[:2]
    C = texels.shape[-1]
    H, W = face_index.shape[1:]
    grad_texels = torch.zeros_like(texels)
    grad_uvs = torch.zeros((B * F, 6), dtype=uvs.dtype, device=uvs.device)
    cfg, lists, items = _pixel_plan(face_index, F)
    CP = triton.next_power_of_2(C)
    wrap = int(wrap)
    if items.num_items:
        partial = _slots(items, 6, uvs)
        _launch(backward.uv_sums_kernel, (items.num_items,), cfg.pixel_block * CP)(
            lists.order, *_item_args(items), face_index, bary, uvs, material, texels, table, grad, grad_uvs, partial,
            F, H * W, wrap, C, CP=CP, PB=cfg.pixel_block)
        _add_slots(items, partial, grad_uvs)
    # texels: the four taps of every covered pixel, grouped by texel row (a stable sort), one
    # segment per texel of the table (counted by an integer scatter-add: no read but the plan's)
    pixels = lists.order
    if pixels.numel():
        taps = torch.empty(pixels.numel() * 4, dtype=torch.int64, device=uvs.device)
        _launch(shade.uv_taps_kernel, (triton.cdiv(pixels.numel(), cfg.map_block),), cfg.map_block)(
            pixels, face_index, bary, uvs, material, table, taps, F, H * W, pixels.numel(), wrap, BLOCK=cfg.map_block)
        contrib = torch.sort(taps, stable=True).indices
        counts = torch.zeros(texels.shape[0], dtype=torch.int64, device=uvs.device)
        counts.index_add_(0, taps, torch.ones_like(taps))
        items = binning.split_segments(binning.starts_of(counts), binning.balanced_limit(
            taps.numel(), tuning.programs(uvs.device), cfg.item_trips * cfg.pixel_block, cfg.pixel_block))
        if items.num_items:
            partial = _slots(items, C, texels)
            _launch(backward.texel_sums_kernel, (items.num_items,), cfg.pixel_block * CP)(
                contrib, pixels, *_item_args(items), face_index, bary, uvs, material, table, grad, grad_texels,
                partial, F, H * W, wrap, C, CP=CP, PB=cfg.pixel_block)
            _add_slots(items, partial, grad_texels)
    return grad_uvs.view(B, F, 3, 2), grad_texels


# the shading ops' gradients to bary are pixel-local gathers: the reference's serve this backend too
from ..torch import interpolate_bary_backward, sample_cubes_bary_backward, sample_uv_bary_backward  # noqa: E402,F401


# ----------------------------------------------------------------------------------------------
# The soft rasterizer (gradient="soft"): triton/soft.py
# ----------------------------------------------------------------------------------------------
def _square_scale(height, width):
    short = min(height, width)
    return width / short, height / short


def _empty_pairs(faces):
    empty = torch.zeros(0, dtype=torch.int64, device=faces.device)
    return empty, empty.clone(), faces.new_zeros(0), faces.new_zeros(0), faces.new_zeros(0, 3)


@_on_device
def soft_fragments(faces, height, width, near, far, radius):
    """The (pixel, face) pairs (pixel, face, d2, depth, bary) of faces (B, F, 3, 3), pixel-major, faces
    ascending within a pixel: the binned plan of the boxes grown by ``radius``, a counting pass, the
    pixels' first pairs (prefix sums), a writing pass. Two host reads (the plan's sizes, the pairs')."""
    B, F = faces.shape[:2]
    H, W = height, width
    if not B * F * H * W:
        return _empty_pairs(faces)
    cfg = tuning.config(H, W, F)
    grow = radius * min(H, W) / 2.0
    plan = binning.binned_plan(faces, H, W, near, far, cfg.tile, cfg.min_faces, tuning.programs(faces.device),
                               cfg.faces_per_trip, grow)
    items = plan.items
    if not items.num_items:
        return _empty_pairs(faces)
    lanes = cfg.tile * cfg.tile
    tiles_x, tiles_y = binning.tile_grid(H, W, cfg.tile)
    ax, ay = _square_scale(H, W)
    counts = torch.empty((items.num_items, lanes), dtype=torch.int32, device=faces.device)
    dummy_i, dummy_f = counts.new_zeros(1, dtype=torch.int64), faces.new_zeros(1)

    def run(write, base, *outs):
        _launch(soft.pairs_kernel, (items.num_items,), cfg.faces_per_trip * lanes)(
            faces, plan.lists.face, items.segment, items.start, items.stop, counts, base, *outs, F, H, W, tiles_x,
            tiles_x * tiles_y, near, far, radius * radius, ax, ay, TILE=cfg.tile, FACES=cfg.faces_per_trip, WRITE=write)

    run(False, dummy_i, dummy_i, dummy_i, dummy_f, dummy_f, dummy_f)
    # where each (item, lane)'s pairs start: its pixel's first pair, plus the pairs at that lane of the
    # tile's items that list earlier faces (the items in list order: by tile, then start; integer prefix
    # sums, exact in any order, and whatever order the items were handed out in)
    c = counts.long()
    tile = items.segment.long()
    order = torch.sort((tile << 32) | items.start).indices
    before = torch.cumsum(c[order], 0) - c[order]
    tile_sorted = tile[order]
    within = torch.empty_like(before)
    within[order] = before - before[torch.searchsorted(tile_sorted, tile_sorted)]
    lane = torch.arange(lanes, device=faces.device)
    px = (tile % (tiles_x * tiles_y) % tiles_x)[:, None] * cfg.tile + lane % cfg.tile
    py = (tile % (tiles_x * tiles_y) // tiles_x)[:, None] * cfg.tile + lane // cfg.tile
    inside = (px < W) & (py < H)
    pix = torch.where(inside, (tile // (tiles_x * tiles_y))[:, None] * H * W + py * W + px, B * H * W)
    per_pixel = torch.zeros(B * H * W + 1, dtype=torch.int64, device=faces.device).index_add_(0, pix.reshape(-1),
                                                                                               c.reshape(-1))
    first = binning.starts_of(per_pixel[:-1])
    total = int(first[-1])  # a host read: the number of pairs
    base = (first[pix.clamp(max=B * H * W - 1)] + within).contiguous()
    out = (torch.empty(total, dtype=torch.int64, device=faces.device),
           torch.empty(total, dtype=torch.int64, device=faces.device),
           faces.new_empty(total), faces.new_empty(total), faces.new_empty(total, 3))
    if total:
        run(True, base, *out)
    return out


@_on_device
def soft_fragments_backward(faces, height, width, pixel, face, grad_d2, grad_depth, grad_bary):
    """Gradient (B, F, 3, 3) to the faces from the pairs' gradients: the pairs grouped by face (a
    stable sort), cut into items, one face_sums_kernel program per item, cut faces added in slot order."""
    B, F = faces.shape[:2]
    out = torch.zeros((B * F, 9), dtype=faces.dtype, device=faces.device)
    if not pixel.numel() or not out.numel():
        return out.view(B, F, 3, 3)
    cfg = tuning.config(height, width, F)
    key, order = torch.sort(face, stable=True)
    starts = torch.searchsorted(key, torch.arange(B * F + 1, device=face.device))
    limit = binning.device_limit(starts[-1], tuning.programs(faces.device), cfg.item_trips * cfg.pixel_block,
                                 cfg.pixel_block)
    *sizes, limit = torch.cat([binning.segment_sizes(starts, limit), limit.reshape(1)]).tolist()
    items = binning.split_segments(starts, limit, sizes)
    if items.num_items:
        partial = _slots(items, 9, faces)
        ax, ay = _square_scale(height, width)
        _launch(soft.face_sums_kernel, (items.num_items,), cfg.pixel_block)(
            faces, order, *_item_args(items), pixel, grad_d2, grad_depth, grad_bary, out, partial, F, height, width,
            ax, ay, PB=cfg.pixel_block)
        _add_slots(items, partial, out)
    return out.view(B, F, 3, 3)


def _blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far, grads, outs, backward):
    starts = torch.searchsorted(pixel, torch.arange(num_pixels + 1, device=pixel.device))
    C = colours.shape[1]
    block = tuning.config(1, num_pixels, 1).map_block
    safe = (lambda t: t if t.numel() else d2.new_zeros(1))  # a kernel needs real pointers, even unread ones
    _launch(soft.blend_kernel, (triton.cdiv(num_pixels, block),), block)(
        starts, safe(d2), safe(depth), safe(colours), safe(background), *map(safe, grads), *map(safe, outs),
        num_pixels, C, sigma, gamma, eps, near, far, CP=max(1, triton.next_power_of_2(C)), BLOCK=block,
        BACKWARD=backward)


@_on_device
def soft_blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far):
    """(rgb (P, C), alpha (P,)) of the pairs (per pixel, blend_kernel)."""
    rgb = d2.new_zeros(num_pixels, colours.shape[1])
    alpha = d2.new_zeros(num_pixels)
    if num_pixels:
        none = d2.new_zeros(0)
        _blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far, (none, none),
               (rgb, alpha, none, none, none), False)
    return rgb, alpha


@_on_device
def soft_blend_backward(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far, grad_rgb,
                        grad_alpha):
    """(grad_d2 (N,), grad_depth (N,), grad_colours (N, C)) of :func:`soft_blend`, each pair's written once."""
    grads = (torch.zeros_like(d2), torch.zeros_like(depth), torch.zeros_like(colours))
    if num_pixels and d2.numel():
        none = d2.new_zeros(0)
        _blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far,
               (grad_rgb.contiguous(), grad_alpha.contiguous()), (none, none) + grads, True)
    return grads
