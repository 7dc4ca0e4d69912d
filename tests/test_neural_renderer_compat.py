"""Drop-in fidelity with neural_renderer 1.1.3: Mesh, Rasterize, and every function that reduces
over a dimension checked against neural_renderer's formula evaluated one element at a time (numpy,
float64) on batched inputs, so that a reduction over the wrong axis (the lighting bug of 3acbb34:
normals normalised across faces) cannot pass."""
import math
import os

import numpy as np
import pytest
import torch

import tritonnmr as nr

RNG = np.random.default_rng(13)


def unit(x):
    return x / np.linalg.norm(x)


# ----------------------------------------------------------------------------------------------
# Mesh
# ----------------------------------------------------------------------------------------------
TETRA_VERTICES = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], np.float32)
TETRA_FACES = np.array([[1, 3, 2], [3, 1, 0], [2, 0, 1], [0, 2, 3]], np.int32)  # the OBJ's 1-based f lines - 1


def test_mesh_fromobj_tetrahedron():
    mesh = nr.Mesh.fromobj(nr.data_path("tetrahedron.obj"), normalization=False)
    assert torch.equal(mesh.vertices, torch.from_numpy(TETRA_VERTICES))
    assert torch.equal(mesh.faces, torch.from_numpy(TETRA_FACES)) and mesh.faces.dtype == torch.int32
    assert (mesh.num_vertices, mesh.num_faces, mesh.texture_size) == (4, 4, 4)
    # the unit corner tetrahedron spans [0, 1] on every axis: normalised it spans [-1, 1]
    mesh = nr.Mesh.fromobj(nr.data_path("tetrahedron.obj"))
    assert torch.allclose(mesh.vertices, torch.from_numpy(TETRA_VERTICES * 2 - 1))


def test_mesh_random_textures_are_learnable_and_small():
    torch.manual_seed(0)
    mesh = nr.Mesh.fromobj(nr.data_path("tetrahedron.obj"), texture_size=3)
    tex = mesh.textures
    assert isinstance(tex, torch.nn.Parameter) and tex.requires_grad
    assert tex.shape == (4, 3, 3, 3, 3) and mesh.texture_size == 3
    assert 0.03 < float(tex.detach().std()) < 0.07 and abs(float(tex.detach().mean())) < 0.02  # 0.05 * N(0, 1), 324 samples
    # renders once a batch dimension is added, and the textures get a gradient
    r = nr.Renderer(image_size=16, camera_mode="look_at", backend="torch")
    rgb, _, alpha = r(mesh.vertices[None], mesh.faces[None], mesh.textures[None])
    assert alpha.sum() > 0
    rgb.sum().backward()
    assert tex.grad is not None and tex.grad.abs().sum() > 0


def test_mesh_with_given_textures_keeps_them():
    v, f, tex = nr.load_obj(nr.data_path("textured_display/model.obj"), load_texture=True, texture_size=2)
    mesh = nr.Mesh.fromobj(nr.data_path("textured_display/model.obj"), load_texture=True, texture_size=2)
    assert torch.equal(mesh.vertices, v) and torch.equal(mesh.faces, f) and torch.equal(mesh.textures, tex)
    assert mesh.texture_size == 2 and mesh.num_faces == f.shape[0]
    own = torch.nn.Parameter(torch.rand(4, 5, 5, 5, 3))
    mesh = nr.Mesh(torch.from_numpy(TETRA_VERTICES), torch.from_numpy(TETRA_FACES), own)
    assert mesh.textures is own and mesh.texture_size == 5  # neural_renderer 1.1.3 stores neither


