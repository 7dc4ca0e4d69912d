"""gradient="analytic" (nvdiffrast's antialiasing; backends/torch_antialias.py gives the rule) on every backend.

The rule is checked directly (a straight edge gives each pixel it crosses its covered fraction, and
d alpha / d x0 = +-1 / pixel width, at every sub-pixel offset), the blend's gradient against finite
differences in float64, the numba and Triton kernels against the reference (bit for bit where the
arithmetic is the same; the faces' gradient to rounding), Triton under shuffled program order, the
silhouette-edge rule against a brute-force reading of the mesh, and the estimator through the
Renderer for every shader, mixed-size batches, non-square images, the near plane and degenerate faces.
Scenes are tiny: the Triton kernels run in the interpreter on the CPU.
"""
import contextlib
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritonnmr as nr
from conftest import random_faces
from tritonnmr import backends
from tritonnmr.backends import torch as ref
from tritonnmr.backends.common import drawn
from tritonnmr.apps.cli import main
from tritonnmr.gradients import analytic
from tritonnmr.gradients.silhouettes import silhouette_edges

TRITON = backends.available("triton") and (backends.interpreter_enabled() or torch.cuda.is_available())
BACKENDS = ["torch"] + (["numba"] if backends.available("numba") else []) + (["triton"] if TRITON else [])
FAST = [b for b in BACKENDS if b != "triton"]
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
OFFSETS = [k / 16 for k in range(1, 16)]  # where the edge crosses its pixel, as a fraction of the pixel
# no kernel may divide by zero or overflow, even in a masked-off lane (the interpreter computes those lanes
# with numpy, which warns): any such warning is an error here
pytestmark = [pytest.mark.filterwarnings(f"error:{m} encountered:RuntimeWarning")
              for m in ("divide by zero", "invalid value", "overflow")]


def _device(backend):
    return TRITON_DEVICE if backend == "triton" else "cpu"


def _ops(backend):
    return backends.module(backend)


def _ccw(triangle):
    """(3, 3) face with its vertices reordered counter-clockwise (drawn)."""
    return triangle if drawn(triangle[None, None])[0, 0] else triangle[[0, 2, 1]]


# ----------------------------------------------------------------------------------------------
# The rule itself: a straight edge gives every pixel it crosses its covered fraction
# ----------------------------------------------------------------------------------------------
def _edge_positions(offsets, axis, size, column, device):
    """(B,) leaf: NDC coordinates of edges crossing pixel ``column`` of ``axis`` (0: x, 1: y) at each of
    ``offsets`` (fractions of the pixel) on an image of ``size`` (height, width)."""
    count = size[1] if axis == 0 else size[0]
    pixel = torch.tensor([column - 0.5 + o for o in offsets])
    return ((2 * pixel + 1 - count) / count).to(device).requires_grad_()


def _edge_faces(e, axis, side):
    """(B, 1, 3, 3): per entry, one face covering the whole image on one side of a straight edge at
    e[b] (side +1: below the edge coordinate, -1: above), vertical (x = e, axis 0) or horizontal."""
    faces = []
    for value in e:
        far, spread, depth = value.new_tensor(0.0), value.new_tensor(10.0), value.new_tensor(2.0)
        corners = [(value, -spread), (value, spread), (value - 20.0 * side, far)]
        rows = [torch.stack([u, v, depth]) if axis == 0 else torch.stack([v, u, depth]) for u, v in corners]
        faces.append(_ccw(torch.stack(rows)))
    return torch.stack(faces)[:, None]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("anti_aliasing", [False, True])
