"""gradient="soft" (SoftRas): the soft image and its exact gradient, on every backend.

Against hand-derived values (a pixel's D and the depth softmax), finite differences of the float64
reference (every shader, silhouettes alone), the reference on random scenes for numba and Triton
(images and gradients; cut tile lists and face lists; non-square, anti-aliased, degenerate faces,
faces over the border, mixed-size batches through the Renderer), bit-identical results under a
shuffled program order and on any number of numba threads, the sigma -> 0 limit, and sigma from
1e-6 to 1e-2 (boxes that grow over the whole image).
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritonnmr as nr
from conftest import random_faces, triangle_faces
from tritonnmr import backends, gradients
from tritonnmr.backends import torch_soft
from tritonnmr.gradients import soft
from tritonnmr.shading import PackedUV

TRITON = backends.interpreter_enabled() or torch.cuda.is_available()
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = ["numba"] + (["triton"] if TRITON else [])
CUT = dict(min_faces=4, item_trips=1, merge_rows=2, reduce_rows=2)


def _device(backend):
    return TRITON_DEVICE if backend == "triton" else "cpu"


def _scene(batch=2, seed=0, faces=10):
    """Random faces (overlapping, back-facing, off the image, across near), one over the border, a
    zero-area one, and a copy of the first (a depth tie)."""
    f = random_faces(batch, faces, seed=seed, spread=0.9)
    border = torch.tensor([[-1.2, -0.2, 2.0], [-0.6, -0.3, 2.0], [-0.8, 0.5, 2.5]]).expand(batch, 1, 3, 3)
    flat = f[:, :1].clone()
    flat[:, :, 2] = flat[:, :, 0]
    return torch.cat([f, border, flat, f[:, :1]], 1).contiguous()


def _render(faces, textures, size, backend, sigma=1e-3, gamma=1e-2, anti_aliasing=False, seed=1):
    """Images and gradients (faces, textures) of a random-weighted loss on rgb and alpha."""
    device = _device(backend)
    f = faces.clone().to(device).requires_grad_()
    t = textures.clone().to(device).requires_grad_()
    out = nr.rasterize_rgbad(f, t, image_size=size, anti_aliasing=anti_aliasing, backend=backend, gradient="soft",
                             sigma=sigma, gamma=gamma, background_color=(0.2, 0.4, 0.6))
    g = torch.Generator().manual_seed(seed)
    loss = (out["rgb"] * torch.rand(out["rgb"].shape, generator=g).to(device)).sum() \
        + (out["alpha"] * torch.rand(out["alpha"].shape, generator=g).to(device)).sum()
    loss.backward()
    return [x.detach().cpu() for x in (out["rgb"], out["alpha"], f.grad, t.grad)]


def _same(a, b, what):
    for i, (x, y) in enumerate(zip(a, b)):
        assert torch.isfinite(y).all(), f"{what}: output {i} not finite"
        scale = max(float(x.abs().max()), 1.0)
        assert torch.allclose(x, y, rtol=1e-4, atol=2e-5 * scale), f"{what}: output {i} differs by " \
                                                                    f"{float((x - y).abs().max())} (scale {scale})"


# ----------------------------------------------------------------------------------------------
# The formula, by hand
# ----------------------------------------------------------------------------------------------
def test_one_pixel_by_hand():
    """A face seen by one pixel: D = sigmoid(s d^2 / sigma) with the distance to the nearest edge; the
    colour the depth softmax of the face and the background."""
    faces = triangle_faces([[(-0.5, -0.5), (0.5, -0.5), (0.0, 0.5)]], depth=2.0)  # contains the centre (0, 0)
    sigma, gamma = 0.05, 0.3
    colours = torch.tensor([[[[0.8, 0.1, 0.3]] * 3]])  # per face-vertex: a flat colour
    out = nr.rasterize_rgbad(faces, colours, image_size=1, anti_aliasing=False, backend="torch", gradient="soft",
                             sigma=sigma, gamma=gamma, background_color=(0.0, 0.0, 1.0), far=10.0)
    # from (0, 0): the bottom edge y = -0.5 is 0.5 away; the slanted edges, direction (-0.5, 1) through
    # (0.5, -0.5), |(0.5)(1) - (-0.5)(-0.5)| / |(-0.5, 1)| = 0.25 / sqrt(1.25) away: the nearest
    d2 = 0.25 ** 2 / 1.25
    D = 1 / (1 + math.exp(-d2 / sigma))
    zn = (10.0 - 2.0) / (10.0 - 0.1)
    eps = 1e-3
    w, w_bg = math.exp((zn - zn) / gamma), math.exp((eps - zn) / gamma)
    expected = (D * w * torch.tensor([0.8, 0.1, 0.3]) + w_bg * torch.tensor([0.0, 0.0, 1.0])) / (D * w + w_bg)
    assert out["alpha"].item() == pytest.approx(D, rel=1e-5)
    assert torch.allclose(out["rgb"][0, :, 0, 0], expected, atol=1e-6)


def test_a_face_out_of_reach_contributes_nothing():
    """Beyond sqrt(sigma ln(1 / dist_eps - 1)) a face is not listed: the pixel is background."""
    sigma = 1e-3
    reach = soft.radius(sigma)
    gap = reach * 1.05
    faces = triangle_faces([[(gap, -0.5), (gap + 0.5, -0.5), (gap, 0.5)]])
    alpha = nr.rasterize_silhouettes(faces, image_size=1, anti_aliasing=False, backend="torch", gradient="soft",
                                     sigma=sigma)
    assert alpha.item() == 0.0
    near = triangle_faces([[(reach * 0.95, -0.5), (reach * 0.95 + 0.5, -0.5), (reach * 0.95, 0.5)]])
    alpha = nr.rasterize_silhouettes(near, image_size=1, anti_aliasing=False, backend="torch", gradient="soft",
                                     sigma=sigma)
    # just inside the reach: D = sigmoid(-(0.95 r)^2 / sigma), a little above the cut-off's 1e-4
    assert alpha.item() == pytest.approx(1 / (1 + (1 / 1e-4 - 1) ** (0.95 ** 2)), rel=1e-3)


@pytest.mark.parametrize("sigma", [1e-2, 1e-4, 1e-6])
def test_soft_silhouettes_tend_to_the_hard_ones(sigma):
    """As sigma -> 0 the mean difference to the hard silhouette shrinks, and at 1e-6 it is tiny."""
    faces = random_faces(1, 8, seed=3, spread=0.6)
    hard = nr.rasterize_silhouettes(faces, 32, anti_aliasing=False, backend="torch")
    diffs = [float((nr.rasterize_silhouettes(faces, 32, anti_aliasing=False, backend="torch", gradient="soft",
                                             sigma=s) - hard).abs().mean()) for s in (sigma * 100, sigma)]
    assert diffs[1] < diffs[0]
    if sigma == 1e-6:
        assert diffs[1] < 1e-3


# ----------------------------------------------------------------------------------------------
# Exact gradients: finite differences of the float64 reference
# ----------------------------------------------------------------------------------------------
class _Normals(nr.Shader):
    """A plain-torch shader (autograd through bary): the barycentrics as colours, squared."""

    def shade(self, fragments, attributes, backend="auto"):
        return torch.where((fragments.face_index >= 0)[..., None], fragments.bary ** 2 * attributes, 0.0)

    def check(self, attributes, batch, num_faces):
        return attributes


def _shaders(F):
    g = torch.Generator().manual_seed(2)
    uvs = torch.rand(1, F, 3, 2, generator=g, dtype=torch.float64) * 2 - 0.5
    image = torch.rand(1, 3, 4, 3, generator=g, dtype=torch.float64)
    return {
        "cubes": (nr.TextureCubeShader(), torch.rand(1, F, 3, 3, 3, 3, generator=g, dtype=torch.float64)),
        "vertex colours": (nr.VertexColorShader(), torch.rand(1, F, 3, 3, generator=g, dtype=torch.float64)),
        "uv": (nr.UVTextureShader("MIRRORED_REPEAT"),
               PackedUV(uvs, torch.zeros(1, F, dtype=torch.long), image.reshape(-1, 3), torch.tensor([[0, 3, 4]]), 1)),
        "plain torch": (_Normals(), torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)),
        "silhouettes": (None, None),
    }


@pytest.mark.parametrize("name", ["cubes", "vertex colours", "uv", "plain torch", "silhouettes"])
def test_gradients_match_finite_differences(name):
    H, W = 6, 7
    faces = random_faces(1, 4, seed=5, spread=0.5).double()
    shader, attributes = _shaders(4)[name]
    outputs = ["alpha"] if shader is None else ["rgb", "alpha"]

    def loss(f):
        scene = gradients.Scene(f, attributes, shader, None, None, (0.2, 0.3, 0.4), H, W, 0.1, 100.0, "torch")
        out = soft.render(scene, None, outputs, gradients.Options(sigma=3e-3, gamma=3e-2))
        g = torch.Generator().manual_seed(1)
        return sum((out[k] * torch.rand(out[k].shape, generator=g, dtype=torch.float64)).sum() for k in outputs)

    f = faces.clone().requires_grad_()
    loss(f).backward()
    numeric = torch.zeros_like(faces)
    h = 1e-6
    for i in range(faces.numel()):
        up, down = faces.clone().view(-1), faces.clone().view(-1)
        up[i] += h
        down[i] -= h
        numeric.view(-1)[i] = (loss(up.view_as(faces)) - loss(down.view_as(faces))) / (2 * h)
    assert numeric.abs().max() > 0.1
    assert torch.allclose(f.grad, numeric, atol=1e-6 * float(numeric.abs().max()), rtol=1e-5), \
        float((f.grad - numeric).abs().max())


def test_blend_gradients_match_finite_differences():
    """soft_blend_backward against finite differences of soft_blend (float64), zero factors included."""
    g = torch.Generator().manual_seed(4)
    pixel = torch.tensor([0, 0, 0, 2, 2, 3])
    d2 = torch.tensor([0.01, -0.004, 2.0, 0.002, -0.001, 0.003], dtype=torch.float64)
    depth = torch.rand(6, generator=g, dtype=torch.float64) * 5 + 1
    colours = torch.rand(6, 3, generator=g, dtype=torch.float64)
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    args = (4, 5e-3, 0.05, 1e-3, 0.1, 20.0)
    g_rgb = torch.rand(4, 3, generator=g, dtype=torch.float64)
    g_alpha = torch.rand(4, generator=g, dtype=torch.float64)

    def loss(d2, depth, colours):
        rgb, alpha = torch_soft.soft_blend(pixel, d2, depth, colours, bg, *args)
        return (rgb * g_rgb).sum() + (alpha * g_alpha).sum()

    exact = torch_soft.soft_blend_backward(pixel, d2, depth, colours, bg, *args, g_rgb, g_alpha)
    for which, (x, e) in enumerate(zip((d2, depth, colours), exact)):
        numeric = torch.zeros_like(x)
        for i in range(x.numel()):
            values = [d2, depth, colours]
            up, down = x.clone().view(-1), x.clone().view(-1)
            up[i] += 1e-7
            down[i] -= 1e-7
            values[which] = up.view_as(x)
            plus = loss(*values)
            values[which] = down.view_as(x)
            numeric.view(-1)[i] = (plus - loss(*values)) / 2e-7
        assert torch.allclose(e, numeric, atol=1e-6, rtol=1e-5), (which, e, numeric)


# ----------------------------------------------------------------------------------------------
# Every backend equals the reference
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size, anti_aliasing, sigma", [((9, 11), False, 1e-3), ((5, 8), True, 1e-2),
                                                         (7, False, 1e-6), ((1, 6), False, 1e-4)])
def test_every_backend_equals_the_reference(backend, size, anti_aliasing, sigma):
    faces = _scene()
    textures = torch.rand(faces.shape[0], faces.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(3))
    expected = _render(faces, textures, size, "torch", sigma=sigma, anti_aliasing=anti_aliasing)
    assert expected[1].sum() > 0 and expected[2].abs().sum() > 0
    _same(expected, _render(faces, textures, size, backend, sigma=sigma, anti_aliasing=anti_aliasing), backend)


@pytest.mark.skipif(not TRITON, reason="the Triton backend needs CUDA or TRITON_INTERPRET=1")
def test_triton_with_every_list_cut_equals_the_reference():
    """Tile lists and face lists cut into items of a few elements: merged and summed in slot order."""
    from tritonnmr.backends.triton import tuning
    faces = _scene(seed=7)
    textures = torch.rand(faces.shape[0], faces.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(3))
    expected = _render(faces, textures, (8, 9), "torch", sigma=3e-3)
    with tuning.override(**CUT):
        _same(expected, _render(faces, textures, (8, 9), "triton", sigma=3e-3), "triton, cut")


@pytest.mark.parametrize("backend", ["torch"] + BACKENDS)
def test_the_renderer_with_a_list_of_meshes_is_each_mesh_alone(backend):
    """Mixed-size batches: lists of meshes through the Renderer equal each mesh rendered alone."""
    device = _device(backend)
    v0, f0 = nr.load_obj(nr.data_path("tetrahedron.obj"))
    v1 = torch.rand(7, 3, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    f1 = torch.tensor([[0, 1, 2], [2, 3, 4], [4, 5, 6], [0, 3, 6], [1, 4, 6], [0, 2, 5]])
    vs, fs = [v0.to(device), v1.to(device)], [f0.to(device), f1.to(device)]
    colours = [torch.rand(v.shape[0], 3, generator=torch.Generator().manual_seed(i)).to(device) for i, v in enumerate(vs)]
    r = nr.Renderer(image_size=8, camera_mode="look_at", backend=backend, gradient="soft", sigma=2e-3, gamma=1e-2)
    rgb, _, alpha = r(vs, fs, colours)
    for i in range(2):
        rgb_i, _, alpha_i = r(vs[i][None], fs[i][None], colours[i][None])
        assert torch.allclose(rgb_i[0], rgb[i], atol=1e-6) and torch.allclose(alpha_i[0], alpha[i], atol=1e-6)


@pytest.mark.skipif(not TRITON, reason="the Triton backend needs CUDA or TRITON_INTERPRET=1")
def test_triton_is_bit_identical_whatever_order_the_programs_run_in(monkeypatch):
    from test_triton import _shuffled
    from tritonnmr.backends.triton import binning, tuning
    faces = _scene(seed=9)
    textures = torch.rand(faces.shape[0], faces.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(3))
    with tuning.override(**CUT):
        plain = _render(faces, textures, (8, 9), "triton", sigma=3e-3)
        monkeypatch.setattr(binning, "split_segments", _shuffled(2))
        shuffled = _render(faces, textures, (8, 9), "triton", sigma=3e-3)
    for a, b in zip(plain, shuffled):
        assert torch.equal(a, b)


def test_numba_is_bit_identical_on_any_number_of_threads():
    import numba
    faces = _scene(batch=3, seed=11, faces=30)
    textures = torch.rand(3, faces.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(3))
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS), numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            runs.append(_render(faces, textures, (33, 29), "numba", sigma=1e-3))
    finally:
        numba.set_num_threads(before)
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert torch.equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wide_reach_covers_the_whole_image(backend):
    """A reach wider than the image (sigma = 0.5: 2.1 square-NDC units): every drawn face is listed at
    every pixel (its depth in range there); nothing is dropped, and every backend agrees."""
    faces = random_faces(1, 6, seed=13, spread=0.5).abs() * torch.tensor([1.0, 1.0, 1.0]) + torch.tensor([0, 0, 1.0])
    faces = torch.cat([faces, faces.flip(2)], 1)  # each face both ways: one of each pair is drawn
    textures = torch.rand(1, faces.shape[1], 1, 1, 1, 3, generator=torch.Generator().manual_seed(3))
    pairs = torch_soft.soft_fragments(faces, 4, 4, 0.1, 100.0, soft.radius(0.5))[0]
    assert pairs.numel() == int(nr.backends.common.drawn(faces).sum()) * 16
    expected = _render(faces, textures, 4, "torch", sigma=0.5)
    _same(expected, _render(faces, textures, 4, backend, sigma=0.5), backend)


def test_empty_and_degenerate_input():
    for backend in ["torch"] + BACKENDS:
        for faces in (torch.zeros(1, 0, 3, 3), torch.zeros(0, 3, 3, 3),
                      torch.tensor([[[[0.0, 0, 2], [0.5, 0, 2], [1.0, 0, 2]]]]),  # zero area
                      torch.tensor([[[[0.0, 0, 2], [0.0, 0.5, 2], [0.5, 0, 2]]]])):  # back-facing
            out = nr.rasterize_silhouettes(faces.to(_device(backend)).requires_grad_(), 5, backend=backend,
                                           gradient="soft")
            assert out.shape == (faces.shape[0], 5, 5) and torch.all(out == 0), backend


@st.composite
def _scenes(draw):
    B = draw(st.integers(1, 2))
    F = draw(st.integers(1, 4))
    coord = st.one_of(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.25]), st.floats(-1.25, 1.25, width=32))
    depth = st.one_of(st.sampled_from([0.5, 1.0, 1.0, 2.0]), st.floats(0.25, 3.0, width=32))
    faces = torch.tensor(draw(st.lists(st.lists(st.tuples(coord, coord, depth), min_size=3, max_size=3),
                                       min_size=B * F, max_size=B * F)), dtype=torch.float32).view(B, F, 3, 3)
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    sigma = draw(st.sampled_from([1e-5, 1e-3, 3e-2]))
    return faces, size, sigma


@settings(max_examples=25 if not torch.cuda.is_available() else 200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_scenes())
def test_every_backend_agrees_and_stays_finite_on_fuzzed_scenes(scene):
    faces, size, sigma = scene
    textures = torch.rand(faces.shape[0], faces.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    expected = _render(faces, textures, size, "torch", sigma=sigma)
    for backend in BACKENDS:
        _same(expected, _render(faces, textures, size, backend, sigma=sigma), backend)
