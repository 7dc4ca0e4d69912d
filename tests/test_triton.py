"""The Triton backend against the PyTorch reference (on CPU through Triton's interpreter).

No kernel may divide by zero, even in a masked-off lane: the interpreter computes those lanes with
numpy, so here any such warning is an error.
"""
import pytest
import torch

import tritonnmr as nr
from conftest import random_faces
from tritonnmr import backends

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
pytestmark = [pytest.mark.filterwarnings(f"error:{m} encountered:RuntimeWarning")
              for m in ("divide by zero", "invalid value", "overflow")]


@pytest.fixture(params=[d for d, ok in (("cpu", backends.interpreter_enabled()), ("cuda", torch.cuda.is_available()))
                        if ok])
def device(request):
    """Where the Triton backend runs: CPU tensors in the interpreter, CUDA tensors compiled."""
    return torch.device(request.param)


def _render_both(faces, textures, size, seed, anti_aliasing=False):
    """rgb, alpha, depth and the gradients of a random loss, for each backend."""
    g = torch.Generator().manual_seed(seed)
    B = faces.shape[0]
    w_rgb = torch.randn(B, 3, size, size, generator=g).to(faces.device)
    w_alpha = torch.randn(B, size, size, generator=g).to(faces.device)
    w_depth = torch.randn(B, size, size, generator=g).to(faces.device) * 0.1
    results = {}
    for backend in ("torch", "triton"):
        f = faces.clone().requires_grad_()
        t = textures.clone().requires_grad_()
        out = nr.rasterize_rgbad(f, t, size, anti_aliasing, eps=1e-3, background_color=(0.1, 0.2, 0.3),
                                 backend=backend)
        loss = (out["rgb"] * w_rgb).sum() + (out["alpha"] * w_alpha).sum() + (out["depth"] * w_depth).sum()
        loss.backward()
        results[backend] = (out["rgb"].detach(), out["alpha"].detach(), out["depth"].detach(), f.grad, t.grad)
    return results["torch"], results["triton"]


def test_fragments_equal_reference_on_random_meshes(device):
    faces = random_faces(3, 60, seed=0, device=device)
    ref = nr.rasterize_fragments(faces, 21, backend="torch")  # odd, non-power-of-two size
    tri = nr.rasterize_fragments(faces, 21, backend="triton")
    assert (ref.face_index >= 0).sum() > 300
    assert torch.equal(ref.face_index, tri.face_index)
    assert torch.allclose(ref.weights, tri.weights, atol=1e-6)
    assert torch.allclose(ref.depth, tri.depth, atol=1e-6)


def test_forward_and_gradients_match_reference(device):
    faces = random_faces(2, 14, seed=1, device=device)
    g = torch.Generator().manual_seed(3)
    textures = torch.rand(2, 14, 3, 3, 3, 3, generator=g).to(device)
    ref, tri = _render_both(faces, textures, 16, seed=4)
    for a, b in zip(ref[:3], tri[:3]):
        assert torch.allclose(a, b, atol=1e-5)
    assert ref[1].sum() > 20  # something was drawn
    assert ref[3].abs().sum() > 0 and ref[4].abs().sum() > 0
    scale = ref[3].abs().max()
    assert torch.allclose(ref[3], tri[3], atol=1e-4 * scale, rtol=1e-4)
    assert torch.allclose(ref[4], tri[4], atol=1e-5)


def test_anti_aliased_silhouette_gradients_match_reference(device):
    faces = random_faces(1, 10, seed=5, device=device)
    g = torch.Generator().manual_seed(6)
    target = (torch.rand(1, 8, 8, generator=g) > 0.5).float().to(device)
    grads = []
    for backend in ("torch", "triton"):
        f = faces.clone().requires_grad_()
        ((nr.rasterize_silhouettes(f, 8, backend=backend) - target) ** 2).sum().backward()
        grads.append(f.grad)
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-4 * grads[0].abs().max())


