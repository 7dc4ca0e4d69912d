"""UV-mapped textures: exact texels, wrap modes, gradients to the images and the uvs, the Renderer."""
import numpy as np
import pytest
import torch

import tritonnmr as nr
from tritonnmr import backends

BACKENDS = ["torch", "triton"] + (["numba"] if backends.available("numba") else [])


def _screen_quad(depth=2.0):
    """Two triangles covering the whole screen (x, y in [-1, 1]) at one depth, counter-clockwise."""
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    tris = torch.stack([corners[[0, 1, 2]], corners[[0, 2, 3]]])
    return torch.cat([tris, torch.full((2, 3, 1), depth)], -1)[None]


def _quad_uvs(lo=0.0, hi=1.0):
    """uvs of the quad's corners: screen (-1, -1) -> (lo, lo), (1, 1) -> (hi, hi)."""
    corners = torch.tensor([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])
    return torch.stack([corners[[0, 1, 2]], corners[[0, 2, 3]]])[None]


@pytest.mark.parametrize("backend", BACKENDS)
def test_texture_as_large_as_the_image_comes_back_texel_for_texel(backend):
    H, W = 6, 10
    image = torch.rand(1, H, W, 3, generator=torch.Generator().manual_seed(0))
    rgb = nr.rasterize(_screen_quad(), (_quad_uvs(), image), (H, W), anti_aliasing=False, backend=backend,
                       shader=nr.UVTextureShader())
    # pixel (r, c) centre: u = (c + 0.5) / W, v = 1 - (r + 0.5) / H -> texel (r, c), row 0 the top
    assert torch.allclose(rgb[0].permute(1, 2, 0), image[0], atol=1e-5)


def _expected_wrapped(image, u, v, wrap):
    """Bilinear sample of image (h, w, C) at uv, written with numpy, for the wrap modes."""
    h, w = image.shape[:2]
    x, y = u * w - 0.5, (1 - v) * h - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0

    def wrap_index(i, n):
        if wrap == "REPEAT":
            return np.mod(i, n)
        if wrap == "MIRRORED_REPEAT":
            j = np.mod(i, 2 * n)
            return np.where(j < n, j, 2 * n - 1 - j)
        return np.clip(i, 0, n - 1)

    out = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            out = out + image[wrap_index(y0 + dy, h), wrap_index(x0 + dx, w)] * (wy * wx)[..., None]
    return out


