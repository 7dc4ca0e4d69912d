"""What the first GPU run needs and no interpreter test sees: the host code does not stall the queue,
every launch runs under its tensors' device, autocast does not leak half precision into the
geometry, and user-made UV tables are checked before any kernel reads them.

The host code is the same on the CPU and on CUDA, so its reads and copies are counted here
(``host_traffic``) on CPU tensors with the Triton backend in the interpreter.
"""
import contextlib

import pytest
import torch

import host_traffic
import tritonnmr as nr
from conftest import random_faces
from tritonnmr import backends, checks
from tritonnmr.backends.triton import binning
from tritonnmr.shading import PackedUV

triton_backend = pytest.mark.skipif(not (backends.interpreter_enabled() or torch.cuda.is_available()),
                                    reason="the Triton backend needs CUDA or TRITON_INTERPRET=1")
BACKENDS = ["torch", "numba"] + (["triton"] if backends.interpreter_enabled() or torch.cuda.is_available() else [])

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # compiled on a GPU, else interpreted

# the goal of the counted training step (issue 21): at most this many reads, no tensor from host data
FORWARD_READS = 3
BACKWARD_READS = 3


def _mesh(device="cpu"):
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
    return v[None].to(device), f[None].to(device)


def _textures(kind, faces, vertices):
    g = torch.Generator().manual_seed(0)
    device = vertices.device
    if kind == "cubes":
        return torch.rand(1, faces.shape[1], 2, 2, 2, 3, generator=g).to(device).requires_grad_()
    if kind == "vertex colours":
        return torch.rand(1, vertices.shape[1], 3, generator=g).to(device).requires_grad_()
    uvs = torch.rand(faces.shape[1], 3, 2, generator=g)
    return nr.UVMap(uvs, torch.zeros(faces.shape[1], dtype=torch.int64), [torch.rand(4, 5, 3, generator=g)]).to(device)


@triton_backend
@pytest.mark.parametrize("kind", ["cubes", "vertex colours", "uv"])
def test_a_training_step_reads_back_little_and_copies_nothing(kind):
    """RGB and alpha, anti-aliased, look_at, with a camera behind (so clipping is decided): the second
    step makes at most 3 host reads forward and 3 backward, and builds no tensor from host data."""
    vertices, faces = _mesh(TRITON_DEVICE)
    textures = _textures(kind, faces, vertices)
    renderer = nr.Renderer(image_size=4, camera_mode="look_at", backend="triton")
    renderer.eye = nr.get_points_from_angles(2.732, 30, 45)
    checks._cached.cache_clear()
    steps = []
    for _ in range(2):
        v = vertices.clone().requires_grad_()
        with host_traffic.count() as forward:
            rgb, depth, alpha = renderer(v, faces, textures)
            loss = rgb.sum() + alpha.sum() + depth.sum()
        with host_traffic.count() as backward:
            loss.backward()
        assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0
        steps.append((forward, backward))
    forward, backward = steps[1]
    assert len(forward.reads) <= FORWARD_READS, f"forward: {forward}"
    assert len(backward.reads) <= BACKWARD_READS, f"backward: {backward}"
    assert not forward.built and not backward.built, f"forward: {forward}; backward: {backward}"
    assert steps[0][0].built, "the first call fills the constant cache (else the count would see nothing)"


def test_the_counter_sees_reads_and_host_data():
    """host_traffic counts what tritonnmr's own code asks for, not what a caller does."""
    with host_traffic.count() as mine:
        x = torch.arange(4.0)
        bool(x.sum() > 1), torch.tensor([1.0]), x.tolist()
    assert not mine.reads and not mine.built
    with host_traffic.count() as theirs:
        nr.rasterize_silhouettes(random_faces(1, 3, seed=0), image_size=4, anti_aliasing=False, backend="torch")
    assert theirs.reads  # the reference reads (nonzero): it is not the GPU path