def test_backward_is_bit_identical_across_runs(device):
    # On the CPU the interpreter runs programs one after another, so this cannot fail there; it
    # means something only on a GPU. The texture/vertex-colour backward still uses float atomics
    # (not deterministic on a GPU), so it is left out: real determinism for every gradient comes
    # with the atomic-free backward (partial sums per tile added in a fixed order), next.
    faces = random_faces(1, 10, seed=7, device=device)
    g = torch.Generator().manual_seed(8)
    weights = torch.randn(1, 12, 12, generator=g).to(device)
    grads = []
    for _ in range(2):
        f = faces.clone().requires_grad_()
        out = nr.rasterize_rgbad(f, None, 12, False, return_rgb=False, backend="triton")
        ((out["alpha"] + out["depth"]) * weights).sum().backward()
        grads.append(f.grad)
    assert grads[0].abs().sum() > 0
    assert torch.equal(grads[0], grads[1])


def test_vertex_colour_shader_matches_pytorch(device):
    faces = random_faces(2, 12, seed=9, device=device)
    g = torch.Generator().manual_seed(10)
    colours = torch.rand(2, 12, 3, 5, generator=g).to(device)  # five channels: not just rgb
    grad_out = torch.randn(2, 16, 16, 5, generator=g).to(device)
    shader = nr.VertexColorShader(channels=5)
    frags = nr.rasterize_fragments(faces, 16, backend="torch")
    # plain PyTorch: z * sum_k w_k c_k / z_k at every covered pixel
    hit = frags.face_index >= 0
    b = torch.nonzero(hit, as_tuple=True)[0]
    fi = frags.face_index[hit]
    zk = faces[b, fi, :, 2]
    pw = frags.weights[hit] * frags.depth[hit][:, None] / zk
    expected = torch.zeros(2, 16, 16, 5, device=device)
    expected[hit] = (colours[b, fi] * pw[..., None]).sum(1)
    for backend in ("torch", "triton"):
        c = colours.clone().requires_grad_()
        out = shader.shade(frags, c, backend)
        assert torch.allclose(out, expected, atol=1e-6)
        (out * grad_out).sum().backward()
        c2 = colours.clone().requires_grad_()
        (expected_fn(c2, b, fi, pw, hit) * grad_out).sum().backward()
        assert torch.allclose(c.grad, c2.grad, atol=1e-5)


def expected_fn(colours, b, fi, pw, hit):
    out = torch.zeros(hit.shape + (colours.shape[-1],), device=colours.device)
    out[hit] = (colours[b, fi] * pw[..., None]).sum(1)
    return out


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    from tritonnmr import backends
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        backends.resolve("triton", "cpu")


@cuda
def test_teapot_at_256_matches_reference_on_gpu():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    v, f = v[None].cuda(), f[None].cuda()
    tex = torch.rand(1, f.shape[1], 4, 4, 4, 3, device="cuda")
    outs = []
    for backend in ("torch", "triton"):
        r = nr.Renderer(camera_mode="look_at", backend=backend)
        vv = v.clone().requires_grad_()
        rgb, depth, alpha = r(vv, f, tex)
        (rgb.mean() + alpha.mean()).backward()
        outs.append((rgb, alpha, vv.grad))
    assert torch.allclose(outs[0][1], outs[1][1], atol=1e-3)
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-3)
    assert torch.allclose(outs[0][2], outs[1][2], rtol=1e-2, atol=1e-2 * outs[0][2].abs().max())


# ----------------------------------------------------------------------------------------------
# Degenerate input: finite, equal to the reference, and exactly zero gradient to undrawn faces
# ----------------------------------------------------------------------------------------------
def _assert_same(ref, tri):
    """rgb, alpha, depth, face and texture gradients: finite in both backends and equal."""
    for name, a, b in zip(("rgb", "alpha", "depth", "face grad", "texture grad"), ref, tri):
        assert a.shape == b.shape, name
        assert torch.isfinite(a).all() and torch.isfinite(b).all(), name
        assert torch.allclose(a, b, atol=1e-4 * max(1.0, a.abs().max().item() if a.numel() else 0.0)), name


def _padded(device):
    """Random faces followed by faces of zero area: all zeros (padding), three equal vertices, and
    three distinct collinear vertices."""
    faces = random_faces(2, 8, seed=15, device=device, spread=0.6)
    flat = torch.tensor([[[0.0, 0, 0]] * 3, [[0.2, 0.1, 2.0]] * 3,
                         [[-0.5, -0.5, 2.0], [0.0, 0.0, 2.5], [0.5, 0.5, 3.0]]], device=device)
    return torch.cat([faces, flat.expand(2, 3, 3, 3)], 1), slice(8, 11)


