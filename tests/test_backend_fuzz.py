"""Property-based parity of the backends on small scenes full of degenerate cases.

Screen-space scenes are drawn from a coarse set of coordinates (pixel centres, pixel edges, the image
border, beyond it) and depths (ties, z = 0, behind the far plane), with repeated vertices (zero-area
faces), so hypothesis keeps producing what breaks rasterizers: ties in depth, edges through pixel
centres, edge-on and one-pixel faces, one-row images. For every scene the numba backend (and, on
fewer scenes, the Triton kernels in the interpreter) must give the reference's images and the
reference's gradients to faces and textures, all finite; and through the Renderer, lists of meshes
of different sizes with vertices behind the camera give the reference's images and gradients.
(Run once with 3,000 + 150 screen scenes and 2,000 + 80 worlds: no difference found.)
"""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritonnmr as nr
from tritonnmr import backends

# the Triton kernels run compiled on a GPU when there is one (many more scenes then), else interpreted
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRITON_SCENES, TRITON_WORLDS = (300, 150) if torch.cuda.is_available() else (12, 8)

XY = [-1.5, -1.0, -0.75, -0.5, -1 / 3, -0.25, 0.0, 0.2, 0.25, 0.5, 2 / 3, 0.75, 1.0, 1.25]
Z = [0.0, 0.5, 1.0, 1.0, 2.0, 5.0, 150.0]  # 1.0 twice: depth ties are common


@st.composite
def scenes(draw, max_faces=5, max_size=7):
    B = draw(st.integers(1, 2))
    F = draw(st.integers(1, max_faces))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    coord = st.one_of(st.sampled_from(XY), st.floats(-1.25, 1.25, width=32))
    depth = st.one_of(st.sampled_from(Z), st.floats(0.0625, 3.0, width=32))
    faces = torch.tensor(draw(st.lists(st.lists(st.tuples(coord, coord, depth), min_size=3, max_size=3),
                                       min_size=B * F, max_size=B * F)), dtype=torch.float32).view(B, F, 3, 3)
    for b, f in draw(st.lists(st.tuples(st.integers(0, B - 1), st.integers(0, F - 1)), max_size=2)):
        faces[b, f, 2] = faces[b, f, 0]  # zero area
    T = draw(st.sampled_from([1, 2]))
    seed = draw(st.integers(0, 2 ** 16))
    anti_aliasing = draw(st.booleans())
    return faces, (H, W), T, seed, anti_aliasing


def _device(backend):
    return TRITON_DEVICE if backend == "triton" else "cpu"


def _render_and_grads(faces, size, T, seed, anti_aliasing, backend):
    g = torch.Generator().manual_seed(seed)
    B, F = faces.shape[:2]
    faces = faces.clone().to(_device(backend)).requires_grad_()
    textures = torch.rand(B, F, T, T, T, 3, generator=g).to(_device(backend)).requires_grad_()
    out = nr.rasterize_rgbad(faces, textures, image_size=size, anti_aliasing=anti_aliasing, near=0.1, far=100.0,
                             backend=backend)
    weights = {k: torch.randn(v.shape, generator=g).to(v.device) for k, v in out.items()}
    # depth is `far` on background pixels: weight it lightly so gradients stay in one range
    loss = (out["rgb"] * weights["rgb"]).sum() + (out["alpha"] * weights["alpha"]).sum() \
        + 0.01 * (out["depth"] * weights["depth"]).sum()
    loss.backward()
    return [out[k].cpu() for k in ("rgb", "alpha", "depth")], [faces.grad.cpu(), textures.grad.cpu()]


def _assert_same(render, case, backend):
    """``render(case, backend)`` -> (images, gradients): equal to the reference's, gradients finite."""
    ref_images, ref_grads = render(case, "torch")
    images, grads = render(case, backend)
    for i, (a, b) in enumerate(zip(images, ref_images)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), f"{backend}: image {i}"
    for i, (a, b) in enumerate(zip(grads, ref_grads)):
        assert torch.isfinite(a).all(), f"{backend}: non-finite gradient {i}"
        scale = max(b.abs().max().item(), 1.0)  # edge gradients span decades: tolerance relative to the largest
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * scale), f"{backend}: gradient {i}"


def _check_parity(scene, backend):
    _assert_same(lambda case, name: _render_and_grads(*case, backend=name), scene, backend)


@pytest.mark.skipif(not backends.available("numba"), reason="numba not installed")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_numba_equals_the_reference_on_degenerate_scenes(scene):
    _check_parity(scene, "numba")


@settings(max_examples=TRITON_SCENES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(max_faces=3, max_size=5))
def test_triton_equals_the_reference_on_degenerate_scenes(scene):
    _check_parity(scene, "triton")


