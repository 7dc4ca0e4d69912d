"""The neural_renderer-compatible API: Renderer, cameras, lighting, and errors on bad input."""
import math

import pytest
import torch

import tritonnmr as nr


@pytest.fixture(scope="module")
def teapot():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    return v[None], f[None]


def test_renderer_modes_shapes_and_defaults(teapot, device):
    v, f = (t.to(device) for t in teapot)
    r = nr.Renderer(image_size=32, camera_mode="look_at")
    assert r.camera_mode == "look_at" and r.near == 0.1 and r.far == 100 and r.fill_back
    assert r.eye == pytest.approx([0, 0, -(1 / math.tan(math.radians(30)) + 1)])
    tex = torch.ones(1, f.shape[1], 2, 2, 2, 3, device=device)
    rgb, depth, alpha = r(v, f, tex)
    assert rgb.shape == (1, 3, 32, 32) and depth.shape == alpha.shape == (1, 32, 32)
    assert rgb.device.type == device.type
    assert torch.equal(r(v, f, mode="silhouettes"), alpha)
    assert torch.allclose(r(v, f, mode="depth"), depth)
    assert torch.allclose(r(v, f, tex, mode="rgb"), rgb)
    assert 1 < depth[alpha == 1].min() < depth[alpha == 1].max() < 5
    assert nr.Renderer().camera_mode == "projection"  # neural_renderer 1.1.3's default


def test_eye_is_settable_and_get_points_from_angles(teapot):
    v, f = teapot
    r = nr.Renderer(image_size=32, camera_mode="look_at", backend="torch")
    r.anti_aliasing = False
    r.eye = nr.get_points_from_angles(2.732, 0, 90)
    assert r.eye == pytest.approx([2.732, 0, 0], abs=1e-6)
    # the teapot is symmetric under z -> -z (spout and handle lie along x): seen from azimuth 0 (from -z)
    # and 180 (from +z) its silhouettes are mirror images
    r.eye = nr.get_points_from_angles(2.732, 10, 0)
    front = r.render_silhouettes(v, f)[0]
    r.eye = nr.get_points_from_angles(2.732, 10, 180)
    back = r.render_silhouettes(v, f)[0]
    assert front.sum() > 100 and (front != back.flip(-1)).sum() <= 4
    assert (front != back).sum() > 20  # and not equal unmirrored: the spout changes sides
    t = nr.get_points_from_angles(torch.tensor([2.0]), torch.tensor([90.0]), torch.tensor([0.0]))
    assert torch.allclose(t, torch.tensor([[0.0, 2.0, 0.0]]), atol=1e-6)


def test_projection_camera_matches_look_at(teapot):
    """A pinhole K for a 30 degree half-angle reproduces look_at + perspective exactly."""
    v, f = teapot
    size = 64
    eye = nr.get_points_from_angles(2.732, 30, 45)
    cam = nr.look_at(v, eye)
    la = nr.Renderer(image_size=size, camera_mode="look_at", backend="torch")
    la.eye = eye
    # camera coordinates are R (v - eye) = R v + t with t = -R eye
    R = nr.look_at((torch.eye(3) + torch.tensor(eye))[None], eye).transpose(1, 2)  # row j: R e_j
    t = -(R @ torch.tensor(eye)[:, None]).reshape(1, 1, 3)
    assert torch.allclose(torch.matmul(v, R.transpose(1, 2)) + t, cam, atol=1e-5)
    fpx = size / 2 / math.tan(math.radians(30))
    K = torch.tensor([[[fpx, 0, size / 2], [0, -fpx, size / 2], [0, 0, 1]]])  # v = size - row
    pr = nr.Renderer(image_size=size, camera_mode="projection", K=K, R=R, t=t, orig_size=size, backend="torch")
    assert torch.equal(la.render_silhouettes(v, f), pr.render_silhouettes(v, f))


def test_vertex_colours_through_renderer(teapot):
    v, f = teapot
    r = nr.Renderer(image_size=32, camera_mode="look_at", backend="torch",
                    light_intensity_ambient=1.0, light_intensity_directional=0.0)
    colours = torch.zeros_like(v)
    colours[..., 0] = 1.0  # red everywhere
    rgb, _, alpha = r(v, f, colours)
    inside = alpha[0] == 1
    assert torch.allclose(rgb[0, 0][inside], torch.tensor(1.0), atol=1e-5)
    assert torch.all(rgb[0, 1:, inside] == 0)


