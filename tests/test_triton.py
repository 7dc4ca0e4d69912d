"""The Triton backend against the PyTorch reference (on CPU through Triton's interpreter).

Scenes are small (each interpreted program costs milliseconds per loop trip) but reach every path:
full-screen quads (one face over many tiles), many faces in one tile (long tile lists, cut into
items and merged: forced at this size with ``tuning.override``), identical faces (ties), faces
off the image and across the near plane, back faces, odd and non-square sizes, several batch
entries. No kernel may divide by zero, even in a masked-off lane: the interpreter computes those
lanes with numpy, so here any such warning is an error.
"""
import inspect
import re

import numpy as np
import pytest
import torch
from triton.runtime.jit import JITFunction

import tritonnmr as nr
from conftest import random_faces
from tritonnmr import backends
from tritonnmr.backends import torch as ref

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
pytestmark = [pytest.mark.filterwarnings(f"error:{m} encountered:RuntimeWarning")
              for m in ("divide by zero", "invalid value", "overflow")]

if backends.interpreter_enabled() or torch.cuda.is_available():
    from tritonnmr.backends import triton as kernels
    from tritonnmr.backends.triton import binning, tuning
    from tritonnmr.bench import zbuffers

# the smallest items every plan allows: tile lists, pixel lists and edge runs are all cut
CUT = dict(min_faces=4, item_trips=1, edge_trips=1, merge_rows=2, reduce_rows=2)


@pytest.fixture(params=[d for d, ok in (("cpu", backends.interpreter_enabled()), ("cuda", torch.cuda.is_available()))
                        if ok])
def device(request):
    """Where the Triton backend runs: CPU tensors in the interpreter, CUDA tensors compiled."""
    return torch.device(request.param)


def _quad(depth=2.0):
    """Two triangles covering the whole screen, counter-clockwise: (2, 3, 3)."""
    return torch.tensor([[[-1.0, -1, depth], [1, -1, depth], [1, 1, depth]],
                         [[-1.0, -1, depth], [1, 1, depth], [-1, 1, depth]]])


def _scene(batch, seed, device, crowd=10):
    """Random faces (overlapping, about half back-facing, some off the image or across near), a
    full-screen quad behind them, ``crowd`` small faces piled into one corner (a long tile list),
    and the first random face once more (a tie: the lower index must win)."""
    faces = random_faces(batch, 12, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    corner = torch.tensor([[-0.9, -0.9], [-0.55, -0.85], [-0.7, -0.5]])
    crowd_faces = corner + torch.rand(batch, crowd, 1, 2, generator=g) * 0.2
    crowd_faces = torch.cat([crowd_faces, torch.rand(batch, crowd, 3, 1, generator=g) * 2 + 1], -1)
    quad = _quad(4.0).expand(batch, 2, 3, 3)
    return torch.cat([faces, quad, crowd_faces, faces[:, :1]], 1).contiguous().to(device)


def _fragments_match(a, b):
    assert torch.equal(a[0], b[0])
    assert torch.allclose(a[1], b[1], atol=1e-6)
    assert torch.allclose(a[2], b[2], atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Forward: every strategy equals the reference
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["binned", "face", "pixel-loop"])
def test_fragments_of_every_strategy_equal_reference(device, strategy):
    faces = _scene(2, seed=0, device=device)
    expected = ref.rasterize_fragments(faces, 13, 21, 0.1, 100.0)  # odd, non-square
    index = expected[0]
    assert (index >= 0).all() and ((index >= 14) & (index < 24)).any()  # the quad and the crowd are drawn
    assert not (index == 24).any()  # face 24 is face 0 again: it never wins
    _fragments_match(expected, zbuffers.rasterize_fragments(faces, 13, 21, 0.1, 100.0, strategy))


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (6, 1), (17, 9)])
def test_binned_fragments_on_thin_images_and_cut_lists(device, size):
    faces = _scene(2, seed=1, device=device)
    expected = ref.rasterize_fragments(faces, *size, 0.1, 100.0)
    _fragments_match(expected, kernels.rasterize_fragments(faces, *size, 0.1, 100.0))
    with tuning.override(**CUT):
        plan = binning.binned_plan(faces, *size, 0.1, 100.0, 8, 4, tuning.PROGRAMS, 4)
        assert plan.items.split_segment.numel() > 0  # some tile list was cut into items
        _fragments_match(expected, kernels.rasterize_fragments(faces, *size, 0.1, 100.0))


