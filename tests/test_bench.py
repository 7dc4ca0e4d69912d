"""Benchmark plumbing: the generated meshes, and a smoke run of ``tritonnmr bench``."""
import json
import os

import torch

from tritonnmr import bench
from tritonnmr.cli import main
from tritonnmr.kernels.baseline import rasterize_fragments_pixel_loop
from conftest import random_faces


def test_uv_sphere_is_closed_with_about_the_asked_faces():
    v, f = bench.uv_sphere(10_000)
    assert abs(len(f) - 10_000) < 500
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = set(map(tuple, edges.tolist()))
    assert all((b, a) in directed for a, b in directed)  # every edge has its twin: closed, oriented
    assert torch.allclose(v.norm(dim=1), torch.ones(len(v)), atol=1e-5)


def test_pixel_loop_baseline_equals_face_parallel_kernels():
    from tritonnmr import kernels
    faces = random_faces(1, 12, seed=3)
    a = rasterize_fragments_pixel_loop(faces, 10, 0.1, 100.0)
    b = kernels.rasterize_fragments(faces, 10, 0.1, 100.0)
    assert torch.equal(a[0], b[0]) and torch.allclose(a[2], b[2])


def test_bench_cli_writes_json_markdown_and_plot(tmp_path, monkeypatch):
    small = [bench.Case("teapot", 2464, 32, 1, "silhouettes", "torch", p) for p in ("forward", "forward+backward")]
    small.append(bench.Case("sphere", 2000, 32, 2, "rgb", "torch", "forward"))
    monkeypatch.setattr(bench, "grid", lambda quick, device: small)
    out = str(tmp_path / "b")
    assert main(["bench", "--quick", "--repeats", "1", "--out", out]) == 0
    with open(os.path.join(out, "results.json")) as fh:
        rows = json.load(fh)["rows"]
    assert len(rows) == 3 and all(r["median_ms"] > 0 and r["speedup_vs_torch"] == 1.0 for r in rows)
    assert "| teapot | 2464 | 32 |" in open(os.path.join(out, "results.md")).read()
    assert os.path.getsize(os.path.join(out, "results.png")) > 1000