def test_a_straight_edge_gives_its_pixels_their_covered_fraction_and_slope(backend, anti_aliasing):
    """Vertical and horizontal edges, the face on either side, at every sub-pixel offset, on a
    non-square image: the crossed pixels' alpha is the covered fraction, every other pixel 0 or 1;
    d alpha / d e is +-1 / pixel width at each crossed pixel and 0 elsewhere; a finite difference of
    the whole render agrees."""
    H, W = 5, 7
    device = _device(backend)
    for axis in (0, 1):
        column = 3 if axis == 0 else 2
        count = W if axis == 0 else H
        interpreted = backend == "triton" and not torch.cuda.is_available()
        for side in (1, -1) if not (interpreted and anti_aliasing) else (1 - 2 * axis,):  # (the interpreter is slow)
            e = _edge_positions(OFFSETS, axis, (H, W), column, device)
            faces = _edge_faces(e, axis, side)
            alpha = nr.rasterize_silhouettes(faces, (H, W), anti_aliasing, backend=backend, gradient="analytic")
            alpha = alpha.flip(1)  # pre-flip rows: row r at y = (2r + 1 - H) / H
            lines = alpha if axis == 0 else alpha.transpose(1, 2)  # (B, lines, pixels along the axis)
            offsets = torch.tensor(OFFSETS, device=device)
            covered = offsets if side == 1 else 1 - offsets
            expected = torch.zeros_like(lines)
            if side == 1:
                expected[..., :column] = 1
            else:
                expected[..., column + 1:] = 1
            expected[..., column] = covered[:, None]
            torch.testing.assert_close(lines, expected, atol=2e-6, rtol=0)
            weights = torch.rand(lines.shape, generator=torch.Generator().manual_seed(axis)).to(device)
            (lines * weights).sum().backward()
            slope = side * count / 2  # +-1 / pixel width, the width 2 / count in NDC
            torch.testing.assert_close(e.grad, slope * weights[..., column].sum(1), rtol=1e-5, atol=1e-5)
            if interpreted:
                continue  # the kernels equal the reference (below)
            step = 0.01 * 2 / count  # a hundredth of a pixel
            with torch.no_grad():
                moved = [nr.rasterize_silhouettes(faces + _shift(axis, amount, device), (H, W), anti_aliasing,
                                                  backend=backend, gradient="analytic") for amount in (step, -step)]
            difference = (moved[0] - moved[1]).flip(1) / (2 * step)
            difference = difference if axis == 0 else difference.transpose(1, 2)
            torch.testing.assert_close(difference[..., column], torch.full_like(lines[..., column], slope), rtol=2e-3,
                                       atol=0)
            difference[..., column] = 0
            assert difference.abs().max() == 0


def _shift(axis, amount, device):
    """A (3,) shift of every vertex along x (axis 0) or y (axis 1)."""
    shift = torch.zeros(3, device=device)
    shift[axis] = amount
    return shift


def test_an_optimisation_moves_an_edge_to_its_target_within_its_pixel():
    """Gradient descent on the edge position alone reaches the target's edge from 0.7 pixels off in
    the same pixel column: the analytic gradient of a straight edge is the true one (with this step it
    halves the error each time). Its reach is the pixels the edge crosses (as nvdiffrast's)."""
    H, W = 6, 8
    target_edge = _edge_positions([0.2], 0, (H, W), 4, "cpu").detach()
    target = nr.rasterize_silhouettes(_edge_faces(target_edge, 0, 1), (H, W), False, gradient="analytic")
    e = _edge_positions([0.9], 0, (H, W), 4, "cpu")
    optimiser = torch.optim.SGD([e], lr=1.0 / (H * W * W))
    for _ in range(30):
        optimiser.zero_grad()
        ((nr.rasterize_silhouettes(_edge_faces(e, 0, 1), (H, W), False, gradient="analytic") - target) ** 2
         ).sum().backward()
        optimiser.step()
    torch.testing.assert_close(e.detach(), target_edge, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------------------
# The ops: finite differences, every backend against the reference, determinism
# ----------------------------------------------------------------------------------------------
def _op_scene(batch, num_faces, size, seed, spread=0.8):
    """Random faces, their fragments (the reference's), random silhouette flags, image and gradient."""
    faces = random_faces(batch, num_faces, seed=seed, spread=spread)
    face_index, _, depth = ref.rasterize_fragments(faces, *size, 0.1, 100.0)
    g = torch.Generator().manual_seed(seed)
    silhouette = torch.rand(batch, num_faces, 3, generator=g) < 0.8
    image = torch.rand(batch, *size, 3, generator=g)
    grad = torch.randn(batch, *size, 3, generator=g)
    return faces, face_index, depth, silhouette, image, grad


def test_the_blend_gradient_matches_finite_differences_in_float64():
    """torch.autograd.gradcheck of the blend (fixed fragments: the pairs, their faces and edges stay
    put under a 1e-6 move) with respect to the faces and the image, in float64 with the reference."""
    faces, face_index, depth, silhouette, image, _ = _op_scene(1, 10, (8, 10), seed=6, spread=0.6)
    alpha, edge = ref.antialias_pairs(faces.double(), face_index, depth.double(), silhouette)
    assert (edge >= 0).sum() >= 12

    def blend(f, im):
        a, e = ref.antialias_pairs(f.detach(), face_index, depth.double(), silhouette)
        return analytic._Antialias.apply(im, f, a, e, ref)

    inputs = (faces.double().requires_grad_(), image.double().requires_grad_())
    assert torch.autograd.gradcheck(blend, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "torch"])
