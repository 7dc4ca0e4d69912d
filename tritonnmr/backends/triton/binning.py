"""Host-side plans of the balanced passes: which program does what (plain torch on the faces' device).

Every balanced pass of the Triton backend has the same shape: some *segments* (a screen tile's
faces, a face's pixels, a face's scanline crossings, a texel's contributions) whose *elements* are
listed contiguously, in a fixed order. A segment longer than a limit is cut into *items* of at most
``limit`` elements; one program handles one item, so no program walks more than ``limit`` elements
whatever the scene. An item of a segment that was cut writes its result into its own *slot* of a
partial buffer, and a second pass adds each segment's slots in slot order (``reduce``); an item of
a segment that was not cut writes the final result directly. No atomics, and every sum is taken in
an order fixed by the plan: results are bit-identical between runs and independent of scheduling.

The plans are plain tensors, computed here by the same code for the kernels and for the work
model (``tritonnmr.bench.workmodel``), which counts the programs' loop trips from them.

On a GPU every value the host reads back drains the queue, so each plan reads its sizes in one
``tolist()`` (``segment_sizes``): the counts per segment are computed on the device (prefix sums
and integer scatter-adds, which are exact in any order), the item length too (``device_limit``),
and everything sized by data (``expand``, ``compact``) is then built with the sizes known.
"""
from typing import NamedTuple

import torch

from ..common import drawn, expand, pixel_faces, visible
from ..torch import to_pixels

Z_MARGIN = 1e-5  # relative slack of the near/far cull: rounding may move z by ~1e-7 z


class Boxes(NamedTuple):
    """Per flat face (B * F,), int32: first pixel column and row of its clipped bounding box, and
    its number of columns and rows (0 and 0 for a face that can cover no pixel)."""
    lo_x: torch.Tensor
    lo_y: torch.Tensor
    nx: torch.Tensor
    ny: torch.Tensor


def face_boxes(faces, height, width, near=None, far=None, grow=0.0):
    """Clipped pixel bounding boxes of faces (B, F, 3, 3): the pixels whose centres a face could
    cover, as the reference walks them (floor of the smallest, ceil of the largest pixel coordinate
    ``0.5 (v N + N - 1)``, clipped to the image).

    A face gets an empty box when it is not drawn (``reference.drawn``: back-facing, zero area or
    not finite), has a vertex at z = 0 (its depth is 0 or NaN, never kept), lies wholly off the
    image (its box ends before pixel 0 or starts after the last),
    or, with ``near`` / ``far`` given, wholly before near or beyond far: with every z_k > 0 the
    perspective depth ``1 / sum_k w_k / z_k`` lies between min z_k and max z_k, so a face with
    max z_k < near or min z_k > far (by a relative margin for rounding) keeps no pixel.
    ``grow``: pixels added on every side first (the soft rasterizer's reach).
    """
    flat = faces.reshape(-1, 3, 3)
    live = drawn(faces).reshape(-1) & (flat[..., 2] != 0).all(1)  # z_k = 0: 1/z = inf or NaN, never kept
    boxes = []
    for axis, size in ((0, width), (1, height)):
        coord = torch.where(live[:, None], flat[..., axis], 0.0)
        lo = (to_pixels(coord.min(1).values, size) - grow).floor()
        hi = (to_pixels(coord.max(1).values, size) + grow).ceil()
        live = live & (hi >= 0) & (lo <= size - 1)
        boxes.append((lo.clamp(0, size - 1), hi.clamp(0, size - 1)))
    if near is not None:
        z = torch.where(live[:, None], flat[..., 2], 1.0)
        zmin, zmax = z.min(1).values, z.max(1).values
        live = live & ~((zmin > 0) & ((zmax * (1 + Z_MARGIN) < near) | (zmin > far * (1 + Z_MARGIN))))
    (lo_x, hi_x), (lo_y, hi_y) = boxes
    i32 = torch.int32
    nx = torch.where(live, hi_x - lo_x + 1, 0.0).to(i32)
    ny = torch.where(live, hi_y - lo_y + 1, 0.0).to(i32)
    return Boxes(torch.where(live, lo_x, 0.0).to(i32), torch.where(live, lo_y, 0.0).to(i32), nx, ny)