@pytest.mark.parametrize("args, error, match", [
    ((torch.zeros(4, 2), TETRA_FACES), ValueError, "vertices"),
    ((np.zeros((4, 3)), TETRA_FACES), TypeError, "vertices"),
    ((torch.zeros(4, 3), torch.zeros(4, 3)), TypeError, "faces"),
    ((torch.zeros(4, 3), torch.tensor([[0, 1, 4]])), ValueError, "faces"),
    ((torch.zeros(4, 3), torch.tensor([[0, 1, 2]]), torch.zeros(2, 2, 2, 2, 3)), ValueError, "textures"),
    ((torch.zeros(4, 3), torch.tensor([[0, 1, 2]]), torch.zeros(1, 2, 2, 3)), ValueError, "textures"),
    ((torch.zeros(4, 3), torch.tensor([[0, 1, 2]]), None, 0), ValueError, "texture_size"),
])
def test_mesh_bad_input_names_the_argument(args, error, match):
    args = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) and a.dtype == np.int32 else a for a in args)
    with pytest.raises(error, match=match):
        nr.Mesh(*args)


def test_mesh_fromobj_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere.obj"):
        nr.Mesh.fromobj("nowhere.obj")


# ----------------------------------------------------------------------------------------------
# Rasterize
# ----------------------------------------------------------------------------------------------
def screen_faces(batch, num_faces, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(batch, num_faces, 1, 2, generator=g) * 1.4 - 0.7
    xy = centres + (torch.rand(batch, num_faces, 3, 2, generator=g) - 0.5) * 1.2
    z = torch.rand(batch, num_faces, 3, 1, generator=g) * 2 + 1
    return torch.cat([xy, z], -1)


def test_rasterize_module_equals_rasterize_rgbad_unflipped():
    faces = screen_faces(2, 6, seed=1).requires_grad_()
    tex = torch.rand(2, 6, 3, 3, 3, 3, requires_grad=True)
    size, bg = 24, (0.2, 0.4, 0.6)
    module = nr.Rasterize(size, 0.1, 100, 1e-3, bg, return_rgb=True, return_alpha=True, return_depth=True)
    rgb, alpha, depth = module(faces, tex)
    assert rgb.shape == (2, size, size, 3) and alpha.shape == depth.shape == (2, size, size)
    ref = nr.rasterize_rgbad(faces, tex, size, anti_aliasing=False, eps=1e-3, background_color=bg)
    # neural_renderer's module returns the maps before the vertical flip, channels last
    assert torch.equal(rgb, ref["rgb"].permute(0, 2, 3, 1).flip(1))
    assert torch.equal(alpha, ref["alpha"].flip(1)) and torch.equal(depth, ref["depth"].flip(1))
    assert 0.05 < float(alpha.detach().mean()) < 0.95  # the test sees covered and empty pixels
    assert torch.allclose(rgb[alpha == 0], torch.tensor(bg))  # background where nothing is drawn
    assert torch.all(depth[alpha == 0] == 100)
    # row 0 is at NDC y = -1: a face in the lower half of the picture covers the first rows
    low = torch.tensor([[[[-0.9, -0.9, 2.0], [0.9, -0.9, 2.0], [0.0, -0.2, 2.0]]]])
    a = nr.Rasterize(16, 0.1, 100, 1e-4, None, return_alpha=True)(low, None)[1][0]
    assert a[:4].sum() > 0 and a[-4:].sum() == 0

    # gradients: the same as through rasterize_rgbad
    w = torch.rand(2, size, size, 5)
    loss = (torch.cat([rgb, alpha[..., None], depth[..., None] / 10], -1) * w).sum()
    g_faces, g_tex = torch.autograd.grad(loss, (faces, tex))
    flipped = w.flip(1)
    loss_ref = ((ref["rgb"].permute(0, 2, 3, 1) * flipped[..., :3]).sum() + (ref["alpha"] * flipped[..., 3]).sum()
                + (ref["depth"] / 10 * flipped[..., 4]).sum())
    r_faces, r_tex = torch.autograd.grad(loss_ref, (faces, tex))
    assert g_faces.abs().sum() > 0 and g_tex.abs().sum() > 0
    assert torch.allclose(g_faces, r_faces, atol=1e-5) and torch.allclose(g_tex, r_tex, atol=1e-6)


def test_rasterize_module_returns_empty_tensors_for_what_was_not_asked():
    faces = screen_faces(1, 3, seed=2)
    rgb, alpha, depth = nr.Rasterize(8, 0.1, 100, 1e-4, None, return_alpha=True)(faces, None)
    assert rgb.numel() == 0 and depth.numel() == 0 and alpha.shape == (1, 8, 8)
    module = nr.Rasterize(8, 0.1, 100, 1e-4, None, return_depth=True)
    module.image_size = 12  # attributes are read at every call, as in neural_renderer
    assert module(faces, None)[2].shape == (1, 12, 12)
    with pytest.raises(ValueError, match="textures"):
        nr.Rasterize(8, 0.1, 100, 1e-4, (0, 0, 0), return_rgb=True)(faces, None)


# ----------------------------------------------------------------------------------------------
# neural_renderer's formulas, one element at a time, on batched inputs
# ----------------------------------------------------------------------------------------------
def nr_light_one_face(face, amb, dirn, col_a, col_d, direction):
    """neural_renderer lighting.py for one face (3, 3): normal of cross(v0 - v1, v2 - v1) divided by
    max(|.|, 1e-5) (torch normalize), direction used as given (not normalised), relu of the dot."""
    c = np.cross(face[0] - face[1], face[2] - face[1])
    n = c / max(np.linalg.norm(c), 1e-5)
    return amb * col_a + dirn * col_d * max(0.0, float(n @ direction))


@pytest.mark.parametrize("batch", [2, 3])  # B * F = 3 is where an unqualified torch.cross picks dim 0
def test_lighting_matches_neural_renderer_per_face(batch):
    nf = 1 if batch == 3 else 5
    faces = RNG.normal(size=(batch, nf, 3, 3)).astype(np.float32)
    tex = RNG.uniform(size=(batch, nf, 2, 2, 2, 3)).astype(np.float32)
    col_a = RNG.uniform(size=(batch, 3)).astype(np.float32)
    col_d = RNG.uniform(size=(batch, 3)).astype(np.float32)
    direction = RNG.normal(size=(batch, 3)).astype(np.float32) * 2  # not a unit vector
    lit = nr.lighting(torch.from_numpy(faces), torch.from_numpy(tex), 0.3, 0.9, torch.from_numpy(col_a),
                      torch.from_numpy(col_d), torch.from_numpy(direction)).numpy()
    for b in range(batch):
        for f in range(nf):
            light = nr_light_one_face(faces[b, f].astype(np.float64), 0.3, 0.9, col_a[b], col_d[b], direction[b])
            np.testing.assert_allclose(lit[b, f], tex[b, f] * light, rtol=1e-5, atol=1e-6)
    # tuple arguments broadcast over the batch; intensity_directional=0 leaves only the ambient term
    lit = nr.lighting(torch.from_numpy(faces), torch.from_numpy(tex), 0.25, 0.0, (1, 0.5, 0)).numpy()
    np.testing.assert_allclose(lit, tex * np.array([0.25, 0.125, 0]), rtol=1e-6)


def test_lighting_hand_derived_cases():
    # normal of cross(v0 - v1, v2 - v1) for v0 = (0, 0, 1), v1 = 0, v2 = (1, 0, 0) is +y
    up = torch.tensor([[[[0.0, 0, 1], [0, 0, 0], [1, 0, 0]]]])
    tex = torch.full((1, 1, 2, 2, 2, 3), 0.5)
    # the direction is not normalised: (0, 2, 0) doubles the directional term (0.5 + 0.5 * 2) * 0.5
    assert torch.allclose(nr.lighting(up, tex, 0.5, 0.5, direction=(0, 2, 0)), torch.full_like(tex, 0.75))
    # light from below: the face gets the ambient term only; colours multiply per channel
    lit = nr.lighting(up, tex, 0.4, 0.5, color_ambient=(1, 0.5, 0), direction=(0, -1, 0))
    assert torch.allclose(lit[0, 0, 0, 0, 0], torch.tensor([0.2, 0.1, 0.0]))
    # reversed winding (the fill_back copy) flips the normal: lit from below instead
    down = up.flip(2)
    assert torch.allclose(nr.lighting(down, tex, 0.0, 1.0, direction=(0, -1, 0)), tex)
    assert torch.allclose(nr.lighting(down, tex, 0.0, 1.0), torch.zeros_like(tex))


def test_lighting_differs_from_neural_renderer_only_below_its_eps():
    # a face with |cross| = 1e-7: neural_renderer's normal has length 0.01 (dims the face to ambient);
    # ours is a unit normal. Faces with |cross| >= 1e-5 agree (previous test).
    tiny = torch.tensor([[[[0.0, 0, 1e-3], [0, 0, 0], [1e-4, 0, 0]]]])  # normal (0, +1, 0), |cross| 1e-7
    light = nr.face_light(tiny, 0.5, 0.5)[0, 0]
    assert torch.allclose(light, torch.ones(3))
    nr_value = nr_light_one_face(tiny[0, 0].double().numpy(), 0.5, 0.5, 1, 1, np.array([0, 1, 0]))
    assert abs(nr_value - 0.505) < 1e-6
    # and the gradient of a lit degenerate (zero-area) face is zero, not NaN
    faces = torch.zeros(1, 2, 3, 3)
    faces[0, 1] = torch.tensor([[0.0, 0, 1], [0, 0, 0], [1, 0, 0]])
    faces.requires_grad_()
    nr.face_light(faces, 0.5, 0.5).sum().backward()
    assert torch.isfinite(faces.grad).all() and torch.all(faces.grad[0, 0] == 0)


def nr_look_at_one(v, eye, at, up):
    z = unit(at - eye)
    x = unit(np.cross(up, z))
    y = unit(np.cross(z, x))
    return np.stack([x, y, z]) @ (v - eye)


@pytest.mark.parametrize("batch", [2, 3])
def test_look_at_matches_neural_renderer_per_batch(batch):
    v = RNG.normal(size=(batch, 7, 3)).astype(np.float32)
    eye = RNG.normal(size=(batch, 3)).astype(np.float32) * 3
    at = RNG.normal(size=(batch, 3)).astype(np.float32) * 0.3
    up = np.array([[0, 1, 0], [0.2, 1, 0], [0, 1, 0.3]][:batch], np.float32)
    out = nr.look_at(torch.from_numpy(v), torch.from_numpy(eye), torch.from_numpy(at), torch.from_numpy(up)).numpy()
    one = nr.look_at(torch.from_numpy(v), [float(x) for x in eye[0]]).numpy()  # a list eye for every entry
    for b in range(batch):
        for i in range(7):
            np.testing.assert_allclose(out[b, i], nr_look_at_one(v[b, i], eye[b], at[b], up[b]), atol=1e-5)
            np.testing.assert_allclose(one[b, i], nr_look_at_one(v[b, i], eye[0], np.zeros(3), np.array([0, 1, 0])),
                                       atol=1e-5)


def test_look_at_neural_renderer_test_case():
    # neural_renderer's tests/test_look_at.py, with the three eyes as one batch
    eyes = torch.tensor([[1.0, 0, 1], [0, 0, -10], [-1, 1, 0]])
    answers = torch.tensor([[-math.sqrt(2) / 2, 0, math.sqrt(2) / 2], [1, 0, 10], [0, math.sqrt(2) / 2, 1.5 * math.sqrt(2)]])
    out = nr.look_at(torch.tensor([[[1.0, 0, 0]]]).expand(3, 1, 3), eyes)
    assert torch.allclose(out[:, 0], answers, atol=1e-6)


@pytest.mark.parametrize("batch", [2, 3])
def test_look_matches_neural_renderer_per_batch(batch):
    v = RNG.normal(size=(batch, 5, 3)).astype(np.float32)
    eye = RNG.normal(size=(batch, 3)).astype(np.float32)
    direction = RNG.normal(size=(batch, 3)).astype(np.float32) * 2
    out = nr.look(torch.from_numpy(v), torch.from_numpy(eye), torch.from_numpy(direction)).numpy()
    for b in range(batch):
        for i in range(5):
            expected = nr_look_at_one(v[b, i], eye[b], eye[b] + direction[b], np.array([0, 1, 0]))
            np.testing.assert_allclose(out[b, i], expected, atol=1e-5)


def test_perspective_matches_neural_renderer_per_vertex():
    v = RNG.normal(size=(3, 6, 3)).astype(np.float32)
    v[..., 2] = np.abs(v[..., 2]) + 1
    out = nr.perspective(torch.from_numpy(v), angle=25).numpy()
    width = math.tan(math.radians(25))
    for b, i in np.ndindex(3, 6):
        x, y, z = v[b, i].astype(np.float64)
        np.testing.assert_allclose(out[b, i], [x / z / width, y / z / width, z], rtol=1e-5)
    # neural_renderer's tests/test_perspective.py
    assert torch.allclose(nr.perspective(torch.tensor([[[1.0, 2, 10]]])),
                          torch.tensor([[[math.sqrt(3) / 10, 2 * math.sqrt(3) / 10, 10]]]))


def nr_project_one(p, K, R, t, d, orig_size, eps=1e-9):
    x, y, z = R @ p + t
    x_, y_ = x / (z + eps), y / (z + eps)
    r = math.sqrt(x_ ** 2 + y_ ** 2)
    k1, k2, p1, p2, k3 = d
    radial = 1 + k1 * r ** 2 + k2 * r ** 4 + k3 * r ** 6
    x__ = x_ * radial + 2 * p1 * x_ * y_ + p2 * (r ** 2 + 2 * x_ ** 2)
    y__ = y_ * radial + p1 * (r ** 2 + 2 * y_ ** 2) + 2 * p2 * x_ * y_
    u, v, _ = K @ np.array([x__, y__, 1.0])
    v = orig_size - v
    return [2 * (u - orig_size / 2) / orig_size, 2 * (v - orig_size / 2) / orig_size, z]


def test_projection_matches_neural_renderer_per_vertex():
    B, V, size = 2, 6, 200
    v = RNG.normal(size=(B, V, 3)).astype(np.float32) * 0.5
    K = np.stack([np.array([[150, 0, 100], [0, 160, 90], [0, 0, 1]], np.float32),
                  np.array([[120, 2, 110], [0, 110, 95], [0, 0, 1]], np.float32)])
    R = np.stack([np.linalg.qr(RNG.normal(size=(3, 3)))[0] for _ in range(B)]).astype(np.float32)
    t = np.array([[[0.1, -0.2, 4.0]], [[-0.3, 0.1, 5.0]]], np.float32)
    d = np.array([[0.1, -0.05, 0.01, -0.02, 0.003], [0, 0, 0, 0, 0]], np.float32)
    out = nr.projection(*(torch.from_numpy(a) for a in (v, K, R, t, d)), size).numpy()
    for b, i in np.ndindex(B, V):
        expected = nr_project_one(v[b, i].astype(np.float64), K[b], R[b], t[b, 0], d[b], size)
        np.testing.assert_allclose(out[b, i], expected, rtol=1e-4, atol=1e-5)


def test_vertices_to_faces_matches_neural_renderer_per_face():
    v = torch.from_numpy(RNG.normal(size=(3, 5, 3)).astype(np.float32))
    f = torch.from_numpy(RNG.integers(0, 5, size=(3, 4, 3)).astype(np.int32))
    out = nr.vertices_to_faces(v, f)
    for b, i, k in np.ndindex(3, 4, 3):
        assert torch.equal(out[b, i, k], v[b, f[b, i, k]])


def test_get_points_from_angles_matches_neural_renderer():
    # scalars: a tuple of floats; 1-d tensors: (B, 3), one row per camera
    p = nr.get_points_from_angles(2.5, 20, -40)
    e, a = math.radians(20), math.radians(-40)
    assert isinstance(p, tuple) and len(p) == 3
    assert p == pytest.approx((2.5 * math.cos(e) * math.sin(a), 2.5 * math.sin(e), -2.5 * math.cos(e) * math.cos(a)))
    d, el, az = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 30.0, -60.0]), torch.tensor([90.0, 45.0, 10.0])
    pts = nr.get_points_from_angles(d, el, az)
    assert pts.shape == (3, 3)
    for i in range(3):
        assert pts[i].tolist() == pytest.approx(list(nr.get_points_from_angles(float(d[i]), float(el[i]),
                                                                                float(az[i]))), abs=1e-5)
    rad = nr.get_points_from_angles(2.0, math.pi / 2, 0.0, degrees=False)
    assert rad == pytest.approx((0.0, 2.0, 0.0), abs=1e-9)