def test_identical_faces_in_a_cut_list_keep_the_lowest_index(device):
    """Twelve copies of one triangle: every tile's list is cut into three items, merged; the
    first copy must win everywhere, as the reference's 64-bit keys say."""
    one = torch.tensor([[[-0.8, -0.7, 2.0], [0.9, -0.6, 2.5], [0.1, 0.9, 3.0]]])
    faces = torch.cat([random_faces(1, 3, seed=4, spread=0.5) + torch.tensor([0, 0, 5.0]),
                       one.expand(12, 3, 3)[None]], 1).contiguous().to(device)
    with tuning.override(**CUT):
        frags = kernels.rasterize_fragments(faces, 16, 16, 0.1, 100.0)
    assert torch.equal(frags[0], ref.rasterize_fragments(faces, 16, 16, 0.1, 100.0)[0])
    assert (frags[0] == 3).sum() > 50 and not ((frags[0] > 3)).any()


def test_bad_strategy_names_are_refused():
    with pytest.raises(ValueError, match="strategy must be one of binned, face, pixel-loop"):
        zbuffers.rasterize_fragments(_scene(1, seed=0, device="cpu"), 4, 4, 0.1, 100.0, "scanline")


def test_teapot_silhouette_matches_blender_pixel_for_pixel():
    """The binned forward through the whole Renderer at 256 x 256 (a few hundred tile programs in
    the interpreter), against the silhouette Blender rendered."""
    import imageio.v3 as iio
    device = "cuda" if torch.cuda.is_available() else "cpu"  # compiled on a GPU, else interpreted
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device=device)
    renderer = nr.Renderer(camera_mode="look_at", anti_aliasing=False, backend="triton")
    ours = renderer.render_silhouettes(v[None], f[None])[0].cpu().numpy()
    blender = (iio.imread(nr.data_path("teapot_blender.png")) != 255).any(-1)
    assert blender.sum() > 5000
    assert np.array_equal(ours > 0.5, blender)


# ----------------------------------------------------------------------------------------------
# Every op against the reference, lists whole and cut
# ----------------------------------------------------------------------------------------------
def _close(a, b, scale=None):
    scale = scale if scale is not None else max(1.0, a.abs().max().item() if a.numel() else 1.0)
    assert a.shape == b.shape and torch.isfinite(b).all()
    assert torch.allclose(a, b, atol=1e-5 * scale, rtol=1e-4), (a - b).abs().max()


@pytest.fixture(params=[False, True], ids=["whole", "cut"])
def cut(request):
    if request.param:
        with tuning.override(**CUT):
            yield True
    else:
        yield False


def _ops_scene(device, size=(11, 14)):
    faces = _scene(2, seed=2, device=device)
    fi, w, d = ref.rasterize_fragments(faces, *size, 0.1, 100.0)
    return faces, fi, w, d, ref.perspective_barycentrics(faces, fi, w, d)


def test_barycentrics_and_depth_gradient(device, cut):
    faces, fi, w, d, bary = _ops_scene(device)
    assert torch.allclose(kernels.perspective_barycentrics(faces, fi, w, d), bary, atol=1e-6)
    g = torch.randn(d.shape, generator=torch.Generator().manual_seed(0)).to(device)
    _close(ref.depth_backward(faces, fi, w, d, g), kernels.depth_backward(faces, fi, w, d, g))


@pytest.mark.parametrize("cut_lists, channels", [(False, 1), (False, 3), (True, 5)],
                         ids=["whole-1", "whole-3", "cut-5"])
def test_blurred_edge_gradient(device, cut_lists, channels):
    with tuning.override(**(CUT if cut_lists else {})):
        _edge_gradient(device, channels)


def _edge_gradient(device, channels):
    faces, fi, *_ = _ops_scene(device)
    g = torch.Generator().manual_seed(channels)
    image = torch.rand(fi.shape + (channels,), generator=g).to(device)
    grad = torch.randn(fi.shape + (channels,), generator=g).to(device)
    expected = ref.edge_backward(faces, fi, image, grad, 1e-3)
    assert (expected != 0).sum() > 20
    _close(expected, kernels.edge_backward(faces, fi, image, grad, 1e-3))


