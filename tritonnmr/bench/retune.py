"""Retune the Triton backend's table on a GPU: ``python -m tritonnmr.bench.retune``.

Times the binned forward for each candidate (tile 8 / 16, faces_per_trip 1 / 4 / 8, min_faces
16 / 32 / 64) on the benchmark scenes at 256^2 and 1024^2 and prints the fastest per scene, to copy
into ``backends/triton/tuning.py``'s TABLE (then rerun ``tritonnmr bench --work`` to check the
targets still hold). On the CPU it runs through Triton's interpreter (tiny sizes only).
"""
import time

import torch

from ..backends import triton as backend
from ..backends.triton import tuning
from ..defaults import FAR as DEFAULT_FAR, NEAR as DEFAULT_NEAR
from .workmodel import scene_faces


def retune(device="cuda", sizes=(256, 1024), scenes=(("teapot", 2464), ("sphere", 100_000), ("sphere", 1_000_000)),
           tiles=(8, 16), faces_per_trip=(1, 4, 8), min_faces=(16, 32, 64), repeats=20, out=print):
    """[(mesh, faces, size, tile, faces_per_trip, min_faces)] of the fastest candidate per scene."""
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best_rows = []
    for size in sizes:
        for mesh, n in scenes:
            faces = scene_faces(mesh, n, size, 1).to(device)
            best = None
            for tile in tiles:
                for rows in faces_per_trip:
                    for least in min_faces:
                        with tuning.override(tile=tile, faces_per_trip=rows, min_faces=max(least, rows)):
                            backend.rasterize_fragments(faces, size, size, DEFAULT_NEAR, DEFAULT_FAR)
                            sync()
                            start = time.perf_counter()
                            for _ in range(repeats):
                                backend.rasterize_fragments(faces, size, size, DEFAULT_NEAR, DEFAULT_FAR)
                            sync()
                        ms = (time.perf_counter() - start) / repeats * 1000
                        out(f"{mesh} {n} {size}^2: tile {tile} faces_per_trip {rows} min_faces {least}: {ms:.3f} ms")
                        best = min(best or (ms, tile, rows, least), (ms, tile, rows, least))
            best_rows.append((mesh, n, size) + best[1:])
            out(f"-> {mesh} {n} {size}^2: tile {best[1]}, faces_per_trip {best[2]}, min_faces {best[3]}")
    return best_rows


if __name__ == "__main__":
    retune()
