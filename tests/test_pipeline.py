"""The Renderer's path from mesh to image: near-plane clipping, batches of different meshes,
non-square images, degenerate cameras, and the backend contract."""
import inspect
import math

import pytest
import torch

import tritonnmr as nr
from tritonnmr import backends

TAN30 = math.tan(math.radians(30))


@pytest.fixture(scope="module")
def teapot():
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    return v[None], f[None]


# ----------------------------------------------------------------------------------------------
# The backend contract
# ----------------------------------------------------------------------------------------------
def _available_backends():
    names = ["torch", "triton"]
    if backends.available("numba"):
        names.append("numba")
    return names


@pytest.mark.parametrize("name", _available_backends())
def test_every_backend_provides_every_op_with_the_reference_signature(name):
    reference = backends.module("torch")
    module = backends.module(name)
    for op in backends.OPS:
        assert hasattr(module, op.name), f"backend {name!r} lacks op {op.name}"
        expected = list(inspect.signature(getattr(reference, op.name)).parameters)
        got = list(inspect.signature(getattr(module, op.name)).parameters)
        assert got == expected, f"{name}.{op.name}{tuple(got)} differs from the reference {tuple(expected)}"


def test_registered_ops_serve_a_custom_shader(monkeypatch):
    monkeypatch.setattr(backends, "_extra_ops", {})  # registrations end with the test
    calls = []

    def scale(face_index, bary, attributes, factor):
        calls.append("forward")
        return torch.where((face_index >= 0)[..., None], attributes[0, 0, :1] * factor, 0.0).expand(
            *face_index.shape, 1).contiguous()

    def scale_backward(face_index, bary, grad, attributes, factor):
        calls.append("backward")
        g = torch.zeros_like(attributes)
        g[0, 0, 0] = (grad * (face_index >= 0)[..., None]).sum() * factor
        return g

    backends.register_op("test_scale", scale)
    backends.register_op("test_scale_backward", scale_backward)
    with pytest.raises(ValueError, match="part of the backend contract"):
        backends.register_op("sample_cubes", scale)

    class ScaleShader(nr.Shader):
        def shade(self, fragments, attributes, backend="auto"):
            return nr.shading.run_op("test_scale", fragments, attributes, 3.0, backend=backend)

    faces = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]])
    attributes = torch.full((1, 1, 3, 1), 0.25, requires_grad=True)
    rgb = nr.rasterize(faces, attributes, 8, anti_aliasing=False, background_color=(0,), shader=ScaleShader(),
                       backend="torch")
    covered = nr.rasterize_silhouettes(faces, 8, anti_aliasing=False, backend="torch")[0] > 0
    assert torch.allclose(rgb[0, 0][covered], torch.tensor(0.75))
    rgb.sum().backward()
    assert attributes.grad[0, 0, 0, 0] == pytest.approx(3.0 * covered.sum().item())
    assert calls == ["forward", "backward"]