def test_load_obj_normalisation_matches_neural_renderer(tmp_path):
    v = RNG.uniform(-3, 5, size=(9, 3)) * np.array([1.0, 0.4, 2.0])
    path = tmp_path / "random.obj"
    path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in v) + "f 1 2 3\nf 4 5 6 7\nf 7 8 9\n")
    # neural_renderer: shift to the minimum, divide by the largest |coordinate|, times 2, minus max / 2
    e = v - v.min(0)
    e = e / np.abs(e).max() * 2
    e = e - e.max(0) / 2
    vertices, faces = nr.load_obj(str(path))
    np.testing.assert_allclose(vertices.numpy(), e, atol=1e-5)
    assert faces.tolist() == [[0, 1, 2], [3, 4, 5], [3, 5, 6], [6, 7, 8]]  # quad fan-triangulated
    raw, _ = nr.load_obj(str(path), normalization=False)
    np.testing.assert_allclose(raw.numpy(), v, rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# small API gaps neural_renderer users hit
# ----------------------------------------------------------------------------------------------
def test_neural_renderer_names_exist():
    for name in ("Renderer", "Mesh", "Rasterize", "rasterize_rgbad", "rasterize", "rasterize_silhouettes",
                 "rasterize_depth", "lighting", "load_obj", "save_obj", "look", "look_at", "perspective",
                 "projection", "get_points_from_angles", "vertices_to_faces"):
        assert hasattr(nr, name), name
        assert name in nr.__all__, name


def test_rasterize_module_is_a_module_with_neural_renderer_arguments():
    module = nr.Rasterize(32, 0.1, 100, 1e-4, (0, 0, 0), True, True, True)
    assert isinstance(module, torch.nn.Module)
    assert (module.image_size, module.near, module.far, module.eps) == (32, 0.1, 100, 1e-4)
    assert module.return_rgb and module.return_alpha and module.return_depth


@pytest.mark.skipif(not os.path.isfile(nr.data_path("teapot.obj")), reason="bundled teapot missing")
def test_renderer_look_at_silhouette_is_blender_exact_on_a_batch():
    # neural_renderer's tests render the teapot in entry 2 of a batch of 4 whose other entries are
    # all-zero meshes (zero-area faces): those must stay empty and must not disturb entry 2
    import imageio.v3 as iio
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    vb, fb = torch.zeros(4, *v.shape), torch.zeros(4, *f.shape, dtype=f.dtype)
    vb[2], fb[2] = v, f
    r = nr.Renderer(camera_mode="look_at", image_size=256, anti_aliasing=False, backend="torch")
    sil = r(vb, fb, mode="silhouettes")
    ref = torch.from_numpy((iio.imread(nr.data_path("teapot_blender.png"))[..., :3].min(-1) != 255).astype(np.float32))
    assert torch.equal(sil[2], ref)
    assert sil[[0, 1, 3]].sum() == 0


def test_small_api_gaps_are_closed():
    # numpy integers as image_size (neural_renderer passes them straight through)
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"), device="cpu")
    r = nr.Renderer(image_size=np.int64(16), camera_mode="look_at", backend="torch")
    assert r(v[None], f[None], mode="silhouettes").shape == (1, 16, 16)
    # load_obj puts its tensors where neural_renderer's go (the GPU when there is one) unless told
    assert v.device.type == "cpu" and f.dtype == torch.int32
    v, _ = nr.load_obj(nr.data_path("tetrahedron.obj"))
    assert v.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
