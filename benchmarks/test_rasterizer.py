"""pytest-benchmark suites: ``pytest benchmarks/ --benchmark-only`` (add ``--benchmark-json F`` to keep them).

The same cases as ``tritonnmr bench``; on a CPU the torch reference and the numba backend run
(Triton's interpreter is not a performance path), on a GPU torch and triton, over sizes, faces and batch.
"""
import pytest
import torch

from tritonnmr import bench
from tritonnmr.bench import Case, make_step

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
BACKENDS = ["torch", "triton"] if DEVICE.type == "cuda" else list(bench.cpu_backends())
SIZES = [64, 128, 256, 512, 1024] if DEVICE.type == "cuda" else [64, 128, 256]
FACES = [10_000, 100_000, 1_000_000] if DEVICE.type == "cuda" else [10_000]
BATCHES = [1, 8, 32] if DEVICE.type == "cuda" else [1, 8]
PASSES = ["forward", "forward+backward"]


def _run(benchmark, case):
    step, _ = make_step(case, DEVICE)
    sync = torch.cuda.synchronize if DEVICE.type == "cuda" else (lambda: None)
    benchmark.pedantic(lambda: (step(), sync()), warmup_rounds=1, rounds=3)


@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("mode", ["silhouettes", "rgb"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_teapot_by_resolution(benchmark, backend, size, mode, passes):
    _run(benchmark, Case("teapot", 2464, size, 1, mode, backend, passes))


@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("faces", FACES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sphere_by_faces(benchmark, backend, faces, passes):
    _run(benchmark, Case("sphere", faces, 256, 1, "silhouettes", backend, passes))


@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_teapot_by_batch(benchmark, backend, batch, passes):
    _run(benchmark, Case("teapot", 2464, 128, batch, "silhouettes", backend, passes))