# ----------------------------------------------------------------------------------------------
# Near-plane clipping, against ray casting
# ----------------------------------------------------------------------------------------------
def _ray_cast_floor(triangle, size, near, far=100.0):
    """Hit mask (S, S), depth and world-space barycentrics of camera rays (eye at the origin, looking
    along +z, 30-degree view) with a triangle lying in a plane y = const (rows top to bottom)."""
    level = triangle[0, 1].item()
    centres = (2 * torch.arange(size, dtype=torch.float64) + 1 - size) / size
    y = centres.flip(0)[:, None].expand(size, size)  # row 0 is the top
    x = centres[None, :].expand(size, size)
    z = level / (y * TAN30)  # the ray (x tan, y tan, 1) z meets the plane at this depth
    hit_x = x * TAN30 * z
    a, b, c = (triangle[k, [0, 2]].double() for k in range(3))

    def cross(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    point = (hit_x, z)
    area = cross(a, b, c)
    w = [cross(b, c, point) / area, cross(c, a, point) / area, cross(a, b, point) / area]
    inside = (w[0] >= 0) & (w[1] >= 0) & (w[2] >= 0) & (z > near) & (z < far)
    return inside, z, torch.stack(w, 0)


def test_faces_reaching_behind_the_camera_are_clipped_not_mirrored():
    # a floor triangle under the camera from z = -1 (behind the eye) to z = 3 (in front)
    floor = torch.tensor([[-1.5, -0.5, 3.0], [0.2, -0.5, -1.0], [1.5, -0.5, 3.0]])
    r = nr.Renderer(image_size=32, anti_aliasing=False, camera_mode="look", camera_direction=(0, 0, 1),
                    light_intensity_ambient=1.0, light_intensity_directional=0.0, backend="torch")
    r.eye = [0, 0, 0]
    v = floor[None].clone().requires_grad_()
    f = torch.tensor([[[0, 1, 2]]])
    colours = torch.eye(3)[None]  # vertex k has colour e_k: the image shows the world barycentrics
    rgb, depth, alpha = r(v, f, colours)
    inside, z, w = _ray_cast_floor(floor, 32, near=0.1)
    assert inside.sum() > 100
    assert (alpha[0].bool() != inside).sum() <= 2  # only pixel centres within rounding of an edge
    both = alpha[0].bool() & inside
    assert torch.allclose(depth[0][both].double(), z[both], rtol=1e-4)
    assert torch.allclose(rgb[0][:, both].double(), w[:, both], atol=2e-3)
    (rgb.sum() + depth[alpha > 0].sum() + alpha.sum()).backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_clipping_is_differentiable_and_textures_stay_on_the_parent_face():
    # one vertex behind the camera: the gradient of the silhouette reaches it through the cut points
    floor = torch.tensor([[[-1.5, -0.5, 3.0], [0.2, -0.5, -1.0], [1.5, -0.5, 3.0]]], requires_grad=True)
    r = nr.Renderer(image_size=16, anti_aliasing=False, camera_mode="look", camera_direction=(0, 0, 1),
                    backend="torch")
    r.eye = [0, 0, 0]
    target = torch.zeros(1, 16, 16)
    loss = ((r.render_silhouettes(floor, torch.tensor([[[0, 1, 2]]])) - target) ** 2).sum()
    loss.backward()
    assert torch.isfinite(floor.grad).all()
    assert floor.grad[0, 1].abs().sum() > 0  # the vertex behind the eye moves the cut


@pytest.mark.parametrize("z", [0.0, 1e-9, -2.0])
def test_a_vertex_on_or_behind_the_camera_plane_gives_finite_gradients(z, teapot):
    v, f = teapot
    v = v.clone()
    eye = torch.tensor(nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45))
    v[0, 0] = eye + z * (-eye / eye.norm())  # vertex 0 exactly at (or behind) the eye
    v.requires_grad_()
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch")
    r.eye = eye.tolist()
    rgb, depth, alpha = r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 3))
    (rgb.sum() + alpha.sum() + depth.sum()).backward()
    assert torch.isfinite(rgb).all() and torch.isfinite(v.grad).all()


# ----------------------------------------------------------------------------------------------
# Batches of different meshes: lists, padding, unbatched
# ----------------------------------------------------------------------------------------------
def _two_meshes():
    v0, f0 = nr.load_obj(nr.data_path("tetrahedron.obj"))
    g = torch.Generator().manual_seed(3)
    v1 = torch.rand(7, 3, generator=g) * 1.6 - 0.8
    f1 = torch.tensor([[0, 1, 2], [2, 3, 4], [4, 5, 6], [0, 3, 6], [1, 4, 6], [0, 2, 5]])
    return [v0.float(), v1], [f0.long(), f1]