@pytest.mark.parametrize("size", [1, 2, 3])
def test_texture_cubes_and_their_gradient(device, cut, size):
    faces, fi, _, _, bary = _ops_scene(device)
    g = torch.Generator().manual_seed(size)
    textures = torch.rand(2, faces.shape[1], size, size, size, 2, generator=g).to(device)
    grad = torch.randn(fi.shape + (2,), generator=g).to(device)
    _close(ref.sample_cubes(fi, bary, textures, 1e-3), kernels.sample_cubes(fi, bary, textures, 1e-3))
    expected = ref.sample_cubes_backward(fi, bary, grad, textures, 1e-3)
    assert expected.abs().sum() > 0
    _close(expected, kernels.sample_cubes_backward(fi, bary, grad, textures, 1e-3))


@pytest.mark.parametrize("channels", [1, 5])
def test_vertex_colours_and_their_gradient(device, cut, channels):
    faces, fi, _, _, bary = _ops_scene(device)
    g = torch.Generator().manual_seed(channels)
    colours = torch.rand(2, faces.shape[1], 3, channels, generator=g).to(device)
    grad = torch.randn(fi.shape + (channels,), generator=g).to(device)
    _close(ref.interpolate(fi, bary, colours), kernels.interpolate(fi, bary, colours))
    _close(ref.interpolate_backward(fi, bary, grad, colours),
           kernels.interpolate_backward(fi, bary, grad, colours))


@pytest.mark.parametrize("wrap", [0, 1, 2], ids=["REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE"])
def test_uv_maps_and_their_gradients(device, cut, wrap):
    faces, fi, _, _, bary = _ops_scene(device)
    g = torch.Generator().manual_seed(wrap)
    F = faces.shape[1]
    uvs = (torch.rand(2, F, 3, 2, generator=g) * 3 - 1).to(device)  # outside [0, 1]: wrapping matters
    material = torch.randint(0, 2, (2, F), generator=g).to(device)
    table = torch.tensor([[0, 4, 5], [20, 3, 2]], device=device)  # two textures packed in one table
    texels = torch.rand(26, 3, generator=g).to(device)
    grad = torch.randn(fi.shape + (3,), generator=g).to(device)
    _close(ref.sample_uv(fi, bary, uvs, texels, material, table, wrap),
           kernels.sample_uv(fi, bary, uvs, texels, material, table, wrap))
    for a, b in zip(ref.sample_uv_backward(fi, bary, grad, uvs, texels, material, table, wrap),
                    kernels.sample_uv_backward(fi, bary, grad, uvs, texels, material, table, wrap)):
        assert a.abs().sum() > 0
        _close(a, b)


@pytest.mark.parametrize("size", [(1, 7), (6, 1)])
def test_every_op_on_one_row_or_column(device, size):
    faces, fi, w, d, bary = _ops_scene(device, size)
    g = torch.Generator().manual_seed(5)
    grad = torch.randn(fi.shape + (3,), generator=g).to(device)
    image = torch.rand(fi.shape + (3,), generator=g).to(device)
    g_depth = grad[..., 0].contiguous()
    _close(ref.depth_backward(faces, fi, w, d, g_depth), kernels.depth_backward(faces, fi, w, d, g_depth))
    _close(ref.edge_backward(faces, fi, image, grad, 1e-3), kernels.edge_backward(faces, fi, image, grad, 1e-3))
    cubes = torch.zeros(2, faces.shape[1], 2, 2, 2, 3, device=device)
    _close(ref.sample_cubes_backward(fi, bary, grad, cubes, 1e-3),
           kernels.sample_cubes_backward(fi, bary, grad, cubes, 1e-3))


# ----------------------------------------------------------------------------------------------
# Through the renderer: images and every gradient
# ----------------------------------------------------------------------------------------------
def _render_both(faces, textures, size, seed, anti_aliasing=False):
    """rgb, alpha, depth and the gradients of a random loss, for each backend."""
    g = torch.Generator().manual_seed(seed)
    B = faces.shape[0]
    H, W = (size, size) if isinstance(size, int) else size
    w_rgb = torch.randn(B, 3, H, W, generator=g).to(faces.device)
    w_alpha = torch.randn(B, H, W, generator=g).to(faces.device)
    w_depth = torch.randn(B, H, W, generator=g).to(faces.device) * 0.1
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


def _assert_same(ref_out, tri_out):
    """rgb, alpha, depth, face and texture gradients: finite in both backends and equal."""
    for name, a, b in zip(("rgb", "alpha", "depth", "face grad", "texture grad"), ref_out, tri_out):
        assert a.shape == b.shape, name
        assert torch.isfinite(a).all() and torch.isfinite(b).all(), name
        assert torch.allclose(a, b, atol=1e-4 * max(1.0, a.abs().max().item() if a.numel() else 0.0)), name


