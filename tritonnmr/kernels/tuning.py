"""Tile and block sizes of the Triton backend: a table keyed on image size and face count.

No GPU was lent to the session that wrote it, so the table holds defaults justified by the work
model (``tritonnmr bench --work``, benchmarks/results/workmodel-*), not by timings:

- ``tile`` 8 (8 x 8 = 64 lanes, two warps per program): the lanes a tile program tests per face
  are about (w + 8)(h + 8) for a face whose box is w x h pixels, against max(w h, 128) for the
  face-parallel kernel's 128-pixel blocks: within 1.2x of it on the teapot and the spheres, where
  16 x 16 tiles launch 2-3x as many (a small face still costs 256 lanes). Large tiles only pay
  when faces are large (full-screen quads: equal lanes), where both do well.
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

To retune on a GPU: ``python -m tritonnmr.kernels.tuning`` times each candidate (tile 8 / 16,
min_faces 16 / 32 / 64) on the benchmark meshes at 256^2 and 1024^2 and prints the fastest per
row of the table; copy its output into TABLE.
"""
import contextlib
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


def edge_registers(channels_padded):
    """Register cap (``maxnreg``) of the blurred-edge kernel for CP padded channels. Without one,
    ptxas keeps it near 40 registers and spills 8-20 bytes; these caps let it keep everything in
    registers (checked by tests/test_compile.py, ptxas -v, sm_80 and sm_90, triton 3.6 and 3.9)."""
    return 64 if channels_padded <= 2 else 80 if channels_padded <= 4 else 96


# (largest H * W, largest face count, config): the first row that fits is used
TABLE = (
    (512 * 512, None, Config()),
    (None, None, Config(edge_block=256)),
)


_override = {}  # field -> value, set by ``override``


def config(height, width, num_faces):
    """The Config for a (height, width) image of ``num_faces`` faces per batch entry."""
    chosen = TABLE[-1][2]
    for max_pixels, max_faces, cfg in TABLE:
        if (max_pixels is None or height * width <= max_pixels) and (max_faces is None or num_faces <= max_faces):
            chosen = cfg
            break
    return replace(chosen, **_override) if _override else chosen


@contextlib.contextmanager
def override(**fields):
    """``with override(min_faces=1): ...``: every config has these fields (tests use it to force the
    paths that real scenes reach only at scale, such as cut tile lists)."""
    saved = dict(_override)
    _override.update(fields)
    try:
        yield
    finally:
        _override.clear()
        _override.update(saved)


def programs(device):
    """How many programs run at once on ``device``: SMs x 4 on a GPU, PROGRAMS elsewhere (the work
    model and the interpreter use the H100's figure, so their plans are the H100's)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count * 4
    return PROGRAMS


def retune(device="cuda", repeats=20):
    """Time candidate tile sizes and minimum item lengths on the benchmark meshes; print table rows."""
    import time

    import tritonnmr as nr
    from tritonnmr import bench
    from tritonnmr import kernels
    global TABLE
    base = TABLE
    for size in (256, 1024):
        for mesh, faces in (("teapot", 2464), ("sphere", 100_000), ("sphere", 1_000_000)):
            v, f = bench._mesh(bench.Case(mesh, faces, size, 1, "silhouettes", "triton", "forward"), device)
            renderer = nr.Renderer(image_size=size, camera_mode="look_at", anti_aliasing=False)
            renderer.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
            screen = nr.vertices_to_faces(renderer.transform(v), nr.fill_back(f)[0]).contiguous()
            best = None
            for tile in (8, 16):
                for min_faces in (16, 32, 64):
                    TABLE = ((None, None, replace(config(size, size, screen.shape[1]), tile=tile,
                                                  min_faces=min_faces)),)
                    kernels.rasterize_fragments(screen, size, size, 0.1, 100.0)
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    for _ in range(repeats):
                        kernels.rasterize_fragments(screen, size, size, 0.1, 100.0)
                    torch.cuda.synchronize()
                    ms = (time.perf_counter() - t) / repeats * 1000
                    print(f"{mesh} {screen.shape[1]} faces {size}^2: tile {tile} min_faces {min_faces}: {ms:.3f} ms")
                    best = min(best or (ms, tile, min_faces), (ms, tile, min_faces))
            print(f"-> {mesh} {size}^2: tile {best[1]}, min_faces {best[2]}")
            TABLE = base


if __name__ == "__main__":
    retune()