@triton_backend
def test_every_triton_op_runs_under_its_tensors_device(monkeypatch):
    """Triton launches on the current CUDA device, so each op enters its tensors' device first: with
    the guard mocked, every launch of a render (cubes, vertex colours, UV, forward and backward)
    happens inside it, for the device the tensors are on."""
    from tritonnmr.backends import triton as kernels
    entered, inside = [], []

    @contextlib.contextmanager
    def guard(tensor):
        entered.append(tensor.device)
        inside.append(tensor.device)
        try:
            yield
        finally:
            inside.pop()

    launch = kernels._launch

    def checked_launch(kernel, grid, lanes):
        assert inside, f"{kernel.fn.__name__} launched outside its device's guard"
        return launch(kernel, grid, lanes)

    monkeypatch.setattr(kernels, "device_of", guard)
    monkeypatch.setattr(kernels, "_launch", checked_launch)
    vertices, faces = _mesh(TRITON_DEVICE)
    renderer = nr.Renderer(image_size=4, camera_mode="look_at", backend="triton")
    for kind in ("cubes", "vertex colours", "uv"):
        v = vertices.clone().requires_grad_()
        rgb, depth, alpha = renderer(v, faces, _textures(kind, faces, vertices))
        (rgb.sum() + depth.sum() + alpha.sum()).backward()
    assert entered and set(entered) == {vertices.device}
    # every op of the contract is guarded
    for op in backends.OPS:
        assert getattr(kernels, op.name).__wrapped__, op.name


AUTOCASTS = [("cpu", backend, torch.bfloat16) for backend in BACKENDS if backend != "triton" or TRITON_DEVICE == "cpu"] \
    + [pytest.param("cuda", backend, dtype, marks=cuda) for backend in ("torch", "triton")
       for dtype in (torch.float16, torch.bfloat16)]


@pytest.mark.parametrize("device, backend, dtype", AUTOCASTS)
def test_autocast_keeps_the_picture_and_the_gradients_in_float32(device, backend, dtype):
    """Under autocast (CPU bfloat16; CUDA float16 and bfloat16) the camera's matrix products would
    round positions to 2^-8; the renderer runs float32 inside, so images and gradients equal those
    without autocast, and a half-precision network upstream gets finite gradients."""
    vertices, faces = _mesh(device)
    textures = _textures("cubes", faces, vertices).detach()
    renderer = nr.Renderer(image_size=8, camera_mode="look_at", backend=backend)
    renderer.eye = nr.get_points_from_angles(2.732, 30, 45)

    def step(autocast):
        v = vertices.clone().requires_grad_()
        with torch.autocast(device, dtype=dtype, enabled=autocast):
            rgb, depth, alpha = renderer(v, faces, textures)
            sil = renderer(v, faces, mode="silhouettes")
            loss = rgb.sum() + alpha.sum() + depth.sum() + sil.sum()
        loss.backward()
        return rgb, depth, alpha, v.grad

    plain, mixed = step(False), step(True)
    for a, b in zip(plain, mixed):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    assert plain[-1].abs().sum() > 0

    layer = torch.nn.Linear(3, 3).to(device)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(3))
        layer.bias.zero_()
    with torch.autocast(device, dtype=dtype):
        moved = layer(vertices)
        assert moved.dtype == dtype
        alpha = renderer(moved, faces, mode="silhouettes")
        screen = renderer.transform(vertices)
        silhouettes = nr.rasterize_silhouettes(nr.vertices_to_faces(screen, faces).to(dtype), image_size=8,
                                               backend=backend)
    assert alpha.dtype == silhouettes.dtype == torch.float32
    ((alpha - 0.5) ** 2).sum().backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


def test_user_made_packed_uv_tables_are_checked_before_any_kernel():
    """A PackedUV with a part on another device, a material past the table or a table row past the
    texels gets a one-line error naming it, not a crash inside a kernel."""
    faces = random_faces(1, 2, seed=3)
    uvs = torch.rand(1, 2, 3, 2)
    material = torch.zeros(1, 2, dtype=torch.int64)
    texels = torch.rand(6, 3)
    table = torch.tensor([[0, 2, 3]])
    good = PackedUV(uvs, material, texels, table, 0)
    nr.rasterize(faces, good, 4, backend="torch", shader=nr.UVTextureShader())
    for packed, match in ((good._replace(material=material.to("meta")), "textures.material on meta"),
                          (good._replace(material=material + 1), "textures.material must index the 1 rows"),
                          (good._replace(table=torch.tensor([[2, 2, 3]])), "textures.table rows"),
                          (good._replace(uvs=uvs[:, :1]), r"uvs \(B=1, F=2, 3, 2\)")):
        with pytest.raises(ValueError, match=match):
            nr.rasterize(faces, packed, 4, backend="torch", shader=nr.UVTextureShader())


