"""Benchmark plumbing: the generated meshes, and a smoke run of ``tritonnmr bench``."""
import json
import os

import pytest
import torch

from tritonnmr import backends, bench
from tritonnmr.backends import torch as reference
from tritonnmr.apps.cli import main
from conftest import random_faces


def test_uv_sphere_is_closed_with_about_the_asked_faces():
    v, f = bench.uv_sphere(10_000)
    assert abs(len(f) - 10_000) < 500
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = set(map(tuple, edges.tolist()))
    assert all((b, a) in directed for a, b in directed)  # every edge has its twin: closed, oriented
    assert torch.allclose(v.norm(dim=1), torch.ones(len(v)), atol=1e-5)


@pytest.mark.skipif(not backends.interpreter_enabled(), reason="runs the Triton kernels in the interpreter")
@pytest.mark.parametrize("strategy", ["binned", "face", "pixel-loop"])
def test_each_benchmarked_strategy_equals_the_reference(strategy):
    """What ``tritonnmr bench --raster`` times: face index equal, weights and depth allclose."""
    from tritonnmr.bench import zbuffers
    faces = random_faces(2, 20, seed=3, spread=0.6)
    expected = reference.rasterize_fragments(faces, 16, 11, 0.1, 100.0)
    got = zbuffers.rasterize_fragments(faces, 16, 11, 0.1, 100.0, strategy)
    assert (expected[0] >= 0).sum() > 30
    assert torch.equal(expected[0], got[0])
    assert torch.allclose(expected[1], got[1], atol=1e-6) and torch.allclose(expected[2], got[2], atol=1e-6)


def test_raster_option_picks_the_triton_rows():
    """On a GPU the z-buffer stage times every strategy; --raster keeps one of them (and every other row)."""
    cases = bench.grid(False, torch.device("cuda"))
    zbuffer = [c for c in cases if c.stage == "z-buffer"]
    assert {c.raster for c in zbuffer if c.backend == "triton"} == {"binned", "face", "pixel-loop"}
    assert {c.backend for c in zbuffer} == {"torch", "triton"} and all(c.passes == "forward" for c in zbuffer)
    only_face = bench.select_raster(cases, "face")
    assert {c.raster for c in only_face if c.stage == "z-buffer" and c.backend == "triton"} == {"face"}
    assert [c for c in only_face if c.stage == "render"] == [c for c in cases if c.stage == "render"]
    assert bench.backend_label({"backend": "triton", "raster": "face", "stage": "z-buffer"}) == "triton (face z-buffer)"
    assert bench.backend_label({"backend": "triton"}) == "triton"


def test_bench_work_writes_the_work_model(tmp_path, monkeypatch, capsys):
    from tritonnmr.bench import workmodel
    monkeypatch.setattr(workmodel, "grid", lambda quick=False: [("quad", 2, 16, 1)])
    out = str(tmp_path / "w")
    assert main(["bench", "--work", "--out", out]) == 0
    assert "| quad | 2 | 16 | 1 | binned | forward |" in capsys.readouterr().out
    assert json.load(open(os.path.join(out, "results.json")))["rows"][0]["mesh"] == "quad"


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_the_gpu_check_says_in_one_line_that_there_is_no_gpu():
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.count("\n") == 1 and "no CUDA GPU" in done.stderr


def test_the_gpu_check_plans_every_column_and_writes_its_report():
    """The GPU grid times the Triton kernels against the torch reference and the pixel loop; the
    GPU peers name why they cannot run; the report gives the tests' outcome."""
    from benchmarks import gpu
    cases = gpu.gpu_cases()
    assert {c.backend for c in cases} == {"torch", "triton"}
    assert {c.raster for c in cases if c.backend == "triton"} == {"binned", "face", "pixel-loop"}
    assert cases[0].mesh == "teapot" and cases[0].batch == 1
    peer, notices = bench.peer_cases(cases, torch.device("cuda"))
    assert len(peer) + len(notices) >= 2  # each GPU peer is timed or says why not
    meta = dict(device="GPU", capability="sm_90", multiprocessors=132, commit="abc", date="today", torch="2",
                cuda="13", triton="3.6", python="3.12")
    tests = dict(passed=3, failed=1, errors=0, skipped=2, seconds=9.0, failures=["tests/x.py::t: boom"])
    report = gpu.to_markdown(meta, tests, [], ["nvdiffrast is not installed"])
    assert "3 passed, 1 failed" in report and "- tests/x.py::t: boom" in report and "nvdiffrast" in report
    assert gpu._folder("NVIDIA H200").endswith("-nvidia-h200")