@st.composite
def worlds(draw, max_meshes=3, max_faces=4):
    """A list of small meshes (different sizes) in world space around a look_at camera at distance 2,
    with vertices near, on and behind the camera plane, so the near-plane clipping runs too."""
    n = draw(st.integers(1, max_meshes))
    value = st.one_of(st.sampled_from([-2.5, -2.0, -1.9, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]), st.floats(-2.5, 2.5, width=32))
    meshes = []
    for _ in range(n):
        V = draw(st.integers(3, 6))
        F = draw(st.integers(1, max_faces))
        vertices = torch.tensor(draw(st.lists(st.tuples(value, value, value), min_size=V, max_size=V)))
        faces = torch.tensor(draw(st.lists(st.tuples(*[st.integers(0, V - 1)] * 3), min_size=F, max_size=F)))
        meshes.append((vertices, faces))
    eye = draw(st.sampled_from([(0.0, 0.0, -2.0), (0.0, 2.0, 0.0), (1.2, 1.0, -1.2)]))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    return meshes, eye, size, draw(st.integers(0, 2 ** 16))


def _world_grads(world, backend):
    meshes, eye, size, seed = world
    g = torch.Generator().manual_seed(seed)
    device = _device(backend)
    vertices = [v.clone().to(device).requires_grad_() for v, _ in meshes]
    textures = [torch.rand(f.shape[0], 2, 2, 2, 3, generator=g).to(device).requires_grad_() for _, f in meshes]
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend=backend)
    r.eye = eye
    rgb, depth, alpha = r(vertices, [f.to(device) for _, f in meshes], textures)
    noise = [torch.randn(x.shape, generator=g).to(device) for x in (rgb, alpha, depth)]
    loss = (rgb * noise[0]).sum() + (alpha * noise[1]).sum() + 0.01 * (depth * noise[2]).sum()
    loss.backward()
    return (rgb.cpu(), depth.cpu(), alpha.cpu()), [v.grad.cpu() for v in vertices] + [t.grad.cpu() for t in textures]


def _check_world(world, backend):
    _assert_same(_world_grads, world, backend)


@pytest.mark.skipif(not backends.available("numba"), reason="numba not installed")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_numba_equals_the_reference_through_the_renderer(world):
    # lists of meshes of different sizes, clipping at the near plane, anti-aliasing, lighting
    _check_world(world, "numba")


@settings(max_examples=TRITON_WORLDS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(max_meshes=2, max_faces=3))
def test_triton_equals_the_reference_through_the_renderer(world):
    _check_world(world, "triton")


# ----------------------------------------------------------------------------------------------
# Depth gradients far from the camera: dz/dx = z^2 w_k sum_m A_m / (det z_m) is mostly cancellation
# ----------------------------------------------------------------------------------------------
FAR_DEPTHS = [1.0, 10.0, 1e2, 1e3, 1e4, 1e5, 1e6, 3e6, 9.9e6]  # up to far = 1e7


def _depth_gradient(z, tilt, backend, far=1e7, size=8):
    """The depth loss's gradient (B=1, F=1, 3, 3) of a screen-space triangle at depth z (each vertex's z
    times (1, 1 + tilt, 1 - tilt)) at size x size."""
    device = _device(backend)
    corners = torch.tensor([[-0.6, -0.5], [0.7, -0.4], [0.1, 0.8]])
    depth = z * torch.tensor([1.0, 1.0 + tilt, 1.0 - tilt])
    faces = torch.cat([corners, depth[:, None]], 1)[None, None].to(device).requires_grad_()
    d = nr.rasterize_depth(faces, size, anti_aliasing=False, near=0.1, far=far, backend=backend)
    d.sum().backward()
    return faces.grad.cpu()


@pytest.mark.parametrize("backend", ["numba", "triton"])
def test_depth_gradients_equal_the_reference_up_to_far(backend):
    """A triangle at z = 1e6 with far = 1e7, 8 x 8, depth loss: numba's x part once had the opposite sign
    (its cancelling sum in float64, the reference's and Triton's in float32). Every depth up to far, flat
    and tilted, gives the reference's gradient, sign included."""
    if not backends.available(backend):
        pytest.skip(f"{backend} not installed")
    for z in FAR_DEPTHS:
        for tilt in (0.0, 0.05):
            ref, got = _depth_gradient(z, tilt, "torch"), _depth_gradient(z, tilt, backend)
            assert ref[..., 2].abs().min() > 0, (z, tilt)  # every vertex moves the depth
            scale = ref.abs().max().item()
            assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5 * scale), (backend, z, tilt, got, ref)
            big = ref.abs() > 1e-3 * scale
            assert torch.equal(torch.sign(got[big]), torch.sign(ref[big])), (backend, z, tilt)