def test_render_and_every_gradient_match_reference(device):
    faces = _scene(2, seed=3, device=device, crowd=4)
    textures = torch.rand(2, faces.shape[1], 3, 3, 3, 3, generator=torch.Generator().manual_seed(3)).to(device)
    ref_out, tri_out = _render_both(faces, textures, (10, 13), seed=4)
    _assert_same(ref_out, tri_out)
    assert ref_out[3].abs().sum() > 0 and ref_out[4].abs().sum() > 0


def test_anti_aliased_texture_and_face_gradients_match_reference(device):
    faces = random_faces(1, 8, seed=5, device=device)
    textures = torch.rand(1, 8, 2, 2, 2, 3, generator=torch.Generator().manual_seed(6)).to(device)
    ref_out, tri_out = _render_both(faces, textures, 6, seed=7, anti_aliasing=True)
    _assert_same(ref_out, tri_out)
    assert ref_out[4].abs().sum() > 0 and ((ref_out[1] > 0) & (ref_out[1] < 1)).any()  # blended edges


def test_anti_aliased_silhouette_gradients_match_reference(device):
    faces = random_faces(1, 10, seed=5, device=device)
    target = (torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(6)) > 0.5).float().to(device)
    grads = []
    for backend in ("torch", "triton"):
        f = faces.clone().requires_grad_()
        ((nr.rasterize_silhouettes(f, 8, backend=backend) - target) ** 2).sum().backward()
        grads.append(f.grad)
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-4 * grads[0].abs().max())


# ----------------------------------------------------------------------------------------------
# Determinism: tests that can fail in the interpreter too
# ----------------------------------------------------------------------------------------------
def _jit_sources(fn, seen=None):
    """The source of a @triton.jit function and of every @triton.jit helper it calls, recursively."""
    seen = set() if seen is None else seen
    if fn in seen:
        return ""
    seen.add(fn)
    source = inspect.getsource(fn.fn)
    for name in set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", source)):
        helper = fn.fn.__globals__.get(name)
        if isinstance(helper, JITFunction) or type(helper).__name__ == "InterpretedFunction":
            source += _jit_sources(helper, seen)
    return source


def _launched_kernels(run):
    """The kernels (the jit functions themselves) that ``run()`` launches."""
    from triton.runtime.jit import JITFunction as Jit
    classes = [Jit]
    try:
        from triton.runtime.interpreter import InterpretedFunction
        classes.append(InterpretedFunction)
    except ImportError:
        pass
    launched, originals = [], {cls: cls.__dict__["run"] for cls in classes}

    def hooked(original):
        def hook(self, *args, **kwargs):
            launched.append(self)
            return original(self, *args, **kwargs)
        return hook

    for cls, original in originals.items():
        cls.run = hooked(original)
    try:
        run()
    finally:
        for cls, original in originals.items():
            cls.run = original
    return {k.fn.__name__: k for k in launched}


def test_no_atomics_in_the_binned_forward_or_any_backward(device):
    """Structurally: no kernel that the binned forward or a backward launches (nor any helper they
    call) uses tl.atomic_*. The face-parallel forward is the control: its atomic_min is found."""
    faces = _scene(1, seed=8, device=device, crowd=4)
    F = faces.shape[1]
    g = torch.Generator().manual_seed(9)

    def everything():
        with tuning.override(**CUT):
            for shader, attributes in ((None, torch.rand(1, F, 2, 2, 2, 3, generator=g)),
                                       (nr.VertexColorShader(channels=2), torch.rand(1, F, 3, 2, generator=g)),
                                       (nr.UVTextureShader("MIRRORED_REPEAT"),
                                        (torch.rand(1, F, 3, 2, generator=g), torch.rand(1, 3, 4, 3, generator=g)))):
                f = faces.clone().requires_grad_()
                attrs = tuple(a.to(device).requires_grad_() for a in attributes) if isinstance(attributes, tuple) \
                    else attributes.to(device).requires_grad_()
                out = nr.rasterize_rgbad(f, attrs, (9, 7), False, background_color=(0.5,), backend="triton",
                                         shader=shader)
                (out["rgb"].sum() + out["alpha"].sum() + out["depth"].sum()).backward()

    launched = _launched_kernels(everything)
    assert {"tile_kernel", "merge_kernel", "edge_kernel", "depth_sums_kernel", "cube_sums_kernel",
            "interpolate_sums_kernel", "uv_sums_kernel", "texel_sums_kernel", "segment_sum_kernel"} <= set(launched)
    for name, kernel in launched.items():
        assert "atomic_" not in _jit_sources(kernel), f"{name} uses atomics"
    face_parallel = _launched_kernels(lambda: zbuffers.rasterize_fragments(faces, 9, 7, 0.1, 100.0, "face"))
    assert "atomic_min" in _jit_sources(face_parallel["coverage_kernel"])


