"""The numba CPU backend: the ops of docs/backend-contract.md as compiled loops over numpy views.

Same functions, parameter names and results as the reference (``tritonnmr/backends/torch.py``). Inputs
are contiguous CPU tensors (float32 / int64), viewed with ``.numpy()`` without copying; results
are new torch tensors. The kernels (``raster``, ``edges``, ``shade``) are compiled by numba on
first use and cached on disk, so later processes load machine code instead of compiling.

Importing this package raises ImportError when numba is not installed.

Threads: every image-sized pass (the z-buffer, the barycentrics, the shading forwards, the blurred
edge's scanlines, the fused glue below, the soft and analytic passes) splits its independent jobs
over NUMBA_NUM_THREADS Python threads running GIL-free compiled code (see ``_jit.run_jobs``;
``numba.set_num_threads`` also counts once numba's threading layer runs). Every output element is
written by one job with its inputs visited in a fixed order, so results are bit-identical for any
thread count; and the backend is safe in forked child processes and from several Python threads at
once. The per-face sums of the backward passes (depth, shading, light) run in raster order, one batch
entry per job (the texels of a UV map, shared by the whole batch, in one serial pass).

Memory: the image- and face-sized results come from ``buffers`` (blocks reused from step to step,
already mapped, instead of fresh pages whose first-touch faults cost a fifth of a step on our virtual
machines).

Besides the contract's ops, the backend has fused versions of five glue steps, which the glue uses
where a backend has them: ``compose`` (the hard image of the blurred-edge and analytic estimators:
colours times light, background, alpha; gradients.hard_image), ``finish`` (pooling, flip and the
split into outputs; render.finish_images), ``gather`` (face corners from vertices; mesh.gather) and
``face_light`` (normals and lighting; lights.face_light) and ``fill_back_cubes`` (a cube and its
mirror; TextureCubeShader.fill_back), each one pass each way instead of several image- or face-sized
torch operations.
"""
import numpy as np
import torch

from ..common import cube_top, guarded
from ._jit import run_jobs
from .buffers import empty, zeros
from . import edges, raster, shade, soft
from . import compose as _compose, finish as _finish, gather as _gather, light as _light
from .antialias import antialias, antialias_backward, antialias_pairs  # noqa: F401 (the contract's ops)


def _np(t):
    return t.detach().numpy()


def _cube_top(size, eps):
    """common.cube_top in float32 (as torch's clamp sees it)."""
    return np.float32(cube_top(size, eps))


@guarded
def rasterize_fragments(faces, height, width, near, far):
    """Z-buffer of screen-space ``faces`` (B, F, 3, 3) float32 into (height, width) pre-flip maps:
    face_index (B, H, W) int64 (-1 empty), weights (B, H, W, 3) float32 (0 empty), depth (B, H, W)
    float32 (``far`` empty). Nearest face wins, ties to the lower index; see raster.zbuffer."""
    out = raster.rasterize(_np(faces), int(height), int(width), float(near), float(far))
    return tuple(torch.from_numpy(a) for a in out)


@guarded
def perspective_barycentrics(faces, face_index, weights, depth):
    """(B, H, W, 3) float32 perspective-correct barycentrics ``w_k z / z_k`` of each covered pixel
    (0 where empty), bit-equal to the reference's."""
    return torch.from_numpy(raster.perspective_barycentrics(_np(faces), _np(face_index), _np(weights), _np(depth)))


@guarded
def depth_backward(faces, face_index, weights, depth, grad_depth):
    """Gradient (B, F, 3, 3) float32 to the faces of sum(grad_depth * depth), grad_depth (B, H, W)."""
    out = zeros(faces.shape, np.float32)
    run_jobs(raster.depth_backward, faces.shape[0], _np(faces), _np(face_index), _np(weights), _np(depth),
             _np(grad_depth), out, work=grad_depth.numel())
    return torch.from_numpy(out)


@guarded
def edge_backward(faces, face_index, image, grad_image, eps):
    """Blurred-edge gradient (B, F, 3, 3) float32 (z column 0) from image and grad_image (B, H, W, C)."""
    return torch.from_numpy(edges.edge_backward(_np(faces), _np(face_index), _np(image), _np(grad_image),
                                                float(eps)))