@pytest.mark.parametrize("size", [(9, 11), (12, 5), (1, 7), (6, 1)])
def test_every_op_equals_the_reference(backend, size):
    """alpha, edge codes, the blend and the image gradient bit for bit; the faces' gradient to rounding."""
    faces, face_index, depth, silhouette, image, grad = _op_scene(2, 14, size, seed=size[0])
    ops, device = _ops(backend), _device(backend)
    on = [t.to(device) for t in (faces, face_index, depth, silhouette, image, grad)]
    alpha, edge = ref.antialias_pairs(faces, face_index, depth, silhouette)
    mine = ops.antialias_pairs(*on[:4])
    assert torch.equal(mine[0].cpu(), alpha) and torch.equal(mine[1].cpu(), edge)
    assert torch.equal(ops.antialias(on[4], mine[0]).cpu(), ref.antialias(image, alpha))
    grad_image, grad_faces = ref.antialias_backward(faces, image, alpha, edge, grad)
    mine_image, mine_faces = ops.antialias_backward(on[0], on[4], mine[0], mine[1], on[5])
    assert torch.equal(mine_image.cpu(), grad_image)
    torch.testing.assert_close(mine_faces.cpu(), grad_faces, rtol=1e-5, atol=1e-5 * grad_faces.abs().max().item())
    if min(size) > 1:
        assert (edge >= 0).any() and grad_faces.abs().sum() > 0


@pytest.mark.skipif(not TRITON, reason="needs triton (the interpreter or a GPU)")
def test_triton_is_bit_identical_whatever_order_its_programs_run_in(monkeypatch):
    """The faces' gradient with every face's pairs cut into one-trip items (their sums added in
    slot order), with the items handed to the programs in two different orders."""
    from test_triton import _shuffled
    from tritonnmr.backends.triton import binning, tuning
    faces, face_index, depth, silhouette, image, grad = (t.to(TRITON_DEVICE) for t in _op_scene(1, 4, (16, 16), 5,
                                                                                                  spread=0.3))
    kernels = _ops("triton")

    def run():
        with tuning.override(item_trips=1, pixel_block=2, reduce_rows=2):
            alpha, edge = kernels.antialias_pairs(faces, face_index, depth, silhouette)
            return kernels.antialias_backward(faces, image, alpha, edge, grad)[1]

    plain = run()
    monkeypatch.setattr(binning, "split_segments", _shuffled(7))
    shuffled = run()
    assert torch.equal(plain, shuffled) and plain.abs().sum() > 0
    scene = [t.cpu() for t in (faces, face_index, depth, silhouette, image, grad)]
    alpha, edge = ref.antialias_pairs(*scene[:4])
    torch.testing.assert_close(plain.cpu(), ref.antialias_backward(scene[0], scene[4], alpha, edge, scene[5])[1],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not TRITON, reason="needs triton (the interpreter or a GPU)")