def _shuffled(permutation_seed):
    """binning.split_segments, with its items handed to the programs in a random order (each item
    keeps its slot, so a result may differ only if it depends on the order programs run in)."""
    original = binning.split_segments

    def split(starts, limit, sizes=None):
        items = original(starts, limit, sizes)
        order = torch.randperm(items.num_items, generator=torch.Generator().manual_seed(permutation_seed))
        order = order.to(items.segment.device)
        return items._replace(segment=items.segment[order], start=items.start[order], stop=items.stop[order],
                              slot=items.slot[order])
    return split


def test_every_result_is_bit_identical_whatever_order_the_programs_run_in(device, monkeypatch):
    """The interpreter runs programs one after another in grid order; permuting which program gets
    which item changes that order. Any float atomic (or any other order-dependent sum) would then
    change the last bits of a gradient; the plans' fixed slot order must not."""
    faces = _scene(1, seed=10, device=device, crowd=6)
    F = faces.shape[1]
    g = torch.Generator().manual_seed(11)
    grad_rgb = torch.randn(1, 12, 12, 4, generator=g).to(device)
    cubes_shape, colours_shape = (1, F, 2, 2, 2, 4), (1, F, 3, 4)
    uvs = (torch.rand(1, F, 3, 2, generator=g) * 3 - 1).to(device)
    material = torch.zeros(1, F, dtype=torch.int64, device=device)
    table = torch.tensor([[0, 3, 5]], device=device)
    texels = torch.rand(15, 4, generator=g).to(device)

    def run():
        fi, w, d = kernels.rasterize_fragments(faces, 12, 12, 0.1, 100.0)
        bary = kernels.perspective_barycentrics(faces, fi, w, d)
        return (fi, w, d, kernels.depth_backward(faces, fi, w, d, grad_rgb[..., 0].contiguous()),
                kernels.edge_backward(faces, fi, grad_rgb.sigmoid(), grad_rgb, 1e-3),
                kernels.sample_cubes_backward(fi, bary, grad_rgb, torch.zeros(cubes_shape, device=device), 1e-3),
                kernels.interpolate_backward(fi, bary, grad_rgb, torch.zeros(colours_shape, device=device)),
                *kernels.sample_uv_backward(fi, bary, grad_rgb, uvs, texels, material, table, 0))

    # pixel lists in items of 16 (the quad's faces get 5 each), edge runs of the default 16 crossings
    with tuning.override(**dict(CUT, pixel_block=16, edge_trips=16)):
        plain = run()
        monkeypatch.setattr(binning, "split_segments", _shuffled(1))
        shuffled = run()
    for a, b in zip(plain, shuffled):
        assert torch.equal(a, b)
    assert all(t.abs().sum() > 0 for t in plain[3:])


@cuda
def test_backward_is_bit_identical_across_runs_on_the_gpu():
    faces = random_faces(1, 200, seed=7, device="cuda", spread=0.8)
    weights = torch.randn(1, 64, 64, device="cuda")
    textures = torch.rand(1, 200, 2, 2, 2, 3, device="cuda")
    grads = []
    for _ in range(3):
        f = faces.clone().requires_grad_()
        t = textures.clone().requires_grad_()
        out = nr.rasterize_rgbad(f, t, 64, False, backend="triton")
        ((out["rgb"].sum(1) + out["alpha"] + out["depth"]) * weights).sum().backward()
        grads.append((f.grad, t.grad))
    for f_grad, t_grad in grads[1:]:
        assert torch.equal(f_grad, grads[0][0]) and torch.equal(t_grad, grads[0][1])


