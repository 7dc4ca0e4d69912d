"""PyTorch3D as a benchmark peer (tritonnmr/bench/peers.py): the same teapot, camera and pixels.

PyTorch3D is optional (benchmarks/README.md builds it for the CPU); without it these tests are
skipped with a one-line reason.
"""
import pytest
import torch

import tritonnmr as nr
from tritonnmr.bench import cases, peers

SIZE = 128


def _pytorch3d():
    reason = peers.gpu_peer_unavailable("pytorch3d", "cpu")
    if reason:
        pytest.skip(reason)


def _teapot():
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    return v[None], f, nr.get_points_from_angles(*cases.EYE)


def _ours(v, f, eye, **kw):
    r = nr.Renderer(image_size=SIZE, camera_mode="look_at", **kw)
    r.eye = eye
    return r(v, f[None], mode="silhouettes")


def test_pytorch3d_hard_silhouette_equals_ours_pixel_for_pixel():
    """Its camera space is tritonnmr's with x negated, its field of view twice our half-angle: then its
    hard rasterizer covers exactly the pixel centres ours does."""
    _pytorch3d()
    v, f, eye = _teapot()
    theirs = peers.pytorch3d_hard_step(v, f, SIZE, eye)()
    ours = _ours(v, f, eye, anti_aliasing=False)
    assert ours.sum() > 0.1 * SIZE * SIZE
    assert torch.equal(theirs, ours)


def test_pytorch3d_soft_silhouette_is_ours_blurred_along_the_outline():
    """Its soft silhouette, cut at 1/2, differs from our hard one only within a pixel of our outline;
    the forward + backward step (what the benchmark times) gives the same silhouette."""
    _pytorch3d()
    v, f, eye = _teapot()
    soft = peers.pytorch3d_silhouette_step(v, f, SIZE, eye, "forward")().detach()
    ours = _ours(v, f, eye, anti_aliasing=False)
    pooled = torch.nn.functional.max_pool2d
    outline = (pooled(ours, 5, 1, 2) != -pooled(-ours, 5, 1, 2))  # a pixel of each kind within 2 pixels
    differ = (soft > 0.5).float() != ours
    assert differ.any() and not (differ & ~outline).any()
    stepped = peers.pytorch3d_silhouette_step(v, f, SIZE, eye, "forward+backward")().detach()
    assert torch.equal(stepped, soft)


def test_the_benchmark_has_a_pytorch3d_column_on_the_cpu_or_says_why_not():
    grid = [cases.Case("teapot", 2464, 64, 1, "silhouettes", "torch", p) for p in ("forward", "forward+backward")]
    extra, notices = cases.peer_cases(grid)
    names = {c.backend for c in extra}
    reason = peers.gpu_peer_unavailable("pytorch3d", "cpu")
    assert ("pytorch3d" in names) == (reason is None)
    assert reason is None or any("pytorch3d" in n for n in notices)
    assert all("\n" not in n for n in notices)
