"""Test set-up: without CUDA, Triton kernels run in Triton's interpreter (set before triton imports)."""
import os
import warnings

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
warnings.filterwarnings("ignore", message="backend='triton' on CPU tensors", category=RuntimeWarning)

import pytest  # noqa: E402

# One torch thread: the tests are small, and on a busy 2-core machine two threads made them 5x slower
torch.set_num_threads(1)
try:  # the numba CPU backend's jobs likewise (tests that compare thread counts set their own)
    import numba
    numba.set_num_threads(1)
except ImportError:
    pass

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def triangle_faces(points, depth=2.0, device="cpu"):
    """(1, F, 3, 3) screen-space faces from a list of triangles of (x, y) NDC points."""
    t = torch.tensor(points, dtype=torch.float32, device=device)
    return torch.cat([t, torch.full(t.shape[:-1] + (1,), depth, device=device)], -1)[None]


def random_faces(batch, num_faces, seed, device="cpu", spread=1.3):
    """Random screen-space triangles: overlapping, about half back-facing, some off the image and
    some crossing the near plane (z near 0.1)."""
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(batch, num_faces, 1, 2, generator=g) * 2 - 1) * spread
    offsets = (torch.rand(batch, num_faces, 3, 2, generator=g) - 0.5) * 0.9
    z = torch.rand(batch, num_faces, 3, 1, generator=g) * 3 + 0.05
    return torch.cat([centres + offsets, z], -1).to(device)


@pytest.fixture(autouse=True)
def _load_obj_on_the_cpu(monkeypatch):
    """load_obj puts tensors on the GPU where there is one (as neural_renderer does); the tests build
    their scenes on the CPU and move them with the ``device`` fixture, so they load on the CPU."""
    import tritonnmr.io.load as load
    monkeypatch.setattr(load, "default_device", lambda: "cpu")