@pytest.mark.parametrize("backend", ["torch", "numba", "triton"])
def test_a_list_of_meshes_renders_and_differentiates_as_each_alone(backend):
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"  # else interpreted
    vs, fs = _two_meshes()
    vs = [v.to(device).requires_grad_() for v in vs]
    fs = [f.to(device) for f in fs]
    colours = [torch.rand(v.shape[0], 3, generator=torch.Generator().manual_seed(i)).to(device)
               for i, v in enumerate(vs)]
    r = nr.Renderer(image_size=8 if backend == "triton" else 16, camera_mode="look_at", backend=backend)
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 20, 30)
    rgb, depth, alpha = r(vs, fs, colours)
    weights = torch.randn(rgb.shape, generator=torch.Generator().manual_seed(5)).to(device)
    ((rgb * weights).sum() + alpha.sum() + depth.sum()).backward()
    for i in range(2):
        v = vs[i].detach().clone().requires_grad_()
        rgb_i, depth_i, alpha_i = r(v[None], fs[i][None], colours[i][None])
        assert torch.allclose(rgb_i[0], rgb[i], atol=1e-6)
        assert torch.allclose(alpha_i[0], alpha[i]) and torch.allclose(depth_i[0], depth[i])
        ((rgb_i * weights[i:i + 1]).sum() + alpha_i.sum() + depth_i.sum()).backward()
        assert torch.allclose(v.grad, vs[i].grad, rtol=1e-4, atol=1e-4)


def test_padded_faces_and_unbatched_meshes():
    vs, fs = _two_meshes()
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch")
    listed = r(vs, fs, mode="silhouettes")
    V = max(v.shape[0] for v in vs)
    vertices = torch.stack([torch.cat([v, torch.full((V - v.shape[0], 3), 7.0)]) for v in vs])
    F = max(f.shape[0] for f in fs)
    faces = torch.stack([torch.cat([f, torch.full((F - f.shape[0], 3), -1)]) for f in fs])
    padded = r(vertices, faces, mode="silhouettes")
    assert torch.equal(listed, padded)
    single = r(vs[1], fs[1], mode="silhouettes")  # (V, 3), (F, 3): a batch of one
    assert single.shape == (1, 16, 16) and torch.equal(single[0], listed[1])
    padding_in_the_middle = faces.clone()
    padding_in_the_middle[0, 1] = torch.tensor([0, -1, -1])
    with pytest.raises(ValueError, match="padding row must be all -1"):
        r(vertices, padding_in_the_middle, mode="silhouettes")
    with pytest.raises(ValueError, match="same number of meshes"):
        r(vs, fs[:1], mode="silhouettes")
    with pytest.raises(ValueError, match="batch size"):
        r(vertices, faces[:1], mode="silhouettes")


# ----------------------------------------------------------------------------------------------
# Non-square images
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(12, 20), (20, 12)])
def test_a_non_square_render_is_the_centre_crop_of_a_square_one(size, teapot):
    v, f = teapot
    h, w = size
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend="torch", anti_aliasing=True)
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 60)
    tex = torch.rand(1, f.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    rgb, depth, alpha = r(v, f, tex)
    assert rgb.shape == (1, 3, h, w) and depth.shape == alpha.shape == (1, h, w)
    r.image_size = min(size)  # the viewing angle spans the shorter side
    square = r(v, f, tex)
    top, left = (min(size) - h) // 2, (min(size) - w) // 2
    # the square render is the centre of the non-square one along the longer side
    crop = [slice(None)] * 2 + ([slice(-top, -top + min(size)), slice(None)] if h > w else
                                [slice(None), slice(-left, -left + min(size))])
    assert torch.allclose(rgb[tuple(crop[:1] + [slice(None)] + crop[2:])], square[0], atol=1e-5)
    assert torch.equal(alpha[tuple(crop[:1] + crop[2:])], square[2])


def test_non_square_blurred_edge_gradient_by_hand():
    # the triangle's vertical edge sits at x = 0.5 NDC; at width 12 that is pixel x = 8.5, the pixel
    # to its right (column 9, centre 9) is 0.5 px away = 0.5 * 2 / 12 NDC; wanting it covered pulls
    # the edge right: for a vertex alone dist = (u_b - u_a) / (u_b - d0) * (d1 - w_x) (in NDC)
    faces = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.5, 0.5, 2.0]]]], requires_grad=True)
    H, W = 8, 12
    alpha = nr.rasterize_silhouettes(faces, (H, W), anti_aliasing=False, backend="torch")
    assert alpha.shape == (1, H, W)
    row = 4  # pre-flip row 3 (centre y = -0.125 NDC, pixel y = 3); flipped: row H - 1 - 3 = 4
    weights = torch.zeros(1, H, W)
    weights[0, row, 9] = -1.0
    (alpha * weights).sum().backward()
    ua, ub, d0 = 0.5 * (-0.5 * H + H - 1), 0.5 * (0.5 * H + H - 1), 3.0  # the edge in pixel rows
    shift = 0.5 * 2 / W
    eps = 1e-4
    expected_v1 = -1 / ((ub - ua) / (ub - d0) * shift + eps)
    expected_v2 = -1 / ((ub - ua) / (d0 - ua) * shift + eps)
    g = faces.grad[0, 0]
    assert g[1, 0].item() == pytest.approx(expected_v1, rel=1e-5)
    assert g[2, 0].item() == pytest.approx(expected_v2, rel=1e-5)
    assert torch.all(g[:, 1:] == 0) and g[0, 0] == 0