@guarded
def sample_cubes(face_index, bary, textures, eps):
    """(B, H, W, C) float32 trilinear samples of per-face cubes textures (B, F, T, T, T, C)."""
    B, H, W = face_index.shape
    out = empty((B, H, W, textures.shape[-1]), np.float32)
    run_jobs(shade.sample_cubes, B * H, _np(face_index), _np(bary), _np(textures), _cube_top(textures.shape[2], eps),
             out, work=out.size)
    return torch.from_numpy(out)


@guarded
def sample_cubes_backward(face_index, bary, grad, textures, eps):
    """Gradient (B, F, T, T, T, C) float32 to the cubes ``textures`` from grad (B, H, W, C)."""
    out = zeros(tuple(textures.shape), np.float32)
    run_jobs(shade.sample_cubes_backward, face_index.shape[0], _np(face_index), _np(bary), _np(grad),
             _cube_top(textures.shape[2], eps), out, work=grad.numel())
    return torch.from_numpy(out)


def fill_back_cubes(cubes):
    """(B, 2F, T, T, T, C): the cubes (B, F, T, T, T, C), then each one mirrored for its reversed face
    (axes 2 and 4 swapped; numba/shade.py)."""
    B, F = cubes.shape[:2]
    cubes = _np(cubes)
    out = empty((B, 2 * F) + cubes.shape[2:], cubes.dtype)
    run_jobs(shade.fill_back_cubes, B * F, cubes, out, False, work=out.size)
    return torch.from_numpy(out)


def fill_back_cubes_backward(grad):
    """(B, F, T, T, T, C) gradient of :func:`fill_back_cubes` from grad (B, 2F, T, T, T, C)."""
    B, F = grad.shape[0], grad.shape[1] // 2
    grad = _np(grad.contiguous())
    out = empty((B, F) + grad.shape[2:], grad.dtype)
    run_jobs(shade.fill_back_cubes, B * F, grad, out, True, work=grad.size)
    return torch.from_numpy(out)


@guarded
def interpolate(face_index, bary, attributes):
    """(B, H, W, C) float32: sum_k bary_k attributes[b, f, k] with attributes (B, F, 3, C)."""
    B, H, W = face_index.shape
    out = empty((B, H, W, attributes.shape[-1]), np.float32)
    run_jobs(shade.interpolate, B * H, _np(face_index), _np(bary), _np(attributes), out, work=out.size)
    return torch.from_numpy(out)


@guarded
def interpolate_backward(face_index, bary, grad, attributes):
    """Gradient (B, F, 3, C) float32 to the ``attributes`` from grad (B, H, W, C)."""
    out = zeros(tuple(attributes.shape), np.float32)
    run_jobs(shade.interpolate_backward, face_index.shape[0], _np(face_index), _np(bary), _np(grad), out,
             work=grad.numel())
    return torch.from_numpy(out)


@guarded
def sample_uv(face_index, bary, uvs, texels, material, table, wrap):
    """(B, H, W, C) float32 bilinear samples of ``texels`` (N, C) at each pixel's uv
    (sum_k bary_k uvs[b, f, k]); material (B, F) int64 picks table row (offset, h, w)."""
    B, H, W = face_index.shape
    out = empty((B, H, W, texels.shape[-1]), np.float32)
    run_jobs(shade.sample_uv, B * H, _np(face_index), _np(bary), _np(uvs), _np(material), _np(texels), _np(table),
             int(wrap), out, work=out.size)
    return torch.from_numpy(out)


@guarded
def sample_uv_backward(face_index, bary, grad, uvs, texels, material, table, wrap):
    """(grad_uvs (B, F, 3, 2), grad_texels (N, C)) float32 from grad (B, H, W, C)."""
    grad_texels = zeros(tuple(texels.shape), np.float32)
    grad_uvs = zeros(tuple(uvs.shape), np.float32)
    shade.sample_uv_backward(_np(face_index), _np(bary), _np(uvs), _np(material), _np(texels), _np(table),
                             int(wrap), _np(grad), grad_texels, grad_uvs)
    return torch.from_numpy(grad_uvs), torch.from_numpy(grad_texels)


# the shading ops' gradients to bary are pixel-local gathers: the reference's serve this backend too
from ..torch import interpolate_bary_backward, sample_cubes_bary_backward, sample_uv_bary_backward  # noqa: E402,F401


# ----------------------------------------------------------------------------------------------
# The soft rasterizer (gradient="soft"): numba/soft.py
# ----------------------------------------------------------------------------------------------
def soft_fragments(faces, height, width, near, far, radius):
    """The (pixel, face) pairs (pixel, face, d2, depth, bary) of faces (B, F, 3, 3): see backends.OPS."""
    return tuple(torch.from_numpy(a) for a in soft.soft_fragments(_np(faces), int(height), int(width), near, far,
                                                                   radius))