def _z_zero(device):
    """Faces with a vertex at depth 0, two of them front-facing and covering the image centre."""
    faces = random_faces(2, 8, seed=12, device=device, spread=0.6)
    big = torch.tensor([[[-0.9, -0.9, 0.0], [0.9, -0.8, 2.0], [0.0, 0.9, 2.0]],
                        [[-0.8, -0.9, 2.0], [0.9, -0.9, 0.0], [0.1, 0.9, 0.0]]], device=device)
    faces = torch.cat([big.expand(2, 2, 3, 3), faces], 1).clone()
    faces[1, 5, 1, 2] = 0.0  # and one random face
    return faces, slice(0, 2)


@pytest.mark.parametrize("make, colours", [(_padded, False), (_z_zero, True)],
                         ids=["zero-area, texture cubes", "z=0, vertex colours"])
def test_degenerate_faces_are_finite_undrawn_and_match_reference(device, make, colours):
    faces, undrawn = make(device)
    g = torch.Generator().manual_seed(13)
    B, F = faces.shape[:2]
    shape = (B, F, 3, 3) if colours else (B, F, 2, 2, 2, 3)
    ref, tri = _render_both(faces, torch.rand(shape, generator=g).to(device), 12, seed=14)
    _assert_same(ref, tri)
    assert ref[1].sum() > 10 and ref[3].abs().sum() > 0  # the other faces are drawn and get gradient
    assert torch.equal(tri[3][:, undrawn], torch.zeros_like(tri[3][:, undrawn]))
    assert torch.equal(tri[4][:, undrawn], torch.zeros_like(tri[4][:, undrawn]))


def test_edge_on_faces_of_an_orthographic_cube(device):
    """An axis-aligned cube seen along z without perspective: four of its six sides are exactly
    edge-on (zero screen area). Silhouette, depth and rgb and their gradients match the reference."""
    corners = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])[None].to(device)
    vertices = corners[None].to(device)
    g = torch.Generator().manual_seed(15)
    textures = torch.rand(1, 12, 2, 2, 2, 3, generator=g).to(device)
    w_rgb, w_alpha, w_depth = (torch.randn(1, *s, generator=g).to(device) for s in ((3, 10, 10), (10, 10), (10, 10)))
    results = []
    for backend in ("torch", "triton"):
        renderer = nr.Renderer(image_size=10, anti_aliasing=False, camera_mode="look_at", perspective=False,
                               backend=backend)
        renderer.eye = [0.0, 0.0, -3.0]
        v = vertices.clone().requires_grad_()
        t = textures.clone().requires_grad_()
        rgb, depth, alpha = renderer(v, faces, t)
        ((rgb * w_rgb).sum() + (alpha * w_alpha).sum() + (depth * w_depth).sum()).backward()
        results.append((rgb.detach(), alpha.detach(), depth.detach(), v.grad, t.grad))
    _assert_same(*results)
    assert 0 < results[0][1].sum() < 100 and results[0][3].abs().sum() > 0


@pytest.mark.parametrize("batch, num_faces", [(2, 0), (0, 5)], ids=["no faces", "batch 0"])
def test_empty_input(device, batch, num_faces):
    faces = random_faces(batch, num_faces, seed=16, device=device)
    ref, tri = _render_both(faces, torch.rand(batch, num_faces, 2, 2, 2, 3).to(device), 6, seed=17)
    _assert_same(ref, tri)
    assert tri[0].shape == (batch, 3, 6, 6) and tri[3].shape == (batch, num_faces, 3, 3)
    if batch:
        assert torch.equal(tri[1], torch.zeros_like(tri[1]))  # nothing drawn: alpha 0, depth far
        assert torch.equal(tri[2], torch.full_like(tri[2], 100.0))


@pytest.mark.parametrize("size", [1, 5])
def test_one_face_texture_size_one(device, size):
    """A single face, a 1 x 1 x 1 texture cube, images of 1 pixel and of 5 (Triton would turn a size
    of 1 into a compile-time constant)."""
    faces = torch.tensor([[[[-1.0, -0.9, 2.0], [0.9, -0.7, 3.0], [0.1, 0.95, 2.5]]]], device=device)
    textures = torch.tensor([[[[[[0.2, 0.5, 0.9]]]]]], device=device)
    ref, tri = _render_both(faces, textures, size, seed=18)
    _assert_same(ref, tri)
    assert tri[1].sum() >= 1 and tri[4].abs().sum() > 0