def test_non_square_depth_gradient_matches_finite_differences():
    faces = torch.tensor([[[[-0.7, -0.6, 2.0], [0.8, -0.5, 3.0], [0.1, 0.7, 2.5]]]], dtype=torch.float64)
    size = (9, 14)
    mask = nr.rasterize_depth(faces.float(), size, anti_aliasing=False, backend="torch") < 100

    def loss(f):  # the depth summed over a fixed set of pixels: smooth in every coordinate
        return (nr.rasterize_depth(f.float(), size, anti_aliasing=False, backend="torch") * mask).sum()

    f = faces.clone().float().requires_grad_()
    loss(f).backward()
    h = 1e-3
    for k in range(3):
        for c in range(3):
            plus, minus = faces.clone(), faces.clone()
            plus[0, 0, k, c] += h
            minus[0, 0, k, c] -= h
            numeric = (loss(plus) - loss(minus)).item() / (2 * h)
            assert f.grad[0, 0, k, c].item() == pytest.approx(numeric, rel=2e-2, abs=2e-2), (k, c)


def test_image_size_forms():
    faces = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]])
    import numpy as np
    assert nr.rasterize_silhouettes(faces, np.int64(8), backend="torch").shape == (1, 8, 8)
    assert nr.rasterize_silhouettes(faces, [6, 10], backend="torch").shape == (1, 6, 10)
    for bad in (0, -3, (0, 4), (4, -1), 2.5, "8", (4, 4, 4), True):
        with pytest.raises(ValueError, match="image_size"):
            nr.rasterize_silhouettes(faces, bad, backend="torch")


# ----------------------------------------------------------------------------------------------
# Cameras that have no direction, and bad settings
# ----------------------------------------------------------------------------------------------
def test_eye_at_the_target_is_an_error_and_eye_above_falls_back_to_up_z(teapot):
    v, f = teapot
    r = nr.Renderer(image_size=32, camera_mode="look_at", backend="torch", anti_aliasing=False)
    r.eye = [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="eye and at must differ"):
        r(v, f, mode="silhouettes")
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 90, 0)
    top = r(v, f, mode="silhouettes")
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 89.999, 0)
    almost = r(v, f, mode="silhouettes")
    assert top.sum() > 100  # it used to render nothing
    assert (top != almost).sum() <= 2


@pytest.mark.parametrize("attribute,value,match", [
    ("background_color", (float("nan"), 0, 0), "background_color contains NaN"),
    ("background_color", (1, 0), "background_color must have 3 values"),
    ("viewing_angle", 0, "viewing_angle must be > 0"),
    ("viewing_angle", float("nan"), "viewing_angle must be a finite number"),
    ("far", float("inf"), "far must be a finite number"),
    ("light_direction", (0, float("nan"), 0), "light_direction contains NaN"),
    ("light_intensity_ambient", float("nan"), "light_intensity_ambient must be a finite number"),
    ("eye", torch.zeros(3, 3), "eye has batch size 3"),
])
def test_bad_settings_name_the_setting(attribute, value, match, teapot):
    v, f = teapot
    r = nr.Renderer(image_size=8, camera_mode="look_at", backend="torch")
    setattr(r, attribute, value)
    with pytest.raises(ValueError, match=match):
        r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 3))


