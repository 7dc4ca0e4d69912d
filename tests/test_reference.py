"""The PyTorch reference rasterizer against geometry worked out by hand, Blender, and finite differences."""
import imageio.v3 as iio
import numpy as np
import pytest
import torch

import tritonnmr as nr
from conftest import triangle_faces

EPS = 1e-4
# A right triangle: v0 (-0.5, -0.5), v1 (0.5, -0.5), v2 (0.5, 0.5); at S = 8 its pixel coordinates
# are (1.5, 1.5), (5.5, 1.5), (5.5, 5.5): the vertical edge v1-v2 sits at x = 5.5 pixels.
TRIANGLE = [[[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5]]]


def silhouette(faces, size=8, backend="torch"):
    return nr.rasterize_silhouettes(faces, size, anti_aliasing=False, backend=backend)


def test_rectangle_covers_known_pixels_and_depth(device):
    # x in [-0.5, 0.5] -> columns 2..5; y in [0, 1] -> pre-flip rows 4..7 -> top rows 0..3
    quad = [[[-0.5, 0.0], [0.5, 0.0], [0.5, 1.0]], [[-0.5, 0.0], [0.5, 1.0], [-0.5, 1.0]]]
    faces = triangle_faces(quad, depth=2.5, device=device)
    out = nr.rasterize_rgbad(faces, None, 8, False, return_rgb=False, backend="torch")
    expected = torch.zeros(8, 8)
    expected[0:4, 2:6] = 1
    assert torch.equal(out["alpha"][0].cpu(), expected)
    depth = out["depth"][0].cpu()
    assert torch.allclose(depth[0:4, 2:6], torch.full((4, 4), 2.5))
    assert torch.all(depth[expected == 0] == 100)


def test_back_faces_are_culled_and_fill_back_shows_them():
    faces = triangle_faces([[[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]]])  # clockwise
    assert silhouette(faces).sum() == 0
    v = faces[..., :].reshape(1, 3, 3)
    f = torch.tensor([[[0, 1, 2]]])
    r = nr.Renderer(image_size=8, anti_aliasing=False, camera_mode="none", fill_back=False, backend="torch")
    assert r.render_silhouettes(v, f).sum() == 0
    r.fill_back = True
    assert r.render_silhouettes(v, f).sum() > 0


def test_nearest_face_wins_and_ties_go_to_lower_index():
    big = [[-0.9, -0.9], [0.9, -0.9], [0.0, 0.9]]
    far = triangle_faces([big], depth=5.0)
    near = triangle_faces([big], depth=2.0)
    frags = nr.rasterize_fragments(torch.cat([far, near], 1), 8, backend="torch")
    covered = frags.face_index >= 0
    assert torch.all(frags.face_index[covered] == 1)
    assert torch.allclose(frags.depth[covered], torch.tensor(2.0))
    tie = nr.rasterize_fragments(torch.cat([near, near], 1), 8, backend="torch")
    assert torch.all(tie.face_index[tie.face_index >= 0] == 0)


def test_near_and_far_planes_drop_pixels():
    faces = triangle_faces(TRIANGLE, depth=0.05)
    assert silhouette(faces).sum() == 0
    assert silhouette(triangle_faces(TRIANGLE, depth=150.0)).sum() == 0
    assert silhouette(triangle_faces(TRIANGLE, depth=5.0)).sum() > 0


def test_teapot_silhouette_matches_blender_pixel_for_pixel():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    r = nr.Renderer(camera_mode="look_at", anti_aliasing=False, backend="torch")
    ours = r.render_silhouettes(v[None], f[None])[0].numpy()
    blender = iio.imread(nr.data_path("teapot_blender.png"))
    mask = (blender != 255).any(-1)
    assert mask.sum() > 5000
    assert np.array_equal(ours > 0.5, mask)