def test_lighting_does_not_modify_inputs_and_scales_by_normal():
    faces = torch.tensor([[[[0., 0, 0], [1, 0, 0], [0, 0, 1]]]])  # normal along +y
    tex = torch.ones(1, 1, 2, 2, 2, 3)
    lit = nr.lighting(faces, tex, 0.5, 0.5)
    assert torch.all(tex == 1)
    assert torch.allclose(lit, torch.ones_like(lit))  # 0.5 + 0.5 * cos 0
    lit = nr.lighting(faces, tex, 0.5, 0.5, direction=(0, -1, 0))
    assert torch.allclose(lit, torch.full_like(lit, 0.5))


@pytest.mark.parametrize("copies", [1, 3, 100])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 50.0])
def test_lighting_is_per_face_and_follows_the_angle_to_the_light(copies, scale):
    # a face whose normal makes angle theta with the light: light = ambient + directional * cos(theta),
    # whatever its size and however many faces share the batch
    theta = torch.tensor([0.0, 30.0, 60.0, 89.0, 120.0]).deg2rad()
    normal = torch.stack([torch.sin(theta), torch.cos(theta), torch.zeros_like(theta)], -1)  # light (0, 1, 0)
    # a triangle in the plane orthogonal to ``normal``: cross(v0 - v1, v2 - v1) points along the normal
    tangent = torch.stack([torch.cos(theta), -torch.sin(theta), torch.zeros_like(theta)], -1)
    side = torch.tensor([0.0, 0.0, 1.0]).expand_as(tangent)
    v1 = torch.zeros_like(tangent)
    faces = torch.stack([v1 + side, v1, v1 + tangent], 1) * scale  # (5, 3, 3)
    assert torch.allclose(torch.nn.functional.normalize(torch.cross(faces[:, 0] - faces[:, 1],
                                                                   faces[:, 2] - faces[:, 1], dim=-1), dim=-1),
                          normal, atol=1e-5)
    faces = faces.repeat(copies, 1, 1)[None]
    light = nr.face_light(faces, 0.3, 0.6, direction=(0, 1, 0))
    expected = (0.3 + 0.6 * torch.cos(theta).clamp(min=0)).repeat(copies)
    assert torch.allclose(light[0], expected[:, None].expand(-1, 3), atol=1e-5)


@pytest.mark.parametrize("size", [100, 3 * 2 ** 15 + 7])  # below and above torch's grain (numpy's pass)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_the_finite_check_finds_every_nan_and_infinity(size, dtype):
    """checks.finite on the CPU: large float32/float64 tensors go through numpy's min and max, the rest
    through torch's aminmax; a NaN or +-inf anywhere (the first, the last, a strided view) raises."""
    from tritonnmr import checks
    values = torch.rand(size, dtype=dtype)
    assert checks.finite("textures", values) is values
    strided = values[::3]
    assert checks.finite("textures", strided) is strided
    for bad in (float("nan"), float("inf"), -float("inf")):
        for at in (0, size // 2, size - 1):
            broken = values.clone()
            broken[at] = bad
            with pytest.raises(ValueError, match="textures contains NaN or infinite"):
                checks.finite("textures", broken)
            with pytest.raises(ValueError, match="textures contains NaN or infinite"):
                checks.finite("textures", broken.reshape(1, -1).expand(2, -1).t())  # not contiguous


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_lighting_rejects_non_finite_faces_and_is_finite_on_zero_area_ones(bad):
    faces = torch.tensor([[[[0., 0, 0], [1, 0, 0], [0, 0, 1]], [[0., 0, 0], [0, 0, 0], [0, 0, 0]]]])
    broken = faces.clone()
    broken[0, 1, 0, 0] = bad
    with pytest.raises(ValueError, match="faces contains NaN or infinite"):
        nr.face_light(broken)
    with pytest.raises(ValueError, match="faces contains NaN or infinite"):
        nr.lighting(broken, torch.ones(1, 2, 2, 2, 2, 3))
    # the zero-area face (a padding row) gets ambient light only and zero gradient, never NaN
    faces.requires_grad_()
    light = nr.face_light(faces, 0.5, 0.5)
    light.sum().backward()
    assert torch.equal(light[0, 1], torch.full((3,), 0.5))
    assert torch.isfinite(faces.grad).all() and torch.all(faces.grad[0, 1] == 0)


def test_lit_white_teapot_reaches_full_brightness(teapot):
    v, f = teapot
    r = nr.Renderer(image_size=64, camera_mode="look_at", backend="torch", anti_aliasing=False)
    r.eye = nr.get_points_from_angles(2.732, 30, 45)
    rgb, _, alpha = r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 3))
    lit = rgb[0][:, alpha[0] > 0]
    assert lit.max() > 0.98  # the lid faces the light (0, 1, 0): 0.5 + 0.5 * cos(~0)
    assert lit.min() >= 0.5 - 1e-5  # nothing darker than the ambient light