@pytest.mark.parametrize("name,value,match", [
    ("t", torch.zeros(1, 2), "t must have shape"),
    ("dist_coeffs", torch.zeros(1, 4), "dist_coeffs must have shape"),
    ("K", torch.eye(3)[None].repeat(3, 1, 1), "K has batch size 3"),
    ("orig_size", 0, "orig_size must be > 0"),
])
def test_bad_projection_parameters_name_the_argument(name, value, match, teapot):
    v, f = teapot
    cam = dict(K=torch.eye(3)[None], R=torch.eye(3)[None], t=torch.zeros(1, 1, 3), dist_coeffs=None, orig_size=1)
    cam[name] = value
    r = nr.Renderer(image_size=8, camera_mode="projection", backend="torch")
    with pytest.raises(ValueError, match=match):
        r.render_silhouettes(v.repeat(2, 1, 1), f.repeat(2, 1, 1), **cam)


def test_nan_screen_faces_are_rejected_by_the_rasterize_functions():
    faces = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, float("nan"), 2.0]]]])
    for call in (lambda: nr.rasterize_silhouettes(faces, 8), lambda: nr.rasterize_depth(faces, 8),
                 lambda: nr.rasterize(faces, torch.ones(1, 1, 2, 2, 2, 3), 8),
                 lambda: nr.rasterize_fragments(faces, 8)):
        with pytest.raises(ValueError, match="faces contains NaN"):
            call()


@pytest.mark.parametrize("backend", ["torch", "numba", "triton"])
def test_batch_size_zero_renders_and_differentiates(backend):
    v = torch.zeros(0, 4, 3, requires_grad=True)
    f = torch.zeros(0, 2, 3, dtype=torch.int64)
    r = nr.Renderer(image_size=8, camera_mode="look_at", backend=backend)
    rgb, depth, alpha = r(v, f, torch.zeros(0, 2, 2, 2, 2, 3))
    assert rgb.shape == (0, 3, 8, 8) and depth.shape == alpha.shape == (0, 8, 8)
    (rgb.sum() + alpha.sum() + depth.sum()).backward()
    assert v.grad.shape == v.shape


# ----------------------------------------------------------------------------------------------
# Lighting is a step of the built-in shaders, not of every shader
# ----------------------------------------------------------------------------------------------
def test_custom_shaders_are_unlit_unless_they_ask(teapot):
    v, f = teapot

    class Flat(nr.Shader):
        def fill_back(self, attributes):
            return torch.cat([attributes, attributes], 1)

        def shade(self, fragments, attributes, backend="auto"):
            b = torch.arange(attributes.shape[0])[:, None, None]
            return attributes[b, fragments.face_index.clamp(min=0)]

    normals = torch.full((1, f.shape[1], 3), 0.5)
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch", light_intensity_ambient=0.2,
                    light_intensity_directional=0.0)
    rgb, _, alpha = r.render(v, f, normals, shader=Flat())
    assert torch.allclose(rgb[0][:, alpha[0] == 1], torch.tensor(0.5))  # no light applied

    class LitFlat(Flat):
        lit = True

    rgb, _, alpha = r.render(v, f, normals, shader=LitFlat())
    assert torch.allclose(rgb[0][:, alpha[0] == 1], torch.tensor(0.1))  # 0.5 x ambient 0.2


# ----------------------------------------------------------------------------------------------
# Corner cases found in review
# ----------------------------------------------------------------------------------------------
def test_looking_straight_up_or_down_matches_the_nearby_views(teapot):
    v, f = teapot
    r = nr.Renderer(image_size=32, camera_mode="look_at", backend="torch", anti_aliasing=False)
    for elevation in (90, -90):
        r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, elevation, 0)
        exact = r(v, f, mode="silhouettes")
        r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, elevation * 0.99999, 0)
        near = r(v, f, mode="silhouettes")
        assert exact.sum() > 100 and (exact != near).sum() <= 2, elevation
    with pytest.raises(ValueError, match="camera_mode"):
        pass_ = nr.Renderer(camera_mode="look_at", backend="torch")
        pass_.camera_mode = "sideways"
        pass_(v, f, mode="silhouettes")


def test_viewing_angle_is_a_half_angle_below_90():
    for bad in (90, 120, 179):
        with pytest.raises(ValueError, match="viewing_angle must be below 90"):
            nr.Renderer(viewing_angle=bad)