def soft_fragments_backward(faces, height, width, pixel, face, grad_d2, grad_depth, grad_bary):
    """Gradient (B, F, 3, 3) float32 to the faces from the pairs' gradients."""
    return torch.from_numpy(soft.soft_fragments_backward(_np(faces), int(height), int(width), _np(pixel), _np(face),
                                                         _np(grad_d2), _np(grad_depth), _np(grad_bary)))


def soft_blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far):
    """(rgb (P, C), alpha (P,)) float32 of the pairs."""
    rgb, alpha = soft.soft_blend(_np(pixel), _np(d2), _np(depth), _np(colours), _np(background), int(num_pixels),
                                 sigma, gamma, eps, near, far)
    return torch.from_numpy(rgb), torch.from_numpy(alpha)


def soft_blend_backward(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far, grad_rgb,
                        grad_alpha):
    """(grad_d2 (N,), grad_depth (N,), grad_colours (N, C)) float32 of :func:`soft_blend`."""
    return tuple(torch.from_numpy(a) for a in soft.soft_blend_backward(
        _np(pixel), _np(d2), _np(depth), _np(colours), _np(background), int(num_pixels), sigma, gamma, eps, near, far,
        _np(grad_rgb), _np(grad_alpha)))


# ----------------------------------------------------------------------------------------------
# Fused glue (not contract ops: render.py uses them where a backend has them, torch ops elsewhere)
# ----------------------------------------------------------------------------------------------
def finish(image, sizes, pool, squeeze):
    """Pre-flip ``image`` (B, H, W, C) -> the pictures' parts (B, sizes[i], H', W') float32 ((B, H', W')
    where squeeze[i]): pooled 2 x 2 when ``pool``, flipped so that row 0 is the top (numba/finish.py)."""
    return tuple(torch.from_numpy(a) for a in _finish.finish(_np(image), tuple(sizes), bool(pool), tuple(squeeze)))


def finish_backward(grads, sizes, pool, height, width):
    """The pre-flip image's gradient (B, height, width, C) from the parts' gradients (None: zero)."""
    arrays = [None if g is None else _np(g) for g in grads]  # any strides (the gradient of a sum: 0)
    return torch.from_numpy(_finish.finish_backward(arrays, tuple(sizes), bool(pool), int(height), int(width)))


def compose(face_index, colours, light, background, alpha):
    """The hard image (B, H, W, C + alpha): colours (B, H, W, C) times light (B, F, C or 1; (B, 0, 1):
    none) where face_index (B, H, W) covers, background (C,) elsewhere, then coverage when ``alpha``
    (numba/compose.py)."""
    return torch.from_numpy(_compose.compose(_np(face_index), _np(colours), _np(light), _np(background), alpha))


def compose_backward(face_index, colours, light, grad, want_colours, want_light):
    """(grad_colours (B, H, W, C) or None, grad_light or None) of :func:`compose` from grad (B, H, W, C')."""
    out = _compose.compose_backward(_np(face_index), _np(colours), _np(light), _np(grad.contiguous()),
                                    want_colours, want_light)
    return tuple(None if a is None else torch.from_numpy(a) for a in out)


def face_light(faces, ambient, directional, direction, eps):
    """(B, F, 3) float32 light of faces (B, F, 3, 3): ambient + directional * max(0, unit normal . direction),
    each (B, 3) (numba/light.py)."""
    return torch.from_numpy(_light.face_light(_np(faces), _np(ambient), _np(directional), _np(direction), eps))


def face_light_backward(faces, directional, direction, eps, grad):
    """(B, F, 3, 3) gradient of :func:`face_light` to the faces from grad (B, F, 3)."""
    return torch.from_numpy(_light.face_light_backward(_np(faces), _np(directional), _np(direction), eps,
                                                       _np(grad.contiguous())))


def gather(values, faces):
    """(B, F, 3, C) per face-vertex values of values (B, V, C) float32 or float64, faces (B, F, 3) int64
    (-1 padding rows: zeros; numba/gather.py)."""
    return torch.from_numpy(_gather.gather(_np(values), _np(faces)))


def gather_backward(grad, faces, num_vertices):
    """(B, V, C) gradient of :func:`gather` from grad (B, F, 3, C)."""
    return torch.from_numpy(_gather.gather_backward(_np(grad.contiguous()), _np(faces), int(num_vertices)))