# ----------------------------------------------------------------------------------------------
# Degenerate input: finite, equal to the reference, and exactly zero gradient to undrawn faces
# ----------------------------------------------------------------------------------------------
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
    ref_out, tri_out = _render_both(faces, torch.rand(shape, generator=g).to(device), 12, seed=14)
    _assert_same(ref_out, tri_out)
    assert ref_out[1].sum() > 10 and ref_out[3].abs().sum() > 0  # the other faces are drawn and get gradient
    assert torch.equal(tri_out[3][:, undrawn], torch.zeros_like(tri_out[3][:, undrawn]))
    assert torch.equal(tri_out[4][:, undrawn], torch.zeros_like(tri_out[4][:, undrawn]))


def test_nan_and_infinite_faces_cover_nothing_and_get_zero_gradient(device):
    """The public functions refuse non-finite faces; the ops themselves must still treat them as
    undrawn (the contract), in the forward and in every gradient."""
    faces = _scene(1, seed=16, device=device, crowd=2).clone()
    faces[0, 0, 1, 0] = float("nan")
    faces[0, 3, 2, 2] = float("inf")
    expected = ref.rasterize_fragments(faces, 9, 10, 0.1, 100.0)
    frags = kernels.rasterize_fragments(faces, 9, 10, 0.1, 100.0)
    _fragments_match(expected, frags)
    assert not ((frags[0] == 0) | (frags[0] == 3)).any()
    fi, w, d = frags
    grad = torch.randn(fi.shape + (2,), generator=torch.Generator().manual_seed(17)).to(device)
    depth = kernels.depth_backward(faces, fi, w, d, grad[..., 0].contiguous())
    edge = kernels.edge_backward(faces, fi, grad.sigmoid(), grad, 1e-3)
    for g in (depth, edge):
        assert torch.isfinite(g).all() and g.abs().sum() > 0
        assert torch.equal(g[0, [0, 3]], torch.zeros_like(g[0, [0, 3]]))


def test_slivers_with_a_subnormal_determinant_match_reference_without_overflow(device):
    """Faces whose doubled area is subnormal (the analytic fuzz found the first: (-1, 0), (-1.5, 5.4e-43),
    (-1.5, 0)) make raw barycentrics overflow to +-inf; the kernels must get the reference's pixels
    without an overflowing division (this module turns the interpreter's overflow warning into an error)."""
    faces = torch.tensor([[[[-1.0, 0.0, 0.5], [-1.5, 5.4e-43, 0.5], [-1.5, 0.0, 0.5]],
                           [[-1.0, 0.0, 0.5], [1.0, 1e-40, 0.5], [1.0, 0.0, 0.5]],  # through the centre row
                           [[1.0, -1.0, 2.0], [1.0, 1.0, 2.0], [-1.0, -1.0, 2.0]]]], device=device)
    for size in ((1, 1), (3, 5)):
        expected = ref.rasterize_fragments(faces, *size, 0.1, 100.0)
        frags = kernels.rasterize_fragments(faces, *size, 0.1, 100.0)
        _fragments_match(expected, frags)
        assert (frags[0] == 2).any()  # the big face behind is drawn
        grad = torch.randn(frags[0].shape + (1,), generator=torch.Generator().manual_seed(18)).to(device)
        torch.testing.assert_close(kernels.edge_backward(faces, frags[0], grad.sigmoid(), grad, 1e-3),
                                   ref.edge_backward(faces, expected[0], grad.sigmoid(), grad, 1e-3))


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
    ref_out, tri_out = _render_both(faces, torch.rand(batch, num_faces, 2, 2, 2, 3).to(device), 6, seed=17)
    _assert_same(ref_out, tri_out)
    assert tri_out[0].shape == (batch, 3, 6, 6) and tri_out[3].shape == (batch, num_faces, 3, 3)
    if batch:
        assert torch.equal(tri_out[1], torch.zeros_like(tri_out[1]))  # nothing drawn: alpha 0, depth far
        assert torch.equal(tri_out[2], torch.full_like(tri_out[2], 100.0))


@pytest.mark.parametrize("size", [1, 5])
def test_one_face_texture_size_one(device, size):
    """A single face, a 1 x 1 x 1 texture cube, images of 1 pixel and of 5 (Triton would turn a size
    of 1 into a compile-time constant)."""
    faces = torch.tensor([[[[-1.0, -0.9, 2.0], [0.9, -0.7, 3.0], [0.1, 0.95, 2.5]]]], device=device)
    textures = torch.tensor([[[[[[0.2, 0.5, 0.9]]]]]], device=device)
    ref_out, tri_out = _render_both(faces, textures, size, seed=18)
    _assert_same(ref_out, tri_out)
    assert tri_out[1].sum() >= 1 and tri_out[4].abs().sum() > 0


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
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