def test_orthographic_non_square_keeps_pixels_square():
    # a square of side 1 centred at the origin, seen orthographically: 1/2 of the shorter side
    v = torch.tensor([[[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]]])
    f = torch.tensor([[[0, 1, 2], [0, 2, 3]]])
    r = nr.Renderer(image_size=(16, 32), camera_mode="look_at", perspective=False, anti_aliasing=False,
                    backend="torch")
    r.eye = [0, 0, -5]
    alpha = r(v, f, mode="silhouettes")[0]
    rows, cols = alpha.sum(1).gt(0).sum().item(), alpha.sum(0).gt(0).sum().item()
    assert rows == cols == 8


def test_projection_with_a_face_through_the_camera_plane_has_finite_gradients():
    v = torch.tensor([[[100.0, 0.0, -1.0], [-0.5, -0.5, 3.0], [0.5, -0.4, 3.0]]], requires_grad=True)
    f = torch.tensor([[[0, 1, 2]]])
    K = torch.tensor([[[64.0, 0, 32], [0, 64.0, 32], [0, 0, 1]]])
    for near, dist in ((0.0, None), (0.1, None), (0.0, torch.tensor([[0.1, 0.01, 0.0, 0.0, 0.001]]))):
        r = nr.Renderer(image_size=32, camera_mode="projection", K=K, R=torch.eye(3)[None], t=torch.zeros(1, 1, 3),
                        dist_coeffs=dist, orig_size=64, near=near, backend="torch")
        rgb, depth, alpha = r(v, f, torch.ones(1, 1, 2, 2, 2, 3))
        if dist is None:  # (with distortion the cut points land ~1e17 off the image: nothing to see)
            assert alpha.sum() > 10
        v.grad = None
        (rgb.sum() + alpha.sum() + depth[alpha > 0].sum()).backward()
        assert torch.isfinite(v.grad).all()
    assert torch.isfinite(nr.projection(torch.tensor([[[0.5, 0.2, 0.0]]]), K, torch.eye(3)[None],
                                        torch.zeros(1, 1, 3), None, 64)).all()


def test_clipped_face_depth_gradient_matches_finite_differences():
    floor = torch.tensor([[[-1.5, -0.5, 3.0], [0.2, -0.6, -1.0], [1.5, -0.45, 3.0]]], dtype=torch.float64)
    f = torch.tensor([[[0, 1, 2]]])
    r = nr.Renderer(image_size=16, anti_aliasing=False, camera_mode="look", camera_direction=(0, 0, 1),
                    backend="torch")
    r.eye = [0, 0, 0]
    mask = r(floor.float(), f, mode="depth") < 100

    def loss(v):
        return (r(v.float(), f, mode="depth") * mask).sum()

    v = floor.clone().float().requires_grad_()
    loss(v).backward()
    h = 1e-3
    for k, c in ((1, 1), (1, 2), (0, 1), (2, 1)):  # the vertex behind the camera moves the cut
        plus, minus = floor.clone(), floor.clone()
        plus[0, k, c] += h
        minus[0, k, c] -= h
        numeric = (loss(plus) - loss(minus)).item() / (2 * h)
        assert v.grad[0, k, c].item() == pytest.approx(numeric, rel=3e-2, abs=3e-2), (k, c)


def test_per_mesh_textures_must_fit_their_meshes():
    vs, fs = _two_meshes()
    r = nr.Renderer(image_size=8, camera_mode="look_at", backend="torch")
    good = [torch.ones(len(f), 2, 2, 2, 3) for f in fs]
    r(vs, fs, good)
    with pytest.raises(ValueError, match=r"textures\[0\] must be cubes \(F_i=4"):
        r(vs, fs, [torch.ones(3, 2, 2, 2, 3), good[1]])
    with pytest.raises(ValueError, match=r"textures\[1\]"):
        r(vs, fs, [good[0], torch.ones(len(fs[1]), 3, 3, 3, 3)])
    with pytest.raises(ValueError, match=r"textures\[0\] must be cubes"):
        r(vs, fs, [torch.ones(3, 3), torch.ones(len(vs[1]), 3)])  # 3 vertex colours for 4 vertices
    with pytest.raises(ValueError, match="one entry per mesh"):
        r(vs, fs, good[:1])
    rgb, depth, alpha = r([], [], [])
    assert rgb.shape == (0, 3, 8, 8)


