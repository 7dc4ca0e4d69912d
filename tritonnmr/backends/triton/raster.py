"""Forward rasterization kernels: the binned z-buffer (the face-parallel and pixel-loop strategies the
benchmark compares it with are in tritonnmr/bench/zbuffers.py).

Every pixel ends with the smallest key (float bits of z) << 32 | face over the faces that cover
its centre with near < z < far (geometry.cover_key): the nearest face, ties to the lower index.

- binned (``tile_kernel`` + ``merge_kernel``): one program per item of a screen tile's face list
  (binning.tile_lists, cut by binning.split_segments): the tile's TILE x TILE pixels stay in
  registers while the program loops over its faces, FACES at a time (a FACES x TILE^2 block).
  No atomics: a tile whose list
  was not cut writes its fragments directly; the items of a cut list write their keys to their
  own slots and ``merge_kernel`` takes the minimum over the slots (a minimum does not depend on
  the order it is taken in).

Integer sizes are never specialised (``do_not_specialize``): Triton would turn an int equal to 1
(one face, a one-pixel image) into a compile-time constant, which has no ``.to()``.
"""
import triton
import triton.language as tl

from .geometry import EMPTY, cover_key, face_rows, pixel_centre, write_fragments

@triton.jit
def _tile_pixels(tile, tiles_x, tiles_per_entry, H, W, TILE: tl.constexpr):
    """Batch entry, flat pixel offsets, column, row and in-image mask of the lanes of ``tile``
    (numbered batch entry, tile row, tile column): lane l is pixel (l // TILE, l % TILE) of the tile."""
    b = tile // tiles_per_entry
    t = tile % tiles_per_entry
    lane = tl.arange(0, TILE * TILE)
    px = (t % tiles_x) * TILE + lane % TILE
    py = (t // tiles_x) * TILE + lane // TILE
    valid = (px < W) & (py < H)
    offs = b.to(tl.int64) * H * W + py * W + px
    return b, offs, px, py, valid


@triton.jit(do_not_specialize=["F", "H", "W", "tiles_x", "tiles_per_entry"])
def tile_kernel(faces_ptr, pair_face_ptr, item_tile_ptr, item_start_ptr, item_stop_ptr, item_slot_ptr,
                slot_keys_ptr, index_ptr, weights_ptr, depth_ptr, F, H, W, tiles_x, tiles_per_entry,
                near, far, TILE: tl.constexpr, FACES: tl.constexpr):
    """One item of a tile's face list: for the tile's pixels, the smallest key over the faces
    pair_face[start:stop] (ascending), FACES of them per trip on the rows of a (FACES, TILE^2)
    block; then either the fragments (a whole list) or the keys into slot ``item_slot`` (a list cut
    into several items; merge_kernel finishes it). Keys are unique (they hold the face), so the
    minimum is exact whatever the order."""
    item = tl.program_id(0)
    tile = tl.load(item_tile_ptr + item)
    start = tl.load(item_start_ptr + item)
    stop = tl.load(item_stop_ptr + item)
    slot = tl.load(item_slot_ptr + item)
    b, offs, px, py, valid = _tile_pixels(tile, tiles_x, tiles_per_entry, H, W, TILE)
    W_f = W.to(tl.float32)
    H_f = H.to(tl.float32)
    # every operand is a full (FACES, TILE^2) block: the interpreter pays twice per op for broadcasting
    xp = tl.broadcast_to(pixel_centre(px, W_f)[None, :], (FACES, TILE * TILE))
    yp = tl.broadcast_to(pixel_centre(py, H_f)[None, :], (FACES, TILE * TILE))
    entry_faces = faces_ptr + b.to(tl.int64) * F * 9
    best = tl.full([TILE * TILE], EMPTY, tl.int64)
    for j in range(start, stop, FACES):
        rows = j + tl.arange(0, FACES)
        live = rows < stop
        f = tl.load(pair_face_ptr + rows, mask=live, other=0)
        p = entry_faces + f.to(tl.int64) * 9
        # rows past the list read a harmless triangle and are dropped
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = face_rows(p, live, xp.shape)
        key = cover_key(x0, y0, z0, x1, y1, z1, x2, y2, z2, tl.broadcast_to(f[:, None], xp.shape), xp, yp, near, far)
        best = tl.minimum(best, tl.min(tl.where(tl.broadcast_to(live[:, None], xp.shape), key, EMPTY), axis=0))
    if slot < 0:
        write_fragments(best, offs, valid, b, px, py, faces_ptr, index_ptr, weights_ptr, depth_ptr,
                        F, W_f, H_f, far)
    else:
        tl.store(slot_keys_ptr + slot.to(tl.int64) * TILE * TILE + tl.arange(0, TILE * TILE), best)


@triton.jit(do_not_specialize=["F", "H", "W", "tiles_x", "tiles_per_entry"])
def merge_kernel(slot_keys_ptr, split_tile_ptr, split_first_ptr, split_count_ptr, faces_ptr, index_ptr,
                 weights_ptr, depth_ptr, F, H, W, tiles_x, tiles_per_entry, far,
                 TILE: tl.constexpr, ROWS: tl.constexpr):
    """One cut tile: the minimum key per pixel over its slots (ROWS slots per trip), then its fragments."""
    s = tl.program_id(0)
    tile = tl.load(split_tile_ptr + s)
    first = tl.load(split_first_ptr + s)
    count = tl.load(split_count_ptr + s)
    b, offs, px, py, valid = _tile_pixels(tile, tiles_x, tiles_per_entry, H, W, TILE)
    lane = tl.arange(0, TILE * TILE)
    best = tl.full([TILE * TILE], EMPTY, tl.int64)
    for r in range(0, count, ROWS):
        rows = r + tl.arange(0, ROWS)
        keys = tl.load(slot_keys_ptr + (first + rows).to(tl.int64)[:, None] * TILE * TILE + lane[None, :],
                       mask=(rows < count)[:, None], other=EMPTY)
        best = tl.minimum(best, tl.min(keys, axis=0))
    write_fragments(best, offs, valid, b, px, py, faces_ptr, index_ptr, weights_ptr, depth_ptr,
                    F, W.to(tl.float32), H.to(tl.float32), far)