def test_triton_ops_launch_under_their_tensors_device(monkeypatch):
    """The ops look up the package's launch helpers when they run: with its device guard mocked, every
    launch of the three ops happens inside it, for the tensors' device."""
    kernels = _ops("triton")
    guards, launched = [], []  # the devices of the guards open now; (kernel, guards open at its launch)

    @contextlib.contextmanager
    def guard(tensor):
        guards.append(tensor.device)
        yield
        guards.pop()

    launch = kernels._launch
    monkeypatch.setattr(kernels, "device_of", guard)
    monkeypatch.setattr(kernels, "_launch", lambda kernel, grid, lanes: launched.append(
        (kernel.fn.__name__, tuple(guards))) or launch(kernel, grid, lanes))
    faces, face_index, depth, silhouette, image, grad = (t.to(TRITON_DEVICE) for t in _op_scene(1, 10, (8, 10), 6,
                                                                                                  spread=0.6))
    alpha, edge = kernels.antialias_pairs(faces, face_index, depth, silhouette)
    kernels.antialias(image, alpha)
    kernels.antialias_backward(faces, image, alpha, edge, grad)
    assert {"pairs_kernel", "gather_kernel", "face_sums_kernel"} <= {name for name, _ in launched}
    assert all(open_guards == (faces.device,) for _, open_guards in launched)


@pytest.mark.skipif("numba" not in BACKENDS, reason="needs numba")
def test_numba_is_bit_identical_on_any_number_of_threads():
    import numba
    faces, face_index, depth, silhouette, image, grad = _op_scene(2, 30, (24, 20), seed=9)
    ops = _ops("numba")
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            alpha, edge = ops.antialias_pairs(faces, face_index, depth, silhouette)
            results.append((alpha, edge, ops.antialias(image, alpha), *ops.antialias_backward(faces, image, alpha,
                                                                                             edge, grad)))
        finally:
            numba.set_num_threads(1)
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch, num_faces, size", [(0, 3, (4, 4)), (2, 0, (4, 4)), (1, 3, (1, 5)), (1, 2, (1, 1))])
def test_empty_and_tiny_input(backend, batch, num_faces, size):
    device = _device(backend)
    faces = random_faces(batch, num_faces, seed=1, spread=0.3).to(device).requires_grad_()
    textures = torch.rand(batch, num_faces, 1, 1, 1, 3, device=device)
    out = nr.rasterize_rgbad(faces, textures, size, False, backend=backend, gradient="analytic")
    assert out["rgb"].shape == (batch, 3) + size and out["alpha"].shape == (batch,) + size
    (out["rgb"].sum() + out["alpha"].sum()).backward()
    assert torch.isfinite(faces.grad).all()


# ----------------------------------------------------------------------------------------------
# Which edges are silhouettes
# ----------------------------------------------------------------------------------------------
def _cube():
    v = torch.tensor([[x, y, z] for x in (-1.0, 1) for y in (-1.0, 1) for z in (-1.0, 1)]) * 0.5
    f = []
    for a, b, c, d in ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)):
        f += [(a, b, c), (a, c, d)]
    return v, torch.tensor(f)


def _brute_force_silhouettes(faces, indices):
    """The rule read straight off the mesh, one edge at a time: hidden when another face with these
    two vertices and another third vertex lies strictly on the other side of the edge on screen."""
    B, F = indices.shape[:2]
    out = torch.ones(B, F, 3, dtype=torch.bool)
    for b in range(B):
        for f in range(F):
            tri = indices[b, f].tolist()
            if min(tri) < 0 or len(set(tri)) < 3:
                continue
            for k in range(3):
                i, j, o = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
                lo, hi = (k, (k + 1) % 3) if i < j else ((k + 1) % 3, k)
                a, c = faces[b, f, lo, :2], faces[b, f, hi, :2]

                def side(p):
                    return torch.sign((c[0] - a[0]) * (p[1] - a[1]) - (c[1] - a[1]) * (p[0] - a[0])).item()
                mine = side(faces[b, f, (k + 2) % 3, :2])
                for g in range(F):
                    other = indices[b, g].tolist()
                    if g == f or i not in other or j not in other or len(set(other)) < 3:
                        continue
                    third = [n for n in range(3) if other[n] not in (i, j)]
                    if not third or other[third[0]] == o:
                        continue
                    if mine * side(faces[b, g, third[0], :2]) < 0:
                        out[b, f, k] = False
    return out


