"""The numba CPU backend (tritonnmr/backends/numba) against the PyTorch reference, op by op and end to end."""
import inspect
import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

numba = pytest.importorskip("numba")

import tritonnmr as nr  # noqa: E402
from tritonnmr import backends  # noqa: E402
from tritonnmr.backends import numba as cpu  # noqa: E402
from tritonnmr.backends import torch as ref  # noqa: E402
from conftest import random_faces  # noqa: E402

SIZES = [(21, 21), (16, 9), (9, 16), (1, 1), (1, 7), (7, 1)]  # (height, width): odd, non-square, lines


def _close(a, b, rel=1e-4):
    """allclose with an absolute tolerance relative to the largest magnitude (gradients span decades)."""
    scale = max(a.abs().max().item(), 1e-12) if a.numel() else 1.0
    return torch.allclose(a, b, rtol=rel, atol=rel * scale)


def _random_image(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.randn(shape, generator=g)


def _random_bary(face_index, seed, exact_corners=True):
    """Barycentrics that sum to 1 at covered pixels (some exactly on a vertex or an edge), 0 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    b = torch.rand(face_index.shape + (3,), generator=g)
    if exact_corners:
        b.view(-1, 3)[::5] = torch.tensor([1.0, 0.0, 0.0])
        b.view(-1, 3)[1::7] = torch.tensor([0.0, 0.5, 0.5])
    b = b / b.sum(-1, keepdim=True)
    return torch.where((face_index >= 0)[..., None], b, 0.0)


def _random_index(B, H, W, F, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, max(F, 1), (B, H, W), generator=g) if F else torch.full((B, H, W), -1)


# ----------------------------------------------------------------------------------------------
# The contract
# ----------------------------------------------------------------------------------------------
def test_every_contract_op_has_the_reference_signature():
    for op in backends.OPS:
        mine = inspect.signature(getattr(cpu, op.name)).parameters
        theirs = inspect.signature(getattr(ref, op.name)).parameters
        assert list(mine) == list(theirs), op.name


def test_numba_backend_is_this_package():
    assert backends.resolve("numba", "cpu") == "numba"
    assert backends.module("numba") is cpu


def test_import_without_numba_falls_back_to_the_reference():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import tritonnmr\nfrom tritonnmr import backends\n"
            "assert backends.resolve('auto', 'cpu') == 'torch'\n"
            "try:\n    backends.resolve('numba', 'cpu')\nexcept ValueError as e:\n    print('error:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "numba" in out.stdout


# ----------------------------------------------------------------------------------------------
# Rasterization and the geometric gradients
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("height,width", SIZES)
def test_fragments_equal_reference_bit_for_bit(height, width):
    faces = random_faces(3, 120, seed=height * 31 + width)  # overlapping, back faces, off-image, across near
    a = ref.rasterize_fragments(faces, height, width, 0.1, 100.0)
    b = cpu.rasterize_fragments(faces, height, width, 0.1, 100.0)
    if height * width > 100:
        assert (a[0] >= 0).sum() > height * width and len(a[0].unique()) > 40  # a third of 3 images
        assert (a[0] == -1).any()
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x, y)


def test_fragments_on_a_teapot_view_equal_reference():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    r = nr.Renderer(image_size=(40, 56), camera_mode="look_at", anti_aliasing=False)
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
    faces = nr.vertices_to_faces(r.transform(v[None]), nr.fill_back(f[None])[0]).contiguous()
    a = ref.rasterize_fragments(faces, 40, 56, 0.1, 100.0)
    b = cpu.rasterize_fragments(faces, 40, 56, 0.1, 100.0)
    assert (a[0] >= 0).sum() > 150
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_perspective_barycentrics_equal_the_shared_torch_version():
    from tritonnmr.backends.torch import perspective_barycentrics
    faces = random_faces(2, 80, seed=1)
    fragments = cpu.rasterize_fragments(faces, 33, 27, 0.1, 100.0)
    expected = perspective_barycentrics(faces, *fragments)
    assert (expected.sum(-1)[fragments[0] >= 0] - 1).abs().max() < 1e-5
    assert torch.equal(cpu.perspective_barycentrics(faces, *fragments), expected)


def test_ties_go_to_the_lower_face_index():
    tri = [[-0.9, -0.9, 2.0], [0.9, -0.9, 2.0], [0.0, 0.9, 2.0]]
    other = [[-0.5, -0.5, 3.0], [0.5, -0.5, 3.0], [0.0, 0.5, 3.0]]
    faces = torch.tensor([[other, tri, other, tri]])  # faces 1 and 3 identical and nearest
    a = ref.rasterize_fragments(faces, 11, 13, 0.1, 100.0)
    b = cpu.rasterize_fragments(faces, 11, 13, 0.1, 100.0)
    assert set(b[0].unique().tolist()) == {-1, 1}
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])  # 1, 3, 4 have their own walks; 2 the generic one
def test_depth_and_edge_gradients_match_reference(height, width, channels):
    faces = random_faces(2, 30, seed=7 + height + width)
    face_index, weights, depth = ref.rasterize_fragments(faces, height, width, 0.1, 100.0)
    image, grad = _random_image((2, height, width, channels), seed=height * width + channels)
    g_depth = torch.randn(2, height, width, generator=torch.Generator().manual_seed(3))
    a = ref.depth_backward(faces, face_index, weights, depth, g_depth)
    b = cpu.depth_backward(faces, face_index, weights, depth, g_depth)
    assert _close(a, b, 1e-5)
    a = ref.edge_backward(faces, face_index, image, grad, 1e-3)
    b = cpu.edge_backward(faces, face_index, image, grad, 1e-3)
    if height * width > 100:
        assert (a[..., :2] != 0).sum() > 20
    assert torch.equal(b[..., 2], torch.zeros_like(b[..., 2]))
    assert _close(a, b)


@pytest.mark.parametrize("width", [31, 32, 33, 64, 65, 100])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_edge_walks_of_several_blocks_match_reference(width, channels):
    """The walks run over whole blocks of edges.WALK_BLOCK pixels: rows as wide as a block, one more or
    one less, and several blocks, in both directions (columns are 6 pixels, rows up to 100); every
    channel count's walk (1, 3, 4 their own; 2 and 5 the generic one)."""
    from tritonnmr.backends.numba import edges
    assert edges.WALK_BLOCK == 32  # the widths above straddle it
    faces = random_faces(2, 40, seed=width + channels)
    face_index = ref.rasterize_fragments(faces, 6, width, 0.1, 100.0)[0]
    image, grad = _random_image((2, 6, width, channels), seed=width * channels)
    a = ref.edge_backward(faces, face_index, image, grad, 1e-3)
    b = cpu.edge_backward(faces, face_index, image, grad, 1e-3)
    assert (a[..., 0] != 0).sum() > 10  # moves along x: the row walks
    assert _close(a, b)


def test_a_walks_pixel_moves_exactly_as_written():
    """A one-pixel walk returns -delta / dist for each vertex with dist = k ((d1 - w_x) scale) pushed
    away from zero by eps, in float32 in the written order: the walks reassociate only their own sums,
    not the helpers they call (which numba would otherwise compile with the caller's fast-math flags)."""
    from tritonnmr.backends.numba import edges
    rng = np.random.default_rng(4)
    f32 = np.float32
    line = np.zeros((2, 64 + edges.WALK_BLOCK - 1), np.float32)
    line[0, :64], line[1, :64] = rng.random(64) < 0.5, rng.standard_normal(64)
    line[0, 0] = 1.0
    for _ in range(400):
        d1 = int(rng.integers(1, 64))
        wx = f32(d1 - rng.random() * 3)
        scale, k_a, k_b, eps = f32(2 / 61), f32(1 + rng.random() * 9), f32(1 + rng.random() * 9), f32(1e-4)
        ga, gb = edges.walk1(line, 0, d1, d1, wx, scale, k_a, k_b, eps)
        delta = (line[0, d1] - line[0, 0]) * line[1, d1]
        shift = (f32(d1) - wx) * scale
        expect = []
        for k in (k_a, k_b):
            dist = k * shift
            dist = dist + eps if dist > 0 else dist - eps
            expect.append(-delta / dist if delta > 0 else f32(0.0))
        assert (ga, gb) == tuple(expect)


def test_no_visible_face_is_one_empty_group():
    """plan_groups of no faces: one empty group (bounds [0, 0]), written inside its array."""
    from tritonnmr.backends.numba import edges
    offsets, bounds = edges.plan_groups(np.zeros((0, 6), np.int32), 7)
    assert offsets.shape == (0, 6) and bounds.tolist() == [0, 0]
    faces = torch.tensor([[[[-0.5, -0.5, 1.0], [0.0, 0.5, 1.0], [0.5, -0.5, 1.0]]]])  # drawn clockwise: culled
    face_index = ref.rasterize_fragments(faces, 4, 4, 0.1, 100.0)[0]
    assert (face_index < 0).all()
    image, grad = _random_image((1, 4, 4, 3), seed=1)
    assert torch.equal(cpu.edge_backward(faces, face_index, image, grad, 1e-3), torch.zeros(1, 1, 3, 3))


def test_edge_gradient_on_an_anti_aliased_teapot_matches_reference():
    """The benchmark's own scene at a small size: many faces, occlusion, shared edges."""
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    faces = None
    r = nr.Renderer(image_size=(24, 32), camera_mode="look_at")
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
    faces = nr.vertices_to_faces(r.transform(v[None]), nr.fill_back(f[None])[0]).contiguous()
    face_index = ref.rasterize_fragments(faces, 48, 64, 0.1, 100.0)[0]
    covered = (face_index >= 0).float()[..., None]
    image = torch.cat([covered * torch.tensor([0.2, 0.5, 0.9]), covered], -1)
    _, grad = _random_image(image.shape, seed=5)
    a = ref.edge_backward(faces, face_index, image, grad, 1e-4)
    b = cpu.edge_backward(faces, face_index, image, grad, 1e-4)
    assert (a != 0).sum() > 200
    assert _close(a, b)


def test_edge_gradient_is_the_same_when_faces_are_taken_in_groups(monkeypatch):
    """Above MAX_CROSSINGS crossings the faces are processed in groups; the result must not change."""
    from tritonnmr.backends.numba import edges
    faces = random_faces(2, 40, seed=17)
    face_index = cpu.rasterize_fragments(faces, 23, 19, 0.1, 100.0)[0]
    image, grad = _random_image((2, 23, 19, 4), seed=9)
    whole = cpu.edge_backward(faces, face_index, image, grad, 1e-3)
    monkeypatch.setattr(edges, "MAX_CROSSINGS", 7)
    assert torch.equal(cpu.edge_backward(faces, face_index, image, grad, 1e-3), whole)
    assert whole.abs().sum() > 0


def test_edge_gradient_of_a_batch_is_each_entry_alone():
    """The bookkeeping runs one batch entry per job: an entry's gradient must not depend on the others
    (faces and scanlines of different entries kept apart), bit for bit."""
    faces = random_faces(3, 60, seed=23)
    face_index = cpu.rasterize_fragments(faces, 21, 26, 0.1, 100.0)[0]
    image, grad = _random_image((3, 21, 26, 3), seed=4)
    batch = cpu.edge_backward(faces, face_index, image, grad, 1e-3)
    for b in range(3):
        alone = cpu.edge_backward(faces[b:b + 1], face_index[b:b + 1], image[b:b + 1], grad[b:b + 1], 1e-3)
        assert torch.equal(batch[b:b + 1], alone) and alone.abs().sum() > 0


def _right_edge_face(width):
    """A face whose right edge is vertical at pixel x = 1.5 from pixel y = -2 to 10 (vertex 0 at
    the bottom, vertex 1 at the top), its third vertex far left (x = -20 px, off the image, so
    no other edge crosses a row inside the image); counter-clockwise on screen."""
    def ndc(p, n):
        return (2 * p + 1 - n) / n
    pix = [(1.5, -2.0), (1.5, 10.0), (-20.0, 4.0)]
    face = torch.tensor([[[[ndc(x, width), ndc(y, 8), 2.0] for x, y in pix]]])
    assert ref.drawn(face).all()
    return face


@pytest.mark.parametrize("column,sign", [(5, -1.0), (1, 1.0)])
def test_blurred_edge_by_hand(column, sign):
    """One loss pixel on row 4, 8 x 8 silhouette. Outside the face (column 5) with dL/dI = -1: the
    edge moving right to cover it lowers the loss, delta = (0 - 1)(-1) = 1. Inside (column 1) with
    dL/dI = +1: moving left to uncover it, delta = (1 - 0)(1) = 1. The crossing is at w_x = 1.5,
    each vertex alone must move (ub - ua) / (ub - d0) (d1 - 1.5) pixels (= 12/6 and 12/6 for row 4),
    times 2 / 8 for NDC, pushed away from 0 by eps: grad_x = -delta / dist for vertices 0 and 1."""
    eps = 1e-3
    faces = _right_edge_face(8)
    face_index = cpu.rasterize_fragments(faces, 8, 8, 0.1, 100.0)[0]
    assert face_index[0, 4, :2].tolist() == [0, 0] and face_index[0, 4, 2] == -1
    image = (face_index >= 0).float()[..., None]
    grad = torch.zeros_like(image)
    grad[0, 4, column, 0] = sign
    dist = 2.0 * (column - 1.5) * 2 / 8
    dist = dist + eps if dist > 0 else dist - eps
    expected = torch.tensor([-1.0 / dist, -1.0 / dist, 0.0])
    for backend in (ref, cpu):
        g = backend.edge_backward(faces, face_index, image, grad, eps)
        assert torch.allclose(g[0, 0, :, 0], expected, rtol=1e-6), backend.__name__
        assert torch.sign(g[0, 0, 0, 0]) == sign
        assert torch.equal(g[0, 0, :, 2], torch.zeros(3))


def test_blurred_edge_ignores_moves_that_raise_the_loss_and_occluded_pixels():
    faces = _right_edge_face(8)
    face_index = cpu.rasterize_fragments(faces, 8, 8, 0.1, 100.0)[0]
    image = (face_index >= 0).float()[..., None]
    grad = torch.zeros_like(image)
    grad[0, 4, 5, 0] = 1.0  # covering pixel 5 would raise the loss: delta = -1
    assert torch.equal(cpu.edge_backward(faces, face_index, image, grad, 1e-3), torch.zeros(1, 1, 3, 3))
    # a nearer face covering row 4 entirely hides the edge there: the hidden face gets nothing
    front = torch.tensor([[[[-2.0, -0.3, 1.0], [2.0, -0.3, 1.0], [0.0, 2.0, 1.0]]]])
    both = torch.cat([faces, front], 1)
    face_index = cpu.rasterize_fragments(both, 8, 8, 0.1, 100.0)[0]
    assert (face_index[0, 4] == 1).all()
    image = (face_index >= 0).float()[..., None]
    grad = torch.zeros_like(image)
    grad[0, 4, 5, 0] = -1.0
    for backend in (ref, cpu):
        g = backend.edge_backward(both, face_index, image, grad, 1e-3)
        assert torch.equal(g[0, 0], torch.zeros(3, 3)), backend.__name__


# ----------------------------------------------------------------------------------------------
# Shading ops
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("channels", [1, 3])
def test_sample_cubes_and_gradient_match_reference(size, channels):
    B, F, H, W = 2, 7, 9, 6
    face_index = _random_index(B, H, W, F, seed=size)
    bary = _random_bary(face_index, seed=channels)
    g = torch.Generator().manual_seed(size * 10 + channels)
    textures = torch.rand(B, F, size, size, size, channels, generator=g)
    grad = torch.randn(B, H, W, channels, generator=g)
    a = ref.sample_cubes(face_index, bary, textures, 1e-3)
    b = cpu.sample_cubes(face_index, bary, textures, 1e-3)
    assert torch.allclose(a, b, atol=1e-6) and (a != 0).any()
    a = ref.sample_cubes_backward(face_index, bary, grad, textures, 1e-3)
    b = cpu.sample_cubes_backward(face_index, bary, grad, textures, 1e-3)
    assert b.shape == textures.shape and _close(a, b, 1e-5)


@pytest.mark.parametrize("channels", [1, 5])
def test_interpolate_and_gradient_match_reference(channels):
    B, F, H, W = 2, 5, 7, 10
    face_index = _random_index(B, H, W, F, seed=channels)
    bary = _random_bary(face_index, seed=1)
    g = torch.Generator().manual_seed(channels)
    attributes = torch.randn(B, F, 3, channels, generator=g)
    grad = torch.randn(B, H, W, channels, generator=g)
    assert torch.allclose(ref.interpolate(face_index, bary, attributes),
                          cpu.interpolate(face_index, bary, attributes), atol=1e-6)
    assert _close(ref.interpolate_backward(face_index, bary, grad, attributes),
                  cpu.interpolate_backward(face_index, bary, grad, attributes), 1e-5)


def _wrap(i, size, wrap):
    if wrap == 0:
        return i % size
    if wrap == 1:
        p = i % (2 * size)
        return p if p < size else 2 * size - 1 - p
    return min(max(i, 0), size - 1)


def _uv_by_hand(face_index, bary, uvs, material, texels, table, wrap):
    """sample_uv from the contract's words, one pixel at a time, differentiable in texels and uvs."""
    B, H, W = face_index.shape
    out = []
    for b, r, c in itertools.product(range(B), range(H), range(W)):
        f = int(face_index[b, r, c])
        if f < 0:
            out.append(torch.zeros(texels.shape[1]))
            continue
        u, v = (bary[b, r, c, :, None] * uvs[b, f]).sum(0)
        offset, h, w = table[material[b, f]].tolist()
        x, y = u * w - 0.5, (1.0 - v) * h - 0.5  # texel centres at integers, row 0 at v = 1
        x0, y0 = math.floor(x.item()), math.floor(y.item())
        fx, fy = x - x0, y - y0

        def tap(i, j):
            return texels[offset + _wrap(i, h, wrap) * w + _wrap(j, w, wrap)]
        out.append((1 - fx) * (1 - fy) * tap(y0, x0) + fx * (1 - fy) * tap(y0, x0 + 1)
                   + (1 - fx) * fy * tap(y0 + 1, x0) + fx * fy * tap(y0 + 1, x0 + 1))
    return torch.stack(out).view(B, H, W, -1)


@pytest.mark.parametrize("wrap", [0, 1, 2])
def test_sample_uv_and_gradients_match_the_formulas_and_reference(wrap):
    """Forward against the contract's formulas; backward against autograd through them (the uv
    derivative inside the texel cell, since floor has none); both against the reference."""
    B, F, H, W = 2, 6, 8, 5
    face_index = _random_index(B, H, W, F, seed=wrap)
    bary = _random_bary(face_index, seed=wrap + 1)
    g = torch.Generator().manual_seed(wrap)
    uvs = torch.rand(B, F, 3, 2, generator=g) * 3 - 1  # outside [0, 1]: every wrap mode matters
    material = torch.randint(0, 2, (B, F), generator=g)
    table = torch.tensor([[0, 3, 4], [12, 5, 2]])  # (offset, h, w): 3 x 4 and 5 x 2 texels
    texels = torch.rand(22, 3, generator=g)
    grad = torch.randn(B, H, W, 3, generator=g)
    t, u = texels.clone().requires_grad_(), uvs.clone().requires_grad_()
    expected = _uv_by_hand(face_index, bary, u, material, t, table, wrap)
    (expected * grad).sum().backward()
    out = cpu.sample_uv(face_index, bary, uvs, texels, material, table, wrap)
    assert torch.allclose(out, expected.detach(), atol=1e-5) and (out != 0).any()
    grad_uvs, grad_texels = cpu.sample_uv_backward(face_index, bary, grad, uvs, texels, material, table, wrap)
    assert grad_texels.shape == texels.shape and grad_uvs.shape == uvs.shape
    assert _close(grad_texels, t.grad, 1e-5) and _close(grad_uvs, u.grad, 1e-4)
    # and the reference
    assert torch.allclose(out, ref.sample_uv(face_index, bary, uvs, texels, material, table, wrap), atol=1e-6)
    ref_uvs, ref_texels = ref.sample_uv_backward(face_index, bary, grad, uvs, texels, material, table, wrap)
    assert _close(ref_texels, grad_texels, 1e-5) and _close(ref_uvs, grad_uvs, 1e-5)


# ----------------------------------------------------------------------------------------------
# End to end through the public functions
# ----------------------------------------------------------------------------------------------
def _render_and_grads(backend, faces, textures, size, anti_aliasing, seed):
    g = torch.Generator().manual_seed(seed)
    B = faces.shape[0]
    H, W = (size, size) if isinstance(size, int) else size
    w_rgb, w_alpha = torch.randn(B, textures.shape[-1], H, W, generator=g), torch.randn(B, H, W, generator=g)
    w_depth = torch.randn(B, H, W, generator=g) * 0.1
    f = faces.clone().requires_grad_()
    t = textures.clone().requires_grad_()
    out = nr.rasterize_rgbad(f, t, size, anti_aliasing, eps=1e-3, background_color=(0.1,) * textures.shape[-1],
                             backend=backend)
    loss = (out["rgb"] * w_rgb).sum() + (out["alpha"] * w_alpha).sum() + (out["depth"] * w_depth).sum()
    loss.backward()
    return out["rgb"], out["alpha"], out["depth"], f.grad, t.grad


@pytest.mark.parametrize("size,anti_aliasing", [(16, False), ((10, 13), True)])
@pytest.mark.parametrize("kind", ["cubes", "vertex colours"])
def test_rendering_and_gradients_match_reference(size, anti_aliasing, kind):
    faces = random_faces(2, 16, seed=11)
    g = torch.Generator().manual_seed(12)
    textures = (torch.rand(2, 16, 3, 3, 3, 3, generator=g) if kind == "cubes"
                else torch.rand(2, 16, 3, 4, generator=g))
    a = _render_and_grads("torch", faces, textures, size, anti_aliasing, seed=13)
    b = _render_and_grads("numba", faces, textures, size, anti_aliasing, seed=13)
    assert a[1].sum() > 10 and a[3].abs().sum() > 0 and a[4].abs().sum() > 0
    for x, y in zip(a[:3], b[:3]):
        assert torch.allclose(x, y, atol=1e-5)
    assert _close(a[3], b[3]) and _close(a[4], b[4], 1e-5)


def test_renderer_teapot_silhouette_gradient_matches_reference():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    target = torch.zeros(1, 24, 24)
    target[:, 6:18, 4:20] = 1
    grads = []
    for backend in ("torch", "numba"):
        r = nr.Renderer(image_size=24, camera_mode="look_at", backend=backend)
        r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
        vv = v[None].clone().requires_grad_()
        ((r(vv, f[None], mode="silhouettes") - target) ** 2).sum().backward()
        grads.append(vv.grad)
    assert grads[0].abs().sum() > 0
    assert _close(grads[0], grads[1])


# ----------------------------------------------------------------------------------------------
# Degenerate input
# ----------------------------------------------------------------------------------------------
def _degenerate_faces():
    """Batch of 1: a good face, a zero-area face, a face with a vertex at z = 0, a NaN face, an inf
    face, a face crossing the near plane, a back face, a face entirely off the image, a huge face."""
    good = [[-0.8, -0.8, 2.0], [0.8, -0.7, 2.5], [0.1, 0.8, 1.5]]
    rows = [
        good,
        [[-0.5, -0.5, 1.0], [0.0, 0.0, 1.0], [0.5, 0.5, 1.0]],          # collinear: no area
        [[-0.6, -0.2, 0.0], [0.6, -0.3, 1.0], [0.0, 0.6, 1.0]],          # a vertex at z = 0
        [[float("nan"), 0.0, 1.0], [0.5, 0.0, 1.0], [0.0, 0.5, 1.0]],    # NaN
        [[-0.5, -0.5, 1.0], [float("inf"), 0.0, 1.0], [0.0, 0.5, 1.0]],  # inf
        [[-0.7, -0.1, 0.02], [0.7, -0.1, 3.0], [0.0, 0.7, 3.0]],         # crosses near = 0.1
        [[-0.8, -0.8, 1.0], [0.1, 0.8, 1.0], [0.8, -0.7, 1.0]],          # back face
        [[3.0, 3.0, 1.0], [4.0, 3.0, 1.0], [3.5, 4.0, 1.0]],             # off the image
        [[-1e6, -1e6, 5.0], [1e6, -1e6, 5.0], [0.0, 1e6, 5.0]],          # huge, behind the rest
    ]
    return torch.tensor([rows])


@pytest.mark.parametrize("height,width", [(12, 10), (1, 9), (9, 1)])
def test_degenerate_faces_are_finite_and_equal_reference(height, width):
    faces = _degenerate_faces()
    a = ref.rasterize_fragments(faces, height, width, 0.1, 100.0)
    b = cpu.rasterize_fragments(faces, height, width, 0.1, 100.0)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    face_index, weights, depth = b
    assert not set(face_index.unique().tolist()) & {1, 2, 3, 4, 6, 7}
    image, grad = _random_image((1, height, width, 2), seed=1)
    g_depth = torch.randn(1, height, width)
    for op, args in (("depth_backward", (faces, face_index, weights, depth, g_depth)),
                     ("edge_backward", (faces, face_index, image, grad, 1e-3))):
        ga, gb = getattr(ref, op)(*args), getattr(cpu, op)(*args)
        assert torch.isfinite(gb).all(), op
        assert torch.equal(gb[0, [1, 2, 3, 4, 6, 7]], torch.zeros(6, 3, 3)), op
        assert _close(ga, gb), op


@pytest.mark.parametrize("B,F,H,W", [(0, 5, 4, 4), (2, 0, 4, 4), (2, 5, 1, 1), (0, 0, 1, 3), (2, 5, 1, 6)])
def test_empty_and_tiny_shapes_equal_reference(B, F, H, W):
    """B = 0, F = 0, a single pixel or row, T = 1, C = 1: right shapes, finite, equal to the reference."""
    f = random_faces(2, 5, seed=0)[:B, :F].contiguous()
    fragments = cpu.rasterize_fragments(f, H, W, 0.1, 100.0)
    for x, y in zip(fragments, ref.rasterize_fragments(f, H, W, 0.1, 100.0)):
        assert x.shape == y.shape and torch.equal(x, y)
    face_index, weights, depth = fragments
    assert face_index.shape == (B, H, W) and weights.shape == (B, H, W, 3) and depth.shape == (B, H, W)
    image, grad = _random_image((B, H, W, 1), seed=1)
    bary = _random_bary(face_index, seed=2)
    textures = torch.rand(B, F, 1, 1, 1, 2)  # T = 1
    attributes = torch.rand(B, F, 3, 1)
    grad2 = torch.cat([grad, grad], -1)
    calls = [("perspective_barycentrics", (f, face_index, weights, depth)),
             ("depth_backward", (f, face_index, weights, depth, grad[..., 0].contiguous())),
             ("edge_backward", (f, face_index, image, grad, 1e-3)),
             ("sample_cubes", (face_index, bary, textures, 1e-3)),
             ("sample_cubes_backward", (face_index, bary, grad2, textures, 1e-3)),
             ("interpolate", (face_index, bary, attributes)),
             ("interpolate_backward", (face_index, bary, grad, attributes))]
    for name, args in calls:
        mine, theirs = getattr(cpu, name)(*args), getattr(ref, name)(*args)
        assert mine.shape == theirs.shape and torch.isfinite(mine).all(), name
        assert _close(theirs, mine, 1e-5), name


def test_no_channels():
    faces = random_faces(2, 5, seed=0)
    empty = torch.zeros(2, 3, 3, 0)
    assert torch.equal(cpu.edge_backward(faces, torch.full((2, 3, 3), -1), empty, empty, 1e-3),
                       torch.zeros(2, 5, 3, 3))


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------
def test_results_are_bit_identical_across_runs_and_thread_counts():
    """Every op on 3 x 400 random triangles, and the Renderer's images and gradients on a perturbed teapot
    at 128^2 for every estimator, at NUMBA_NUM_THREADS 1, 2 and 4 (torch's threads the same), two runs
    each: the same bytes. (Before: numba's threading layer, started to read the thread count, set
    torch's OpenMP threads to NUMBA_NUM_THREADS, and the vertex gather's backward then added with
    atomics: 12 different teapot gradients in 15 runs at 2 threads.)"""
    child = os.path.join(os.path.dirname(__file__), "numba_threads.py")
    reports = []
    for threads in (1, 2, 4):  # 4 oversubscribes a 2-core machine: fine, the order must not matter
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        done = subprocess.run([sys.executable, child], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        reports.append(json.loads(done.stdout))
        assert reports[-1].pop("threads") == [threads, threads]
    assert len(reports[0]) == 28
    for name, digests in reports[0].items():
        assert len({d for report in reports for d in report[name]}) == 1, name


@pytest.mark.parametrize("jobs", [1, 2, 3, 7, 8, 31, 64, 512, 1000])
@pytest.mark.parametrize("count", [2, 3, 4])
def test_guided_pieces_cover_the_jobs_once_and_shrink(jobs, count):
    from tritonnmr.backends.numba import _jit
    pieces = _jit.piece_bounds(jobs, count)
    bounds = [lo for lo, _ in pieces] + [pieces[-1][1]]
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # contiguous
    sizes = [hi - lo for lo, hi in pieces]
    smallest = max(1, jobs // (count * _jit.SMALLEST_PIECE_SHARE))
    assert bounds[0] == 0 and bounds[-1] == jobs and min(sizes) >= 1
    assert sizes[0] == max(smallest, -(-jobs // (_jit.PIECE_DIVISOR * count)))
    assert all(a >= b for a, b in zip(sizes[:-2], sizes[1:-1]))  # only the last may be cut short
    assert min(sizes[:-1], default=smallest) >= smallest
    # the threads' last claims are small: what one may be left waiting for at the end
    assert max(sizes[-count:]) <= max(smallest, -(-jobs // (4 * count)))


@pytest.mark.parametrize("uneven, cost", [(False, None), (True, None), (True, "given")])
def test_run_jobs_runs_every_job_once_on_two_threads(monkeypatch, uneven, cost):
    """run_jobs on 2 threads (a Python kernel that records its pieces): every job exactly once; with a
    cost, the costliest jobs are claimed first."""
    from tritonnmr.backends.numba import _jit
    monkeypatch.setattr(_jit, "threads", lambda: 2)
    rng = np.random.default_rng(3)
    jobs = 50
    costs = rng.permutation(jobs) if cost else None
    ran = []

    def kernel(lo, hi, tag):
        assert tag == "t"
        ran.append((lo, hi))  # list.append is atomic under the GIL
    _jit.run_jobs(kernel, jobs, "t", uneven=uneven, cost=costs)
    assert sorted(j for lo, hi in ran for j in range(lo, hi)) == list(range(jobs))
    if cost:  # the two threads may swap neighbouring claims, no more
        claimed = [lo for lo, _ in ran]
        assert set(claimed[:2]) <= {int(np.argsort(-costs)[k]) for k in range(3)}
        assert set(claimed[-2:]) <= {int(np.argsort(-costs)[k]) for k in range(jobs - 3, jobs)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_renders_after_its_parent():
    """multiprocessing / DataLoader workers fork after the parent rendered (numba's GNU OpenMP layer
    would kill such a child); the child's result equals the parent's."""
    faces = random_faces(1, 30, seed=5)
    image, grad = _random_image((1, 40, 40, 1), seed=6)
    parent = cpu.rasterize_fragments(faces, 40, 40, 0.1, 100.0)[0]
    parent_grad = cpu.edge_backward(faces, parent, image, grad, 1e-3)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, compare, report through the exit status
        ok = False
        try:
            child = cpu.rasterize_fragments(faces, 40, 40, 0.1, 100.0)[0]
            ok = torch.equal(child, parent) and torch.equal(cpu.edge_backward(faces, child, image, grad, 1e-3),
                                                            parent_grad)
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0


def test_threads_may_render_at_once():
    from concurrent.futures import ThreadPoolExecutor
    faces = random_faces(2, 40, seed=8)
    image, grad = _random_image((2, 31, 37, 4), seed=9)

    def work(_):
        face_index = cpu.rasterize_fragments(faces, 31, 37, 0.1, 100.0)[0]
        return face_index, cpu.edge_backward(faces, face_index, image, grad, 1e-3)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(8)))
    for face_index, g in results[1:]:
        assert torch.equal(face_index, results[0][0]) and torch.equal(g, results[0][1])


# ----------------------------------------------------------------------------------------------
# The fused glue (compose, finish) against the torch operations it replaces
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("anti_aliasing", [True, False])
def test_fused_finish_equals_the_torch_path_bit_for_bit(anti_aliasing):
    from tritonnmr import render
    g = torch.Generator().manual_seed(31)
    image = torch.rand(2, 10, 14, 4, generator=g)
    depth = torch.rand(2, 10, 14, 1, generator=g)
    grads = [torch.randn(2, 3, 5 if anti_aliasing else 10, 7 if anti_aliasing else 14, generator=g),
             torch.randn(2, 5 if anti_aliasing else 10, 7 if anti_aliasing else 14, generator=g)]
    results = []
    for backend in ("torch", "numba"):
        x, d = image.clone().requires_grad_(), depth.clone().requires_grad_()
        out = render.finish_images({("rgb", "alpha"): x, "depth": d}, anti_aliasing, backend)
        assert out["rgb"].shape == grads[0].shape and out["alpha"].shape == out["depth"].shape == grads[1].shape
        ((out["rgb"] * grads[0]).sum() + (out["alpha"] * grads[1]).sum()).backward()  # depth: no gradient
        results.append((out["rgb"], out["alpha"], out["depth"], x.grad))
        assert d.grad is None
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("light_channels", [0, 1, 3])
def test_fused_compose_equals_the_torch_path_bit_for_bit(light_channels):
    """gradients.hard_image's numba pass (colours x light, background, alpha) against its torch
    operations: the image, the colours' and the light's gradients (grey light: one channel)."""
    from tritonnmr import gradients
    faces = random_faces(2, 30, seed=32)
    face_index = cpu.rasterize_fragments(faces, 12, 16, 0.1, 100.0)[0]
    g = torch.Generator().manual_seed(33)
    colours = torch.rand(2, 12, 16, 3, generator=g).requires_grad_()
    light = torch.rand(2, 30, light_channels or 1, generator=g).requires_grad_()
    background = torch.tensor([0.1, 0.2, 0.3])
    grad = torch.randn(2, 12, 16, 4, generator=g)
    table = light if light_channels else light.new_zeros(2, 0, 1)
    fused = gradients._Compose.apply(colours, table, face_index, background, True, cpu)
    (fused * grad).sum().backward()
    mine = (fused, colours.grad, light.grad)
    colours.grad, light.grad = None, None
    covered = (face_index >= 0)[..., None]
    lit = colours
    if light_channels:
        flat = torch.arange(2)[:, None, None] * 30 + face_index.clamp(min=0)
        lit = colours * nr.mesh.rows(light.reshape(60, -1), flat)
    torch_path = torch.cat([torch.where(covered, lit, background), covered.float()], -1)
    (torch_path * grad).sum().backward()
    assert torch.equal(mine[0], torch_path) and torch.equal(mine[1], colours.grad)
    if light_channels:
        assert torch.equal(mine[2], light.grad)
    assert mine[0][..., 3].sum() > 20 and mine[1].abs().sum() > 0


@pytest.mark.parametrize("per_mesh", [False, True])
def test_fused_light_matches_the_torch_path_and_finite_differences(per_mesh):
    """lights.face_light's numba pass against its torch operations (light and the faces' gradient, to
    within float32 rounding: torch's norm rounds its own way), on faces lit from the front, from behind
    (cos < 0: no directional light, no gradient through it) and of zero area (normal 0: only the eps);
    and its gradient against central differences in float64 of the same formula."""
    from tritonnmr import lights
    g = torch.Generator().manual_seed(35)
    faces = torch.randn(3, 40, 3, 3, generator=g)
    faces[0, :4] = faces[0, :4, :1]  # zero area: every vertex the same
    faces[1, :4, 2] = faces[1, :4, 1]  # v2 = v1: zero area
    kw = dict(intensity_ambient=0.4, intensity_directional=0.7)
    if per_mesh:
        kw.update(direction=torch.randn(3, 3, generator=g), color_directional=torch.rand(3, 3, generator=g),
                  color_ambient=torch.rand(3, generator=g))
    grad = torch.randn(3, 40, 3, generator=g)
    results = []
    for backend in ("torch", "numba"):
        x = faces.clone().requires_grad_()
        light = lights.face_light(x, backend=backend, **kw)
        (light * grad).sum().backward()
        results.append((light, x.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-5)
    assert results[1][1][0, :4].abs().sum() == 0 and results[1][1][0, 4:].abs().sum() > 0

    def light64(f):  # the same formula in float64: the central differences' target
        d = torch.as_tensor(kw.get("direction", torch.tensor(nr.defaults.LIGHT_DIRECTION)), dtype=torch.float64)
        d = d.reshape(-1, 1, 3)
        n = torch.cross(f[:, :, 0] - f[:, :, 1], f[:, :, 2] - f[:, :, 1], dim=-1)
        u = n / n.norm(dim=-1, keepdim=True).clamp_min(lights.NORMAL_EPS)
        return (u * d).sum(-1).clamp_min(0)
    colour = torch.as_tensor(kw.get("color_directional", torch.tensor(nr.defaults.LIGHT_COLOR))).reshape(-1, 1, 3)
    weight = (grad * colour * kw["intensity_directional"]).sum(-1).double()  # d loss / d cos
    f64, h = faces.double(), 1e-6
    for b, f, k, c in [(0, 10, 0, 0), (1, 20, 1, 2), (2, 39, 2, 1), (2, 5, 1, 0)]:
        up, down = f64.clone(), f64.clone()
        up[b, f, k, c] += h
        down[b, f, k, c] -= h
        numeric = ((light64(up) - light64(down)) * weight).sum() / (2 * h)
        assert abs(results[1][1][b, f, k, c].item() - numeric.item()) <= 1e-3 * max(1.0, abs(numeric.item()))


def test_a_face_at_the_lights_kink_gets_the_same_gradient_on_both_paths():
    """A face in a vertical plane (found by the renderer fuzz): its normal's y cancels exactly, so n . d
    = 0 for the default light from above, the relu's kink. torch.cross (an FMA on AVX2 builds) made it
    the products' rounding error, 2.4e-7, and the torch path took the lit side's gradient (0.26 for
    vertex 0's x) where the numba pass gave 0; both now compute the cross product the same way."""
    from tritonnmr import lights
    v = torch.tensor([[-2.5, -2.5, -1.0], [1.0776, -2.5, 0.5], [-2.5, 2.0, -1.0]])
    assert lights.cross((v[0] - v[1])[None], (v[2] - v[1])[None])[0, 1] == 0
    grads = []
    for backend in ("torch", "numba"):
        faces = v[None, None].clone().requires_grad_()
        light = lights.face_light(faces, 0.5, 0.5, backend=backend)
        assert torch.equal(light, torch.full((1, 1, 3), 0.5))
        (light * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append(faces.grad)
    assert torch.equal(grads[0].abs(), grads[1].abs()) and grads[0].abs().sum() == 0


def test_fused_gather_equals_the_torch_path_bit_for_bit():
    """mesh.gather's numba pass: values, zeros for padding rows, and the vertices' summed gradient."""
    from unittest import mock
    from tritonnmr import mesh
    g = torch.Generator().manual_seed(34)
    values = torch.rand(2, 50, 3, generator=g).requires_grad_()
    faces = torch.randint(0, 50, (2, 80, 3), generator=g)
    faces[1, 70:] = -1
    grad = torch.randn(2, 80, 3, 3, generator=g)
    results = []
    for fused in (True, False):
        with mock.patch.object(mesh, "_fused_gather", mesh._fused_gather if fused else (lambda *a: None)):
            out = mesh.gather(values, faces)
        (out * grad).sum().backward()
        results.append((out, values.grad))
        values.grad = None
    assert torch.equal(results[0][0][1, 70:], torch.zeros(10, 3, 3))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_cube_fill_back_equals_the_torch_path_bit_for_bit(dtype):
    """TextureCubeShader.fill_back's numba pass (cube, then its mirror with axes 2 and 4 swapped) and
    its gradient (copy's plus mirror's) against torch's cat of the permuted cubes; a non-contiguous
    input and a Renderer that passes its backend through."""
    from tritonnmr.shading import TextureCubeShader
    g = torch.Generator().manual_seed(41)
    cubes = torch.rand(2, 9, 3, 3, 3, 5, generator=g, dtype=dtype).transpose(0, 1).contiguous().transpose(0, 1)
    cubes.requires_grad_()
    grad = torch.randn(2, 18, 3, 3, 3, 5, generator=g, dtype=dtype)
    results = []
    for backend in ("numba", "torch"):
        out = TextureCubeShader().fill_back(cubes, backend=backend)
        (out * grad).sum().backward()
        results.append((out, cubes.grad))
        cubes.grad = None
    (fused, fused_grad), (plain, plain_grad) = results
    assert fused.dtype == dtype and torch.equal(fused, plain) and torch.equal(fused_grad, plain_grad)
    assert torch.equal(fused[:, 9 + 4, 0, 1, 2], cubes[:, 4, 2, 1, 0])  # the mirror of cell (2, 1, 0)
    # the Renderer passes its backend to a fill_back that takes one (the one it calls: an instance's own
    # function included), and calls one without it as before
    r = nr.Renderer(image_size=8, camera_mode="look_at", backend="numba")
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    textures = torch.rand(1, f.shape[0], 2, 2, 2, 3)
    called = []
    for own in (lambda attributes, backend="auto": called.append(backend) or original(attributes, backend),
                lambda attributes: called.append("none") or original(attributes)):
        shader = TextureCubeShader()
        original = shader.fill_back
        shader.fill_back = own
        r.render(v[None], f[None], textures, shader=shader)

    class Plain(TextureCubeShader):
        def fill_back(self, attributes):
            called.append("plain")
            return super().fill_back(attributes)
    r.render(v[None], f[None], textures, shader=Plain())
    assert called == ["numba", "none", "plain"]
    with pytest.raises(RuntimeError):  # no silent zero second derivative
        twice = cubes.detach().requires_grad_()
        first, = torch.autograd.grad(TextureCubeShader().fill_back(twice, "numba").pow(2).sum(), twice, create_graph=True)
        first.sum().backward()