def test_anti_aliasing_averages_two_by_two():
    faces = triangle_faces(TRIANGLE)
    hi = nr.rasterize_silhouettes(faces, 16, anti_aliasing=False, backend="torch")
    aa = nr.rasterize_silhouettes(faces, 8, anti_aliasing=True, backend="torch")
    assert torch.allclose(aa, torch.nn.functional.avg_pool2d(hi[:, None], 2)[:, 0])
    assert ((aa > 0) & (aa < 1)).any()  # the diagonal edge is blended


def test_texture_sampling_of_constant_and_corner_cubes():
    faces = triangle_faces(TRIANGLE, depth=3.0)
    tex = torch.zeros(1, 1, 2, 2, 2, 3)
    tex[..., 0] = 0.25
    rgb = nr.rasterize(faces, tex, 8, anti_aliasing=False, backend="torch", background_color=(0, 0, 1))
    alpha = silhouette(faces)[0] > 0
    assert torch.allclose(rgb[0, 0][alpha], torch.tensor(0.25))
    assert torch.all(rgb[0, 2][~alpha] == 1)
    # a cube that is 1 only at the corner of vertex 2: the colour is trilinear in the weights
    tex = torch.zeros(1, 1, 2, 2, 2, 3)
    tex[0, 0, 0, 0, 1] = 1.0
    frags = nr.rasterize_fragments(faces, 8, backend="torch")
    rgb = nr.TextureCubeShader(eps=0.0).shade(frags, tex, "torch")
    hit = frags.face_index[0] >= 0
    w = frags.weights[0][hit]
    expected = (1 - w[:, 0]) * (1 - w[:, 1]) * w[:, 2]
    assert torch.allclose(rgb[0][hit][:, 0], expected, atol=1e-6)


BACKENDS = ["torch", "triton"]  # the blurred-edge cases are checked on both backends