def test_the_silhouette_rule_matches_a_brute_force_reading_of_the_mesh():
    """A bumpy sphere-like mesh from several views (with fill_back's reversed copies, a padding row
    and a degenerate face): the sorted-edge rule equals the one-edge-at-a-time reading."""
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
    cube_v, cube_f = _cube()
    g = torch.Generator().manual_seed(0)
    vertices = torch.cat([cube_v + 0.1 * torch.randn(cube_v.shape, generator=g), v * 0.3 + 2.0])[None]
    faces = torch.cat([cube_f, f + 8, torch.tensor([[0, 0, 1], [-1, -1, -1]])])[None]
    faces = nr.fill_back(faces)[0]
    for azimuth in (0, 40, 135):
        renderer = nr.Renderer(image_size=8, camera_mode="look_at")
        renderer.eye = nr.get_points_from_angles(4.0, 25, azimuth)
        screen = nr.vertices_to_faces(renderer.transform(vertices), faces)
        assert torch.equal(silhouette_edges(screen, faces), _brute_force_silhouettes(screen, faces))


@pytest.mark.parametrize("backend", FAST)
def test_a_meshs_interior_edges_are_not_blended_but_screen_space_faces_are(backend):
    """Through the Renderer (mesh topology, after fill_back) a cube blends only pairs with one pixel
    on the background, whose crossing edges are its outline; the same screen-space faces through
    rasterize_rgbad (no topology: every edge a candidate) also blend across its visible edges."""
    v, f = _cube()
    renderer = nr.Renderer(image_size=32, camera_mode="look_at", anti_aliasing=False, backend=backend,
                           gradient="analytic")
    renderer.eye = nr.get_points_from_angles(2.5, 30, 45)
    colours = torch.rand(1, 12, 1, 1, 1, 3, generator=torch.Generator().manual_seed(0))
    rgb, _, alpha = renderer(v[None], f[None], colours)
    hard = nr.Renderer(image_size=32, camera_mode="look_at", anti_aliasing=False, backend=backend)
    hard.eye = renderer.eye
    rgb_hard, _, alpha_hard = hard(v[None], f[None], colours)
    changed = (rgb != rgb_hard).any(1) | (alpha != alpha_hard)
    assert changed.sum() > 20
    inside = alpha_hard.bool()
    interior = inside.clone()  # covered pixels whose four neighbours are covered too
    interior[:, 1:] &= inside[:, :-1]
    interior[:, :-1] &= inside[:, 1:]
    interior[:, :, 1:] &= inside[:, :, :-1]
    interior[:, :, :-1] &= inside[:, :, 1:]
    assert not (changed & interior).any()
    screen = nr.vertices_to_faces(renderer.transform(v[None]), nr.fill_back(f[None])[0])
    textures = nr.fill_back(f[None], colours)[1]
    screen_rgb = nr.rasterize(screen, textures, 32, False, backend=backend, gradient="analytic")
    assert ((screen_rgb != rgb_hard).any(1) & interior).sum() > 5


# ----------------------------------------------------------------------------------------------
# Through the Renderer: every shader, batches, the near plane, degenerate faces
# ----------------------------------------------------------------------------------------------
class _FaceFeatures(nr.Shader):
    """A custom shader in plain torch (no backend op of its own): each face's feature vector (B, F, C)."""

    def fill_back(self, attributes):
        return torch.cat([attributes, attributes], 1)

    def shade(self, fragments, features, backend="auto"):
        index = fragments.face_index
        b = torch.arange(index.shape[0], device=index.device)[:, None, None]
        return torch.where((index >= 0)[..., None], features[b, index.clamp(min=0)], 0.0)