def test_rendering_the_same_uv_map_twice_packs_it_once():
    """The packed texels of a UVMap whose images need no gradient are made once (then reused), and
    again after an image changes in place; images that need a gradient are packed every call."""
    from tritonnmr import shading
    vertices, faces = _mesh()
    uv_map = _textures("uv", faces, vertices)
    first = shading._texels(uv_map)
    assert shading._texels(uv_map) is first
    uv_map.images[0].mul_(0.5)
    again = shading._texels(uv_map)
    assert again is not first
    torch.testing.assert_close(again, uv_map.images[0].reshape(-1, 3))
    uv_map.images[0].requires_grad_()
    a, b = shading._texels(uv_map), shading._texels(uv_map)
    assert a is not b and a.requires_grad and b.grad_fn is not None


@pytest.mark.parametrize("seed", range(3))
def test_the_plans_sizes_come_from_one_read_and_match_the_lists(seed):
    """tile_counts (from the tile ranges, before any pair is listed) equals the tile lists' own
    counts; compact equals nonzero; pixel counts equal the pixel lists'; starts and stops are int64."""
    faces = torch.cat([random_faces(2, 30, seed=seed), random_faces(2, 3, seed=seed + 9, spread=0.2)], 1)
    H, W, tile = 13, 21, 8
    ranges = binning.tile_ranges(binning.face_boxes(faces, H, W, 0.1, 100.0), tile)
    lists = binning.tile_lists(ranges, 2, faces.shape[1], H, W, tile)
    counts = binning.tile_counts(ranges, 2, faces.shape[1], H, W, tile)
    assert torch.equal(binning.starts_of(counts), lists.starts)
    mask = torch.rand(50, generator=torch.Generator().manual_seed(seed)) > 0.5
    assert torch.equal(binning.compact(mask, int(mask.sum())), torch.nonzero(mask).flatten())
    face_index = nr.rasterize_fragments(faces, (H, W), backend="torch").face_index
    plists, items = binning.pixel_items(face_index, faces.shape[1], 1, 4, 64)
    assert torch.equal(binning.starts_of(binning.pixel_counts(face_index, faces.shape[1])), plists.starts)
    assert items.start.dtype == items.stop.dtype == torch.int64
    assert items.num_slots == int(items.split_count.sum())


@cuda
def test_a_training_step_on_the_gpu_synchronises_little():
    """CUDA's own count: with the sync debug mode on, the reconstruction-sized step (32 silhouettes
    and RGB of the teapot at 64^2, anti-aliased) warns at most 3 times forward and 3 times backward
    once compiled."""
    import warnings
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cuda")
    v, f = v[None].repeat(32, 1, 1), f[None].repeat(32, 1, 1)
    textures = torch.rand(32, f.shape[1], 2, 2, 2, 3, device="cuda", requires_grad=True)
    renderer = nr.Renderer(image_size=64, camera_mode="look_at", backend="triton")
    renderer.eye = nr.get_points_from_angles(2.732, 30, 45)
    counts = []
    for _ in range(2):
        vv = v.clone().requires_grad_()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as forward:
                warnings.simplefilter("always")
                rgb, depth, alpha = renderer(vv, f, textures)
                loss = rgb.sum() + alpha.sum()
            with warnings.catch_warnings(record=True) as backward:
                warnings.simplefilter("always")
                loss.backward()
        finally:
            torch.cuda.set_sync_debug_mode(0)
        counts.append(tuple(sum("synchroniz" in str(w.message) for w in ws) for ws in (forward, backward)))
    assert counts[1][0] <= FORWARD_READS and counts[1][1] <= BACKWARD_READS, counts