def tile_grid(height, width, tile):
    """(tiles across, tiles down) of a (height, width) image cut into tile x tile squares."""
    return -(-width // tile), -(-height // tile)


class TileRanges(NamedTuple):
    """Per flat face, int32: first tile column and row it touches, and how many of each (0: none)."""
    tx: torch.Tensor
    ty: torch.Tensor
    ntx: torch.Tensor
    nty: torch.Tensor

    @property
    def counts(self):
        return self.ntx * self.nty


def tile_ranges(boxes, tile):
    """The tiles a face's box touches: columns lo_x // tile ... (lo_x + nx - 1) // tile, rows alike."""
    tx, ty = boxes.lo_x // tile, boxes.lo_y // tile
    ntx = torch.where(boxes.nx > 0, (boxes.lo_x + boxes.nx - 1) // tile - tx + 1, 0)
    nty = torch.where(boxes.ny > 0, (boxes.lo_y + boxes.ny - 1) // tile - ty + 1, 0)
    return TileRanges(tx, ty, ntx, nty)


class TileLists(NamedTuple):
    """The (face, tile) pairs grouped by tile: ``face`` (pairs,) int32 is the face number (within its
    batch entry) of each pair, tiles in order (batch entry, tile row, tile column), faces ascending
    within a tile; tile t's faces are ``face[starts[t]:starts[t + 1]]`` (starts (B * tiles + 1,) int64)."""
    face: torch.Tensor
    starts: torch.Tensor


def compact(mask, count):
    """The indices (count,) int64 of the True entries of a 1-D ``mask``, ascending, where the caller
    knows ``count`` (so nothing is read back): each True entry goes to its rank among them; the
    False ones all go to one extra entry, dropped."""
    rank = torch.cumsum(mask, 0) - 1
    out = torch.empty(count + 1, dtype=torch.int64, device=mask.device)
    out.scatter_(0, torch.where(mask, rank, count), torch.arange(mask.numel(), device=mask.device))
    return out[:count]


def tile_counts(ranges, batch, num_faces, height, width, tile):
    """Faces per tile (batch * tiles,) int64, tiles in order (batch entry, row, column), without
    listing the pairs: each face adds +1 at the top-left corner of its range of tiles, -1 past
    its right and bottom ends and +1 past both, on a (rows + 1, columns + 1) grid per entry; the
    2-D prefix sum of those marks is, at each tile, the number of ranges covering it."""
    tiles_x, tiles_y = tile_grid(height, width, tile)
    entry = torch.arange(batch * num_faces, device=ranges.tx.device) // max(num_faces, 1)
    x0, y0 = ranges.tx.long(), ranges.ty.long()
    x1, y1 = x0 + ranges.ntx, y0 + ranges.nty
    ones = torch.ones_like(x0)
    corner = torch.cat([(entry * (tiles_y + 1) + y) * (tiles_x + 1) + x for y, x in ((y0, x0), (y0, x1), (y1, x0), (y1, x1))])
    marks = torch.zeros(batch * (tiles_y + 1) * (tiles_x + 1), dtype=torch.int64, device=x0.device)
    marks.index_add_(0, corner, torch.cat([ones, -ones, -ones, ones]))
    counts = marks.view(batch, tiles_y + 1, tiles_x + 1).cumsum(1).cumsum(2)[:, :tiles_y, :tiles_x]
    return counts.reshape(-1)


def tile_lists(ranges, batch, num_faces, height, width, tile, pairs=None):
    """Exact per-tile face lists: every face with a non-empty box lists itself in every tile its box
    touches (counts -> prefix sum -> one pair per (face, tile)), then a stable sort by tile keeps
    the faces of a tile in ascending order. Nothing is capped, so no face is ever dropped.
    ``pairs``: their number, when the caller has read it."""
    tiles_x, tiles_y = tile_grid(height, width, tile)
    per_entry = tiles_x * tiles_y
    owner, local = expand(ranges.counts, pairs)  # face-major: pairs of face 0, then face 1, ...
    ntx = ranges.ntx[owner]
    key = (owner // num_faces) * per_entry + (ranges.ty[owner] + local // ntx) * tiles_x \
        + ranges.tx[owner] + local % ntx
    key, perm = torch.sort(key, stable=True)
    face = (owner[perm] % num_faces).to(torch.int32)
    starts = torch.searchsorted(key, torch.arange(batch * per_entry + 1, device=key.device))
    return TileLists(face, starts)


class Items(NamedTuple):
    """A plan: item i handles elements [start[i], stop[i]) (int64) of segment[i] (int32 (items,))
    and writes to slot[i] of the partial buffer (int32; -1: its segment is whole, write the result).
    Cut segments: split_segment (int32 (cut,)) adds slots [split_first, split_first + split_count);
    ``num_slots`` (an int) is the number of slots."""
    segment: torch.Tensor
    start: torch.Tensor
    stop: torch.Tensor
    slot: torch.Tensor
    split_segment: torch.Tensor
    split_first: torch.Tensor
    split_count: torch.Tensor
    num_slots: int

    @property
    def num_items(self):
        return self.segment.numel()

    @property
    def tensors(self):
        """The plan's tensors (for byte counts)."""
        return tuple(self)[:-1]


def segment_sizes(starts, limit):
    """(3,) int64 on the device: the number of items, of cut segments and of slots that
    :func:`split_segments` makes of ``starts`` with ``limit`` (an int or a 0-dim tensor), for the
    caller to read together with its own values."""
    chunks = (starts[1:] - starts[:-1] + limit - 1) // limit
    cut = chunks > 1
    return torch.stack([chunks.sum(), cut.sum(), torch.where(cut, chunks, 0).sum()])


def split_segments(starts, limit, sizes=None):
    """Cut the segments [starts[s], starts[s + 1]) (starts (S + 1,) int64) into items of at most
    ``limit`` (int) elements, in segment order; empty segments get no item. ``sizes``: the
    :func:`segment_sizes` values already read (else they are read here, in one go)."""
    counts = starts[1:] - starts[:-1]
    chunks = (counts + limit - 1) // limit
    num_items, num_cut, num_slots = segment_sizes(starts, limit).tolist() if sizes is None else sizes
    segment, local = expand(chunks, num_items)
    start = starts[:-1][segment] + local * limit
    stop = torch.minimum(start + limit, starts[1:][segment])
    cut = chunks > 1
    in_cut = cut[segment]
    slot = torch.where(in_cut, torch.cumsum(in_cut, 0) - 1, -1)
    split_segment = compact(cut, num_cut)
    first_item = (torch.cumsum(chunks, 0) - chunks)[split_segment]
    i32 = torch.int32
    return Items(segment.to(i32), start, stop, slot.to(i32), split_segment.to(i32),
                 slot[first_item].to(i32), chunks[split_segment].to(i32), num_slots)


def balanced_limit(total, programs, minimum, multiple=1):
    """Elements per item: the total spread over ``programs`` concurrent programs, at least
    ``minimum``, rounded up to a multiple of ``multiple``."""
    limit = max(minimum, -(-int(total) // max(programs, 1)))
    return -(-limit // multiple) * multiple


def device_limit(total, programs, minimum, multiple=1):
    """:func:`balanced_limit` of a 0-dim int64 tensor ``total``, computed on its device (no read)."""
    limit = torch.clamp(-(-total // max(programs, 1)), min=minimum)
    return -(-limit // multiple) * multiple


def starts_of(counts):
    """(S + 1,) int64 prefix sums of counts (S,): where each segment starts, and the total last."""
    return torch.cat([counts.new_zeros(1, dtype=torch.int64), torch.cumsum(counts.long(), 0)])


class PixelLists(NamedTuple):
    """Covered pixels grouped by face: ``order`` (covered,) int64 flat pixel ids (b * H * W + r * W + c),
    face by face (flat b * F + f), ascending within a face; face s's are ``order[starts[s]:starts[s + 1]]``."""
    order: torch.Tensor
    starts: torch.Tensor


def pixel_counts(face_index, num_faces):
    """Covered pixels per flat face (B * F,) int64 (an integer scatter-add: exact in any order)."""
    key = pixel_faces(face_index, num_faces)
    counts = torch.zeros(face_index.shape[0] * num_faces + 1, dtype=torch.int64, device=key.device)
    return counts.index_add_(0, key, torch.ones_like(key))[:-1]


def pixel_lists(face_index, num_faces, covered=None):
    """Group the covered pixels of face_index (B, H, W) by their face (a stable sort by face).
    ``covered``: their number, when the caller has read it."""
    B = face_index.shape[0]
    key = pixel_faces(face_index, num_faces)
    hit = key < B * num_faces
    pixels = compact(hit, int(hit.sum()) if covered is None else covered)
    key, perm = torch.sort(key[pixels], stable=True)
    starts = torch.searchsorted(key, torch.arange(B * num_faces + 1, device=key.device))
    return PixelLists(pixels[perm], starts)


def edge_slots(pixels, height, width):
    """Scanlines crossed by each (edge, axis) of faces given in pixel coordinates (N, 3, 2) (x, y):
    (first scanline (N, 6) float32, count (N, 6) int32) for slot = 2 edge + axis, edge (e, e + 1).
    Axis 0 scans columns (u = x over ``width`` scanlines), axis 1 rows (u = y over ``height``): the
    integers d0 in [ceil(min(u_a, u_b)), floor(max(u_a, u_b))], clipped to the image; none when
    u_a == u_b. Exact float operations only (min, max, ceil, floor, clamp), so the kernel that
    recomputes them from the same pixel coordinates gets the same numbers."""
    firsts, counts = [], []
    for edge in range(3):
        for axis, lines in ((0, width), (1, height)):
            ua, ub = pixels[:, edge, axis], pixels[:, (edge + 1) % 3, axis]
            first = torch.clamp(torch.ceil(torch.minimum(ua, ub)), min=0.0)
            last = torch.clamp(torch.floor(torch.maximum(ua, ub)), max=lines - 1.0)
            count = torch.where(ua != ub, torch.clamp(last - first + 1.0, min=0.0), 0.0)
            firsts.append(first)
            counts.append(count.to(torch.int32))
    return torch.stack(firsts, 1), torch.stack(counts, 1)


class EdgePlan(NamedTuple):
    """The blurred-edge pass's work: ``faces`` (B * F,) int64 flat face ids; ``pixels``
    (B * F, 6) float32 their vertices' pixel coordinates (x0, y0, x1, y1, x2, y2); ``counts``
    (B * F, 6) int32 the scanlines each (edge, axis) slot crosses, 0 for faces that are not visible;
    a face's crossings are numbered slot by slot (slot = 2 edge + axis), scanlines ascending
    within a slot; ``items`` cut each face's crossings into runs of at most ``limit``."""
    faces: torch.Tensor
    pixels: torch.Tensor
    items: Items
    counts: torch.Tensor
    limit: int


def edge_plan(faces, face_index, limit):
    """Plan of the blurred-edge backward for faces (B, F, 3, 3) and face_index (B, H, W)."""
    H, W = face_index.shape[1:]
    flat = faces.reshape(-1, 3, 3)
    ids = torch.arange(flat.shape[0], device=faces.device)
    pixels = torch.stack([to_pixels(flat[..., 0], W), to_pixels(flat[..., 1], H)], -1)  # (B * F, 3, 2)
    _, counts = edge_slots(pixels, H, W)
    counts = torch.where(visible(faces, face_index)[:, None], counts, 0)
    starts = starts_of(counts.sum(1))
    items = split_segments(starts, limit)
    # items address crossings within their face: subtract the face's first crossing
    base = starts[:-1][items.segment.long()]
    items = items._replace(start=(items.start.long() - base).to(torch.int32),
                           stop=(items.stop.long() - base).to(torch.int32))
    return EdgePlan(ids, pixels.reshape(-1, 6).contiguous(), items, counts, limit)


# ----------------------------------------------------------------------------------------------
# The plans of the passes, as the kernels' host code (backends/triton/__init__.py) and the work model use them
# ----------------------------------------------------------------------------------------------
class BinnedPlan(NamedTuple):
    """The binned forward's plan: the tile lists, and their items of at most ``limit`` faces
    (items.segment = tile b * tiles + row * tiles_x + column)."""
    lists: TileLists
    items: Items
    limit: int


def binned_plan(faces, height, width, near, far, tile, min_faces, programs, faces_per_trip=1, grow=0.0):
    """Setup (boxes, tile ranges: freed once the lists are made), exact tile lists, and items of
    max(min_faces, pairs / programs) faces, a multiple of faces_per_trip. One host read: the tiles'
    face counts come from the ranges (tile_counts), before any pair is listed. ``grow``: pixels
    added to every face's box (the soft rasterizer's reach)."""
    B, F = faces.shape[:2]
    ranges = tile_ranges(face_boxes(faces, height, width, near, far, grow), tile)
    starts = starts_of(tile_counts(ranges, B, F, height, width, tile))
    limit = device_limit(starts[-1], programs, min_faces, faces_per_trip)
    *sizes, pairs, limit = torch.cat([segment_sizes(starts, limit), torch.stack([starts[-1], limit])]).tolist()
    lists = tile_lists(ranges, B, F, height, width, tile, pairs)
    return BinnedPlan(lists, split_segments(starts, limit, sizes), limit)


def pixel_items(face_index, num_faces, item_trips, pixel_block, programs):
    """(PixelLists, Items): the covered pixels grouped by face, cut into items of
    max(item_trips pixel_block, covered / programs) pixels rounded up to a multiple of pixel_block.
    One host read (the sizes and the number of covered pixels)."""
    starts = starts_of(pixel_counts(face_index, num_faces))
    limit = device_limit(starts[-1], programs, item_trips * pixel_block, pixel_block)
    *sizes, covered, limit = torch.cat([segment_sizes(starts, limit), torch.stack([starts[-1], limit])]).tolist()
    return pixel_lists(face_index, num_faces, covered), split_segments(starts, limit, sizes)


def edge_limit(height, width, edge_block, edge_trips):
    """Crossings per item of the blurred-edge pass: a crossing's walk is at most one image side,
    ceil(side / edge_block) trips, so an item of this many crossings stays within edge_trips trips
    (a single scanline when one is longer)."""
    return max(1, edge_trips // -(-max(height, width) // edge_block))