def _shaded(kind, faces, vertices, g):
    F, V = faces.shape[1], vertices.shape[1]
    if kind == "cubes":
        return None, torch.rand(1, F, 2, 2, 2, 3, generator=g).requires_grad_()
    if kind == "vertex colours":
        return None, torch.rand(1, V, 3, generator=g).requires_grad_()
    if kind == "uv":
        uvs = torch.rand(1, F, 3, 2, generator=g)
        return nr.UVTextureShader(), (uvs.requires_grad_(), torch.rand(1, 4, 5, 3, generator=g).requires_grad_())
    return _FaceFeatures(), torch.rand(1, F, 2, generator=g).requires_grad_()


def _render(backend, kind, size=(10, 13), anti_aliasing=True, eye=(2.732, 30, 45)):
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
    vertices = v[None].to(_device(backend)).requires_grad_()
    faces = f[None].to(_device(backend))
    shader, textures = _shaded(kind, faces, vertices, torch.Generator().manual_seed(1))
    attributes = tuple(t.to(_device(backend)) for t in textures) if isinstance(textures, tuple) \
        else textures.to(_device(backend))
    renderer = nr.Renderer(image_size=size, camera_mode="look_at", anti_aliasing=anti_aliasing, backend=backend,
                           gradient="analytic")
    renderer.eye = nr.get_points_from_angles(*eye)
    rgb, depth, alpha = renderer.render(vertices, faces, attributes, shader=shader)
    g = torch.Generator().manual_seed(2)
    (rgb * torch.randn(rgb.shape, generator=g).to(rgb.device)).sum().backward(retain_graph=True)
    ((alpha + 0.01 * depth) * torch.randn(alpha.shape, generator=g).to(alpha.device)).sum().backward()
    leaves = [vertices] + (list(attributes) if isinstance(attributes, tuple) else [attributes])
    return [t.detach().cpu() for t in (rgb, alpha)] + [t.grad.cpu() for t in leaves]


@pytest.mark.parametrize("kind", ["cubes", "vertex colours", "uv", "custom"])
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "torch"])
def test_every_shader_renders_and_differentiates_like_the_reference(kind, backend):
    """Anti-aliased (the blend at twice the size), non-square: images and every gradient equal."""
    expected = _render("torch", kind)
    got = _render(backend, kind)
    assert expected[2].abs().sum() > 0
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(b.abs().max().item(), 1.0))


def test_the_estimator_changes_the_image_and_its_vertex_gradient():
    """Against the blurred edge on the same scene: silhouette pixels become fractional, the interior
    is untouched, and the vertex gradient differs (a different estimator)."""
    blurred = nr.Renderer(image_size=16, camera_mode="look_at", anti_aliasing=False)
    blurred.eye = nr.get_points_from_angles(2.732, 30, 45)
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
    hard = blurred(v[None], f[None], mode="silhouettes")
    got = _render("torch", "cubes", size=16, anti_aliasing=False)[1]
    fractional = (got > 0) & (got < 1)
    assert fractional.sum() >= 8 and torch.equal(got[~fractional], hard[~fractional])


