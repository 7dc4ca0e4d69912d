"""The Triton backend against the PyTorch reference (on CPU through Triton's interpreter)."""
import pytest
import torch

import tritonnmr as nr
from conftest import random_faces

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


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
