"""Tile and block sizes of the Triton backend: a table keyed on image size and face count.

No GPU was lent to the session that wrote it, so the table holds defaults justified by the work
model (``tritonnmr bench --work``, benchmarks/results/workmodel-*), not by timings:

- ``tile`` 8 (8 x 8 = 64 lanes, two warps per program): the lanes a tile program tests per face
  are about (w + 8)(h + 8) for a face whose box is w x h pixels, against max(w h, 128) for the
  face-parallel kernel's 128-pixel blocks: within 1.2x of it on the teapot and the spheres, where
  16 x 16 tiles launch 2-3x as many (a small face still costs 256 lanes). Large tiles only pay
  when faces are large (full-screen quads: equal lanes), where both do well.
- ``faces_per_trip`` 4: a tile program tests 4 faces per trip (a 4 x 64 block), a quarter of the
  trips of one face per trip for at most 2x the lanes (a tile list of 1-3 faces pads to 4: the
  full-screen quad's tiles); 8 from 100k faces per batch entry on, where tile lists are long
  (tens to thousands of faces) and 8 halves the trips again at the same lanes.
- ``min_faces`` 32: a tile's face list is cut into items of max(32, pairs / programs) faces, so a
  program loops over at most the fair share of the whole frame's pairs (and at least 32, to keep
  per-program overhead small); ``programs`` is the GPU's concurrency (SMs x 4; 528 on an H100).
- ``edge_block`` 128 pixels per trip of a scanline walk up to 512 x 512 images, 256 above, and
  ``edge_trips`` 16: a program walks at most 16 / ceil(side / edge_block) scanlines.
- ``pixel_block`` 64 pixels per trip (the cube gradient takes fewer, see
  kernels.cube_block) and ``item_trips`` 8: a backward item has max(8 trips, covered pixels /
  programs) of pixels; ``reduce_rows`` 32 slots per trip of the segment sums. The backward is
  several launches in a row (edge, its sums, depth, its sums, textures, their sums), so each
  launch's longest program stays short: together well within 64 trips on small scenes.

To retune on a GPU: ``python -m tritonnmr.bench.retune`` times each candidate (tile 8 / 16,
faces_per_trip 1 / 4 / 8, min_faces 16 / 32 / 64) on the benchmark scenes at 256^2 and 1024^2 and
prints the fastest per scene; write the winners into TABLE (keyed on image size and face count)
and rerun ``tritonnmr bench --work`` to check the targets still hold.
"""
import contextlib
import contextvars
from dataclasses import dataclass, replace

import torch

PROGRAMS = 528  # concurrent programs the plans spread work over: an H100's 132 SMs x 4


@dataclass(frozen=True)
class Config:
    tile: int = 8           # binned forward: tile side in pixels (tile x tile lanes per program)
    faces_per_trip: int = 4  # binned forward: faces tested per trip (rows of the tile program's block)
    min_faces: int = 32     # binned forward: faces per item at least (a multiple of faces_per_trip)
    merge_rows: int = 16    # binned forward: slots merged per trip
    block: int = 128        # face-parallel and pixel-loop forward: lanes per trip
    map_block: int = 256    # pixel-parallel kernels (decode, barycentrics, shading): pixels per program
    edge_block: int = 128   # blurred edge: pixels per trip of a scanline walk
    edge_trips: int = 16    # blurred edge: trips per item at most (whole scanlines; at least one)
    pixel_block: int = 64   # depth / texture backward: pixels per trip
    item_trips: int = 8     # depth / texture backward: trips per item at least
    reduce_rows: int = 32   # segment sums: slots per trip


WARP = 32  # threads per warp


def warps(lanes):
    """Warps per program of a kernel whose widest block holds ``lanes`` elements: a thread per lane up
    to 4 warps (Triton's default), fewer for narrower blocks (64 lanes: 2), where 4 warps would leave
    half the threads repeating the others' work. Every launch passes its block through this
    (kernels._launch), and tests/test_compile.py prints each kernel's warps."""
    return max(1, min(4, lanes // WARP))


def edge_registers(channels_padded):
    """Register cap (``maxnreg``) of the blurred-edge kernel for CP padded channels. Without one,
    ptxas keeps it near 40 registers and spills 8-20 bytes; these caps let it keep everything in
    registers (checked by tests/test_compile.py, ptxas -v, sm_80 and sm_90, triton 3.6 and 3.9)."""
    return 64 if channels_padded <= 2 else 88 if channels_padded <= 4 else 96


# (largest H * W, largest face count per batch entry, config): the first row that fits is used
TABLE = (
    (512 * 512, 100_000, Config()),
    (512 * 512, None, Config(faces_per_trip=8)),
    (None, 100_000, Config(edge_block=256)),
    (None, None, Config(edge_block=256, faces_per_trip=8)),
)


# fields every config has inside ``override`` blocks: scoped to the block and its thread (a context
# variable), so nothing outside it (another thread, the code after it) sees them
_overrides = contextvars.ContextVar("tritonnmr_tuning_overrides", default={})


def config(height, width, num_faces):
    """The Config for a (height, width) image of ``num_faces`` faces per batch entry."""
    chosen = TABLE[-1][2]
    for max_pixels, max_faces, cfg in TABLE:
        if (max_pixels is None or height * width <= max_pixels) and (max_faces is None or num_faces <= max_faces):
            chosen = cfg
            break
    fields = _overrides.get()
    return replace(chosen, **fields) if fields else chosen


@contextlib.contextmanager
def override(**fields):
    """``with override(min_faces=1): ...``: inside the block, every config has these fields (tests use
    it to force the paths that real scenes reach only at scale, such as cut tile lists; the retuning
    tool to time candidates)."""
    token = _overrides.set({**_overrides.get(), **fields})
    try:
        yield
    finally:
        _overrides.reset(token)


def programs(device):
    """How many programs run at once on ``device``: SMs x 4 on a GPU, PROGRAMS elsewhere (the work
    model and the interpreter use the H100's figure, so their plans are the H100's)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count * 4
    return PROGRAMS