@pytest.mark.parametrize("backend", FAST)
def test_a_mixed_size_batch_renders_each_mesh_as_alone(backend):
    """Lists of meshes (a tetrahedron, a cube, a teapot) padded into one batch: each entry's images and
    gradients are those of rendering it alone. (The teapot's triangles at its outline are thinner
    than a pixel below about this size, where its pairs' exit edges are interior ones: no gradient.)"""
    tv, tf = nr.load_obj(nr.data_path("tetrahedron.obj"))
    cv, cf = _cube()
    pv, pf = nr.load_obj(nr.data_path("teapot.obj"))
    meshes = [(tv, tf), (cv, cf), (pv * 0.8, pf)]
    renderer = nr.Renderer(image_size=(40, 34), camera_mode="look_at", backend=backend, gradient="analytic")
    renderer.eye = nr.get_points_from_angles(2.732, 30, 60)

    def run(group):
        vertices = [v.clone().requires_grad_() for v, _ in group]
        silhouettes = renderer([v for v in vertices], [f for _, f in group], mode="silhouettes")
        weights = torch.linspace(-1, 1, silhouettes[0].numel()).view(silhouettes.shape[1:])
        (silhouettes * weights).sum().backward()
        return silhouettes.detach(), [v.grad for v in vertices]

    together, grads = run(meshes)
    for n, mesh in enumerate(meshes):
        alone, alone_grads = run([mesh])
        torch.testing.assert_close(together[n], alone[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(grads[n], alone_grads[0], rtol=1e-5, atol=1e-5)
    assert all(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("backend", BACKENDS)
def test_faces_cut_by_the_near_plane(backend):
    """A camera inside the cube's reach: clipped pieces (every edge a candidate) stay finite, equal
    to the reference, and the whole faces keep their topology."""
    v, f = _cube()
    results = []
    for which in ("torch", backend):
        vertices = v[None].to(_device(which)).requires_grad_()
        renderer = nr.Renderer(image_size=(6, 7), camera_mode="look_at", near=0.5, backend=which, gradient="analytic")
        renderer.eye = [0.2, 0.3, -1.1]
        alpha = renderer(vertices, f[None].to(_device(which)), mode="silhouettes")
        (alpha * torch.linspace(0, 1, alpha.numel(), device=alpha.device).view(alpha.shape)).sum().backward()
        results.append((alpha.detach().cpu(), vertices.grad.cpu()))
    (alpha, grad), (mine, mine_grad) = results
    assert 0 < alpha.mean() < 1 and torch.isfinite(grad).all() and grad.abs().sum() > 0
    torch.testing.assert_close(mine, alpha, rtol=0, atol=1e-6)
    torch.testing.assert_close(mine_grad, grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_degenerate_faces_are_finite_and_equal_the_reference(backend):
    """Zero-area faces and faces with z = 0 among real ones (and, to the ops, a NaN face that covers
    nothing); repeated vertex indices in a mesh: finite, the reference's, and no gradient to what is
    not drawn."""
    faces = random_faces(1, 8, seed=4, spread=0.6)
    faces[0, 1, 2] = faces[0, 1, 0]  # zero area
    faces[0, 2] = faces[0, 2].flip(0)  # back-facing
    faces[0, 3, :, 2] = 0.0
    colours = torch.rand(1, 8, 1, 1, 1, 3, generator=torch.Generator().manual_seed(0))
    results = []
    for which in ("torch", backend):
        f = faces.clone().to(_device(which)).requires_grad_()
        out = nr.rasterize_rgbad(f, colours.to(f.device), (7, 9), False, backend=which, gradient="analytic")
        (out["rgb"].sum() + out["alpha"].sum()).backward()
        results.append((out["rgb"].detach().cpu(), out["alpha"].detach().cpu(), f.grad.cpu()))
    for a, b in zip(*results):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert torch.equal(results[1][2][0, 1:4], torch.zeros(3, 3, 3)) and results[1][2].abs().sum() > 0
    scene = list(_op_scene(1, 6, (7, 9), seed=4))
    scene[0][0, 5] = float("nan")  # drawn nowhere
    scene[1], _, scene[2] = ref.rasterize_fragments(scene[0], 7, 9, 0.1, 100.0)
    assert (scene[1] >= 0).any() and not (scene[1] == 5).any()
    alpha, edge = ref.antialias_pairs(*scene[:4])
    mine = _ops(backend).antialias_pairs(*(t.to(_device(backend)) for t in scene[:4]))
    assert torch.equal(mine[0].cpu(), alpha) and torch.equal(mine[1].cpu(), edge)
    v, f = _cube()
    f = torch.cat([f, torch.tensor([[0, 0, 7], [1, 2, 1]])])  # repeated indices in the mesh
    renderer = nr.Renderer(image_size=8, camera_mode="look_at", backend=backend, gradient="analytic")
    vertices = v[None].to(_device(backend)).requires_grad_()
    renderer(vertices, f[None].to(_device(backend)), mode="silhouettes").sum().backward()
    assert torch.isfinite(vertices.grad).all()


def test_the_shape_fit_runs_with_the_analytic_gradient(tmp_path):
    """tritonnmr fit shape --gradient analytic: the silhouette IoU grows (example 2's target)."""
    out = str(tmp_path / "fit")
    assert main(["fit", "shape", "--gradient", "analytic", "--out", out, "--image-size", "32", "--iterations", "15",
                 "--frame-every", "5", "--lr", "0.01", "--backend", FAST[-1]]) == 0
    with open(f"{out}/metrics.json") as fh:
        metrics = json.load(fh)
    assert metrics["gradient"] == "analytic" and metrics["iou_final"] > metrics["iou_initial"]


def test_bad_arguments_are_one_line_errors():
    faces = random_faces(1, 3, seed=0)
    frags = nr.rasterize_fragments(faces, 4)
    with pytest.raises(ValueError, match="image must have shape"):
        analytic.antialias(torch.zeros(1, 5, 4, 1), frags)
    with pytest.raises(ValueError, match="silhouette must be a bool tensor"):
        analytic.antialias(torch.zeros(1, 4, 4, 1), frags, torch.ones(1, 3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="gradient must be one of"):
        nr.rasterize_silhouettes(faces, 4, gradient="analytical")


# ----------------------------------------------------------------------------------------------
# Fuzz: every backend agrees with the reference and stays finite
# ----------------------------------------------------------------------------------------------
XY = [-1.5, -1.0, -0.5, -1 / 3, 0.0, 0.25, 0.5, 2 / 3, 1.0, 1.25]


@st.composite
def scenes(draw, max_faces=5, max_size=7):
    B, F = draw(st.integers(1, 2)), draw(st.integers(1, max_faces))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    coord = st.one_of(st.sampled_from(XY), st.floats(-1.25, 1.25, width=32))
    depth = st.one_of(st.sampled_from([0.5, 1.0, 1.0, 2.0]), st.floats(0.0625, 3.0, width=32))
    faces = torch.tensor(draw(st.lists(st.lists(st.tuples(coord, coord, depth), min_size=3, max_size=3),
                                       min_size=B * F, max_size=B * F)), dtype=torch.float32).view(B, F, 3, 3)
    silhouette = torch.tensor(draw(st.lists(st.booleans(), min_size=B * F * 3, max_size=B * F * 3))).view(B, F, 3)
    return faces, (H, W), silhouette, draw(st.integers(0, 2 ** 16))


def _fuzz(faces, size, silhouette, seed, backend):
    device = _device(backend)
    g = torch.Generator().manual_seed(seed)
    frags = nr.rasterize_fragments(faces.to(device), size, backend=backend)
    image = torch.rand(frags.face_index.shape + (2,), generator=g).to(device).requires_grad_()
    f = frags.faces.detach().clone().requires_grad_()
    out = analytic.antialias(image, frags._replace(faces=f), silhouette.to(device), backend=backend)
    (out * torch.randn(out.shape, generator=g).to(device)).sum().backward()
    return [t.detach().cpu() for t in (out, image.grad, f.grad)]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "torch"])
def test_fuzz_every_backend_agrees_with_the_reference(backend):
    examples = 60 if backend == "numba" or torch.cuda.is_available() else 15

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenes(max_size=7 if backend == "numba" else 5))
    def check(scene):
        expected = _fuzz(*scene, "torch")
        got = _fuzz(*scene, backend)
        for a, b in zip(got, expected):
            assert torch.isfinite(a).all()
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        torch.testing.assert_close(got[2], expected[2], rtol=1e-5, atol=1e-5 * max(expected[2].abs().max().item(), 1))

    check()