def test_renderer_does_not_modify_textures(teapot):
    v, f = teapot
    tex = torch.ones(1, f.shape[1], 2, 2, 2, 3)
    nr.Renderer(image_size=16, camera_mode="look_at", backend="torch")(v, f, tex)
    assert torch.all(tex == 1)


def test_backend_choice(monkeypatch):
    from tritonnmr import backends
    assert backends.resolve("auto", "cpu") == "numba"  # numba is a dependency
    with pytest.raises(ValueError, match="numba' runs on CPU tensors"):
        backends.resolve("numba", "meta")
    monkeypatch.setattr(backends, "available", lambda name: name != "numba")
    assert backends.resolve("auto", "cpu") == "torch"  # without numba: the reference
    with pytest.raises(ValueError, match="needs the numba package"):
        backends.resolve("numba", "cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        backends.resolve("cuda", "cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        nr.Renderer(backend="fast")


@pytest.mark.parametrize("vertices,faces,match", [
    (torch.zeros(4, 3), torch.zeros(1, 1, 3, dtype=torch.int64), "vertices must have 3 dimensions"),
    (torch.zeros(1, 4, 2), torch.zeros(1, 1, 3, dtype=torch.int64), "vertices must have last dimension 3"),
    (torch.zeros(1, 4, 3), torch.zeros(1, 1, 3), "faces must be an integer tensor"),
    (torch.zeros(1, 4, 3), torch.zeros(2, 1, 3, dtype=torch.int64), "batch size"),
    (torch.zeros(1, 4, 3), torch.tensor([[[0, 1, 4]]]), r"faces indices must be in \[0, 4\)"),
    (torch.zeros(1, 4, 3), torch.tensor([[[0, -1, 2]]]), r"padding row must be all -1"),
    (torch.zeros(1, 4, 3), torch.tensor([[[0, -2, 2]]]), r"faces indices must be in \[0, 4\)"),
    (torch.full((1, 4, 3), float("nan")), torch.tensor([[[0, 1, 2]]]), "vertices contains NaN"),
    ([[0, 0, 0]], torch.tensor([[[0, 1, 2]]]), "vertices and faces must both be lists"),
    ([[0, 0, 0]], [[0, 1, 2]], r"vertices\[0\] must be a torch.Tensor"),
])
def test_bad_mesh_input_names_the_argument(vertices, faces, match):
    r = nr.Renderer(image_size=8, camera_mode="look_at")
    with pytest.raises((ValueError, TypeError), match=match):
        r.render_silhouettes(vertices, faces)


def test_bad_textures_and_options():
    v = torch.rand(1, 3, 3)
    f = torch.tensor([[[0, 1, 2]]])
    r = nr.Renderer(image_size=8, camera_mode="look_at")
    with pytest.raises(ValueError, match="textures must be texture cubes"):
        r(v, f, torch.ones(1, 1, 2, 2, 3))
    with pytest.raises(ValueError, match=r"textures must have shape \(B=1, F=1"):
        r(v, f, torch.ones(1, 2, 2, 2, 2, 3))
    with pytest.raises(ValueError, match="textures is required"):
        r(v, f)
    with pytest.raises(ValueError, match="camera_mode must be one of"):
        nr.Renderer(camera_mode="orbit")
    with pytest.raises(ValueError, match="needs K, R and t"):
        nr.Renderer(image_size=8).render_silhouettes(v, f)
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        nr.Renderer(image_size=0)
    with pytest.raises(ValueError, match="far must be"):
        nr.Renderer(near=1, far=0.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        r(v, f, mode="normals")
    with pytest.raises(ValueError, match=r"faces must have shape \(B, F, 3, 3\)"):
        nr.rasterize_silhouettes(torch.zeros(1, 2, 3, 2))


def test_empty_mesh_renders_background():
    r = nr.Renderer(image_size=8, camera_mode="look_at", background_color=(1, 0, 0))
    v = torch.zeros(1, 0, 3, requires_grad=True)
    f = torch.zeros(1, 0, 3, dtype=torch.int64)
    rgb, depth, alpha = r(v, f, torch.zeros(1, 0, 2, 2, 2, 3))
    assert torch.all(alpha == 0) and torch.all(depth == 100) and torch.all(rgb[:, 0] == 1)