def test_one_channel_textures_are_lit_by_grey_light_and_coloured_light_is_refused(teapot):
    v, f = teapot
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch", background_color=0.25)
    grey, _, alpha = r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 1))
    rgb, _, _ = r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 3))
    assert grey.shape == (1, 1, 16, 16)
    assert torch.allclose(grey[0, 0], rgb[0, 0], atol=1e-6)  # white light: every channel alike
    assert torch.allclose(grey[0, 0][alpha[0] == 0], torch.tensor(0.25))
    r.light_color_directional = (1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="coloured light"):
        r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 1))
    r.light_color_directional = (1.0, 1.0, 1.0)
    r.background_color = (0.0, 1.0)
    with pytest.raises(ValueError, match="background_color must have 1 values"):
        r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 1))


def test_learnable_light_intensities(teapot):
    v, f = teapot
    ambient = torch.tensor(0.4, requires_grad=True)
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch", light_intensity_ambient=ambient)
    rgb, _, _ = r(v, f, torch.ones(1, f.shape[1], 2, 2, 2, 3))
    rgb.sum().backward()
    assert ambient.grad > 0


def test_duck_typed_shaders_and_packed_uv_textures():
    faces = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]])

    class Duck:  # no Shader base class, no check()
        def shade(self, fragments, attributes, backend="auto"):
            return (fragments.face_index >= 0)[..., None].float() * attributes

    rgb = nr.rasterize(faces, torch.tensor([0.5, 0.25, 1.0]), 8, anti_aliasing=False, shader=Duck(),
                       backend="torch")
    covered = rgb[0, 0] > 0
    assert covered.any() and torch.allclose(rgb[0, 1][covered], torch.tensor(0.25))
    with pytest.raises(TypeError, match="shader must be a tritonnmr.Shader"):
        nr.rasterize(faces, torch.ones(3), 8, shader=object())
    uvs = torch.tensor([[[[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]]])
    packed = nr.UVTextureShader().check((uvs, torch.ones(1, 2, 2, 3)), 1, 1)
    assert nr.rasterize(faces, packed, 8, backend="torch").shape == (1, 3, 8, 8)


def test_edge_gradient_checks_its_image():
    faces = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], requires_grad=True)
    frags = nr.rasterize_fragments(faces, 8, backend="torch")
    image = (frags.face_index >= 0)[..., None].double()  # float64 is accepted (as float32)
    out = nr.edge_gradient(image, frags, backend="torch")
    assert out.dtype == torch.float32
    with pytest.raises(TypeError, match="image must be a torch.Tensor"):
        nr.edge_gradient([[0.0]], frags, backend="torch")


def test_per_mesh_cameras_and_lights_with_a_list_of_meshes():
    vs, fs = _two_meshes()
    eyes = torch.tensor([nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 20, 30),
                         nr.get_points_from_angles(3.5, -10, 200)])
    light = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch")
    r.eye, r.light_direction = eyes, light
    colours = [torch.ones(len(v), 3) for v in vs]
    together, _, _ = r(vs, fs, colours)
    for i in range(2):
        r.eye, r.light_direction = eyes[i], light[i]
        alone, _, _ = r(vs[i][None], fs[i][None], colours[i][None])
        assert torch.allclose(alone[0], together[i], atol=1e-6)
    K = torch.tensor([[[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]], [[30.0, 0, 8], [0, 30.0, 8], [0, 0, 1]]])
    R = torch.eye(3)[None].repeat(2, 1, 1)
    t = torch.tensor([[[0.0, 0.0, 3.0]], [[0.2, 0.0, 4.0]]])
    r = nr.Renderer(image_size=16, camera_mode="projection", orig_size=16, backend="torch")
    both = r.render_silhouettes(vs, fs, K=K, R=R, t=t)
    for i in range(2):
        one = r.render_silhouettes(vs[i][None], fs[i][None], K=K[i:i + 1], R=R[i:i + 1], t=t[i:i + 1])
        assert torch.equal(one[0], both[i]) and one.sum() > 5