def _loss_grad(faces, weights, backend, size=8):
    faces = faces.clone().requires_grad_()
    (silhouette(faces, size, backend) * weights).sum().backward()
    return faces.grad[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_blurred_edge_outside_pixel_pulls_the_edge(backend):
    # wanting the pixel right of the edge (pre-flip row 4, column 6) covered: L = -alpha there
    weights = torch.zeros(1, 8, 8)
    weights[0, 7 - 4, 6] = -1.0
    g = _loss_grad(triangle_faces(TRIANGLE), weights, backend)[0]
    # edge v1-v2, row 4: crossing at x = 5.5 px; pixel 6 is 0.5 px out -> 0.125 NDC
    # dist for v1 alone = (5.5 - 1.5) / (5.5 - 4) * 0.125, for v2 alone = 4 / (4 - 1.5) * 0.125
    expected = torch.zeros(3, 3)
    expected[1, 0] = -1 / (4 / 1.5 * 0.125 + EPS)
    expected[2, 0] = -1 / (4 / 2.5 * 0.125 + EPS)
    assert torch.allclose(g, expected, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blurred_edge_inside_pixel_pushes_the_edge_away(backend):
    # wanting the face's pixel (pre-flip row 4, column 5) uncovered: L = alpha there
    weights = torch.zeros(1, 8, 8)
    weights[0, 7 - 4, 5] = 1.0
    g = _loss_grad(triangle_faces(TRIANGLE), weights, backend)[0]
    # v1-v2 moving in by 0.5 px uncovers it (v1: 4/1.5 * 0.125, v2: 4/2.5 * 0.125);
    # the diagonal v2-v0 (crossing at x = 4 px) moving right by 1 px does too (v2: 1.6*0.25, v0: 8/3*0.25)
    assert g[1, 0] == pytest.approx(1 / (4 / 1.5 * 0.125 + EPS), rel=1e-5)
    assert g[2, 0] == pytest.approx(1 / (4 / 2.5 * 0.125 + EPS) - 1 / (1.6 * 0.25 + EPS), rel=1e-5)
    assert g[0, 0] == pytest.approx(-1 / (8 / 3 * 0.25 + EPS), rel=1e-5)
    assert torch.all(g[:, 2] == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blurred_edge_moves_that_raise_the_loss_get_nothing(backend):
    weights = torch.zeros(1, 8, 8)
    weights[0, 7 - 4, 6] = 1.0  # wants the outside pixel to stay empty: nothing to gain
    assert torch.all(_loss_grad(triangle_faces(TRIANGLE), weights, backend) == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blurred_edge_occluded_face_gets_nothing(backend):
    front = triangle_faces([[[-0.9, -0.9], [0.9, -0.9], [0.0, 0.9]]], depth=2.0)
    hidden = triangle_faces([[[-0.3, -0.3], [0.3, -0.3], [0.0, 0.3]]], depth=5.0)
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(1, 8, 8, generator=g)
    grad = _loss_grad(torch.cat([front, hidden], 1), weights, backend)
    assert grad[0].abs().sum() > 0
    assert torch.all(grad[1] == 0)


def test_depth_gradient_matches_finite_differences():
    faces = torch.tensor([[[[-0.8, -0.7, 2.0], [0.9, -0.6, 3.0], [0.1, 0.8, 2.5]]]])
    frags = nr.rasterize_fragments(faces, 16, backend="torch")
    empty = (frags.face_index < 0).float()[:, None]
    inner = torch.nn.functional.max_pool2d(empty, 5, 1, 2)[:, 0] == 0
    g = torch.Generator().manual_seed(1)
    weights = torch.rand(1, 16, 16, generator=g) * inner  # interior pixels only: coverage is fixed

    def loss(f):
        return (nr.rasterize_fragments(f, 16, backend="torch").depth * weights).sum()

    x = faces.clone().requires_grad_()
    loss(x).backward()
    h = 1e-2
    numeric = torch.zeros_like(faces)
    for k in range(3):
        for d in range(3):
            e = torch.zeros_like(faces)
            e[0, 0, k, d] = h
            numeric[0, 0, k, d] = (loss(faces + e) - loss(faces - e)) / (2 * h)
    assert torch.allclose(x.grad, numeric, rtol=2e-2, atol=2e-3)


def test_texture_gradient_matches_finite_differences():
    faces = torch.tensor([[[[-0.8, -0.7, 2.0], [0.9, -0.6, 3.0], [0.1, 0.8, 2.5]]]])
    g = torch.Generator().manual_seed(2)
    tex = torch.rand(1, 1, 3, 3, 3, 3, generator=g)
    weights = torch.randn(1, 3, 8, 8, generator=g)

    def loss(t):
        return (nr.rasterize(faces, t, 8, anti_aliasing=True, backend="torch") * weights).sum()

    x = tex.clone().requires_grad_()
    loss(x).backward()
    for idx in [(0, 0, 0, 0, 0, 0), (0, 0, 1, 1, 0, 1), (0, 0, 2, 0, 1, 2), (0, 0, 1, 2, 2, 0)]:
        e = torch.zeros_like(tex)
        e[idx] = 1e-2
        numeric = (loss(tex + e) - loss(tex - e)) / 2e-2
        assert x.grad[idx].item() == pytest.approx(numeric.item(), rel=1e-2, abs=1e-3)
    assert x.grad.abs().sum() > 0


def test_degenerate_and_all_culled_meshes_render_background_with_zero_gradient():
    flat = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, 0.5, 2.0], [0.0, 0.0, 2.0]]]], requires_grad=True)
    tex = torch.rand(1, 1, 2, 2, 2, 3, requires_grad=True)
    out = nr.rasterize_rgbad(flat, tex, 8, background_color=(0.2, 0.3, 0.4), backend="torch")
    assert torch.allclose(out["rgb"][0, :, 3, 3], torch.tensor([0.2, 0.3, 0.4]))
    (out["rgb"].sum() + out["alpha"].sum() + out["depth"].sum()).backward()
    assert torch.all(flat.grad == 0) and torch.all(tex.grad == 0)
    assert torch.isfinite(flat.grad).all()