@pytest.mark.parametrize("wrap", ["REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_wrap_modes_outside_the_unit_square(wrap, backend):
    S = 12
    image = torch.rand(1, 3, 4, 2, generator=torch.Generator().manual_seed(1))  # 3 x 4 texels, 2 channels
    rgb = nr.rasterize(_screen_quad(), (_quad_uvs(-1.3, 2.1), image), S, anti_aliasing=False,
                       background_color=(0, 0), backend=backend, shader=nr.UVTextureShader(wrap))
    centres = (np.arange(S) + 0.5) / S
    u = -1.3 + 3.4 * centres[None, :].repeat(S, 0)
    v = -1.3 + 3.4 * (1 - centres)[:, None].repeat(S, 1)  # row 0 is the top
    expected = _expected_wrapped(image[0].numpy().astype(np.float64), u, v, wrap)
    assert np.allclose(rgb[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_to_image_and_uvs_match_finite_differences(backend):
    g = torch.Generator().manual_seed(2)
    faces = torch.tensor([[[[-0.8, -0.7, 2.0], [0.9, -0.6, 3.0], [0.1, 0.8, 2.5]]]])
    uvs = torch.tensor([[[[0.12, 0.2], [0.83, 0.31], [0.4, 0.9]]]], dtype=torch.float64)
    image = torch.rand(1, 5, 7, 3, generator=g, dtype=torch.float64)
    weights = torch.randn(1, 3, 9, 9, generator=g)

    def loss(uv, im):
        rgb = nr.rasterize(faces, (uv.float(), im.float()), 9, anti_aliasing=False, backend=backend,
                           shader=nr.UVTextureShader("CLAMP_TO_EDGE"))
        return (rgb * weights).sum()

    uv_, im_ = uvs.float().clone().requires_grad_(), image.float().clone().requires_grad_()
    loss(uv_, im_).backward()
    h = 1e-3
    for index in [(0, 0, 0, 0), (0, 0, 1, 1), (0, 0, 2, 0), (0, 0, 2, 1)]:
        plus, minus = uvs.clone(), uvs.clone()
        plus[index] += h
        minus[index] -= h
        numeric = (loss(plus, image) - loss(minus, image)).item() / (2 * h)
        assert uv_.grad[index].item() == pytest.approx(numeric, rel=3e-2, abs=3e-2)
    # the colour is linear in the texels: the gradient is exact
    for index in [(0, 0, 0, 0), (0, 2, 3, 1), (0, 4, 6, 2)]:
        plus = image.clone()
        plus[index] += 1.0
        assert im_.grad[index].item() == pytest.approx((loss(uvs, plus) - loss(uvs, image)).item(), abs=1e-3)


def test_uv_map_from_the_loader_renders_with_lighting_and_fill_back():
    v, f, uv = nr.load_obj(nr.data_path("textured_display/model.obj"), load_texture=True, texture_format="uv",
                           device="cpu")
    _, _, cubes = nr.load_obj(nr.data_path("textured_display/model.obj"), load_texture=True, texture_size=4,
                              device="cpu")
    r = nr.Renderer(image_size=48, camera_mode="look_at", backend="torch")
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 20, 30)
    rgb_uv, _, alpha = r(v[None], f[None], uv)
    rgb_cubes, _, alpha_cubes = r(v[None], f[None], cubes[None])
    assert torch.equal(alpha, alpha_cubes)
    inside = alpha[0] == 1
    # both show the same model under the same light: close on average, sharper with uvs
    assert (rgb_uv - rgb_cubes)[0][:, inside].abs().mean() < 0.08


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_texel_materials_render_exactly_like_constant_cubes(backend):
    # colour-only materials (OBJ Kd) are 1 x 1 images: every face shows its material's colour, as a
    # constant texture cube of that colour does, under the same light
    from tritonnmr.bench import uv_sphere
    v, f = uv_sphere(200)  # a small closed mesh (the Triton case runs in the interpreter)
    g = torch.Generator().manual_seed(6)
    colours = torch.rand(3, 3, generator=g)
    material = torch.randint(0, 3, (f.shape[0],), generator=g)
    uv = nr.UVMap(torch.rand(f.shape[0], 3, 2, generator=g) * 3 - 1, material, [c.view(1, 1, 3) for c in colours])
    cubes = colours[material][:, None, None, None, :].expand(-1, 2, 2, 2, 3)
    size = 12
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend=backend)
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 25, 70)
    rgb_uv, _, alpha = r(v, f, uv)
    rgb_cubes, _, _ = r(v[None], f[None], cubes[None])
    assert alpha.sum() > size * size / 10
    assert torch.allclose(rgb_uv, rgb_cubes, atol=1e-6)


def test_a_list_of_uv_maps_for_different_meshes():
    quad = _screen_quad()[0]
    v = quad.reshape(6, 3)
    f = torch.arange(6).reshape(2, 3)
    red = nr.UVMap(_quad_uvs()[0], torch.zeros(2, dtype=torch.int64), [torch.tensor([[[1.0, 0, 0]]])])
    image = torch.rand(4, 4, 3, generator=torch.Generator().manual_seed(4))
    checker = nr.UVMap(_quad_uvs()[0][:1], torch.zeros(1, dtype=torch.int64), [image], "CLAMP_TO_EDGE")
    r = nr.Renderer(image_size=4, anti_aliasing=False, camera_mode="none", backend="torch",
                    light_intensity_ambient=1.0, light_intensity_directional=0.0)
    with pytest.raises(ValueError, match="one wrap mode"):
        r([v, v[:3]], [f, f[:1]], [red, checker])
    with pytest.raises(ValueError, match=r"textures\[0\] has uvs for 2 faces but faces\[0\] has 1"):
        r([v[:3], v], [f[:1], f], [red, checker])
    checker.wrap = "REPEAT"
    rgb, _, _ = r([v, v[:3]], [f, f[:1]], [red, checker])
    assert torch.allclose(rgb[0], torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 4, 4))
    # mesh 1 is the lower-right triangle only (face 0: corners (-1,-1), (1,-1), (1,1))
    assert rgb[1, :, 0, 0].tolist() == [0, 0, 0]  # top-left pixel: not covered, background
    assert torch.allclose(rgb[1, :, 3, 3], image[3, 3])  # a 4 x 4 image on 4 x 4 pixels: texel for pixel


def test_uv_maps_as_a_tuple_or_list_for_a_batched_tensor_mesh():
    # (m, m) is two UV maps, one per mesh, not the (uvs, image) pair; a list of tensors is no UV map
    v = _screen_quad()[0].reshape(6, 3)
    f = torch.arange(6).reshape(2, 3)
    image = torch.rand(4, 4, 3, generator=torch.Generator().manual_seed(5))
    m = nr.UVMap(_quad_uvs()[0], torch.zeros(2, dtype=torch.int64), [image])
    r = nr.Renderer(image_size=4, anti_aliasing=False, camera_mode="none", backend="torch",
                    light_intensity_ambient=1.0, light_intensity_directional=0.0)
    vb, fb = v[None].expand(2, -1, -1), f[None].expand(2, -1, -1)
    as_tuple, _, _ = r(vb, fb, (m, m))
    as_list, _, _ = r(vb, fb, [m, m])
    assert torch.equal(as_tuple, as_list)
    assert torch.allclose(as_tuple[1, :, 3, 3], image[3, 3])
    with pytest.raises(TypeError, match=r"textures\[0\] must be a tritonnmr.UVMap, got Tensor"):
        r.render(vb, fb, [torch.rand(2, 3, 2), torch.rand(2, 3, 2)], shader=nr.UVTextureShader())
