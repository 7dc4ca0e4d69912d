"""Rasterization as three differentiable ops, and neural_renderer's rasterize_* functions on top.

1. :func:`rasterize_fragments` -- face index, weights and depth maps; backward: exact depth gradient.
2. a shader (:mod:`tritonnmr.shading`) -- colours from fragments; backward: to its attributes.
3. :func:`edge_gradient` -- identity forward; backward: the paper's blurred-edge gradient to faces.

:func:`render_faces` composes them (the Renderer and the rasterize_* functions both call it). All
maps inside are pre-flip (row 0 at y = -1); what the public functions return is flipped so that
row 0 is the top of the picture, and average-pooled 2x2 when anti-aliasing. Images may be
non-square: ``image_size`` is an int or ``(height, width)``; NDC x in [-1, 1] spans the width and y
in [-1, 1] the height.
"""
from collections import namedtuple
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
import torch.nn.functional as F

from . import backends, checks, defaults, precision
from .shading import as_shader, attribute_tensors, default_shader

# the rasterize functions' defaults (neural_renderer's; every default is named in defaults.py)
DEFAULT_IMAGE_SIZE = defaults.IMAGE_SIZE
DEFAULT_ANTI_ALIASING = defaults.ANTI_ALIASING
DEFAULT_NEAR = defaults.NEAR
DEFAULT_FAR = defaults.FAR
DEFAULT_EPS = defaults.SILHOUETTE_EPS
DEFAULT_BACKGROUND_COLOR = defaults.BACKGROUND_COLOR
ImageSize = Union[int, Tuple[int, int]]

Fragments = namedtuple("Fragments", ["face_index", "weights", "depth", "faces", "bary"])
Fragments.__doc__ = """Pre-flip maps of a rasterized image (row 0 at the bottom, y = -1).

face_index (B, H, W) int64: the face seen at each pixel, -1 where empty.
weights (B, H, W, 3): screen-space barycentric weights in the rasterized face (no gradient).
depth (B, H, W): depth of the nearest face, ``far`` where empty (differentiable).
faces (B, F, 3, 3): the screen-space faces that were rasterized.
bary (B, H, W, 3): perspective-correct barycentrics ``w_k z / z_k`` (they sum to 1; no gradient).
Through the Renderer, face_index and bary refer to the mesh's own faces even where the near plane
clipped a face (then ``weights`` and ``faces`` describe the clipped piece).
"""



class _RasterizeFragments(torch.autograd.Function):
    @staticmethod
    def forward(ctx, faces, height, width, near, far, ops):
        face_index, weights, depth = ops.rasterize_fragments(faces, height, width, near, far)
        ctx.save_for_backward(faces, face_index, weights, depth)
        ctx.ops = ops
        ctx.mark_non_differentiable(face_index, weights)
        return face_index, weights, depth

    @staticmethod
    def backward(ctx, _grad_index, _grad_weights, grad_depth):
        grad = ctx.ops.depth_backward(*ctx.saved_tensors, grad_depth.contiguous())
        return grad, None, None, None, None, None


class _EdgeGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image, faces, face_index, eps, ops):
        ctx.save_for_backward(image, faces, face_index)
        ctx.eps, ctx.ops = eps, ops
        return image.clone()

    @staticmethod
    def backward(ctx, grad_image):
        image, faces, face_index = ctx.saved_tensors
        grad_faces = ctx.ops.edge_backward(faces, face_index, image, grad_image.contiguous(), ctx.eps)
        return grad_image, grad_faces, None, None, None


def _fragments(faces, height, width, near, far, backend):
    """Fragments of trusted faces (B, F, 3, 3) at (height, width): the raster op, then bary."""
    ops = backends.ops_for(backend, faces.device)
    face_index, weights, depth = _RasterizeFragments.apply(faces, height, width, float(near), float(far), ops)
    with torch.no_grad():
        bary = ops.perspective_barycentrics(faces, face_index, weights, depth)
    return Fragments(face_index, weights, depth, faces, bary)


def rasterize_fragments(faces: Tensor, image_size: ImageSize = DEFAULT_IMAGE_SIZE, near: float = DEFAULT_NEAR,
                        far: float = DEFAULT_FAR, *, backend: str = "auto") -> Fragments:
    """Z-buffered rasterization of screen-space ``faces`` (B, F, 3, 3) float32, x and y in NDC.

    image_size: int or (height, width). Returns :class:`Fragments` of pre-flip maps (row r at NDC
    y = (2r + 1 - H) / H): face_index (B, H, W) int64 (-1: empty), weights (B, H, W, 3) (no
    gradient), depth (B, H, W) (``far`` where empty; differentiable with respect to faces), the faces,
    and bary (B, H, W, 3), the perspective-correct barycentrics. Back faces are culled, the nearest
    face wins, ties go to the lower face index. On the device of ``faces``.
    """
    faces = checks.finite("faces", checks.screen_faces(faces))
    height, width = checks.image_size(image_size)
    checks.near_far(near, far)
    return _fragments(faces, height, width, near, far, backend)


def edge_gradient(image: Tensor, fragments: Fragments, eps: float = DEFAULT_EPS, *, backend: str = "auto") -> Tensor:
    """Identity on ``image`` (B, H, W, C) pre-flip; its backward adds the blurred-edge gradient
    from the image's gradient to ``fragments.faces``. Apply it once to all channels that depend on
    coverage (e.g. rgb and alpha stacked): whether a move lowers the loss is decided on their sum.
    """
    image = checks.tensor("image", image, dims=4)
    if image.shape[:3] != fragments.face_index.shape:
        raise ValueError(f"image must have shape (B, H, W, C) = {tuple(fragments.face_index.shape)} + (C,), "
                         f"got {tuple(image.shape)}")
    checks.same_device(image=image, faces=fragments.faces)
    ops = backends.ops_for(backend, image.device)
    return _EdgeGradient.apply(image.contiguous(), fragments.faces, fragments.face_index, float(eps), ops)


def _finish(image, anti_aliasing):
    """Pre-flip (B, H, W, C) -> flipped (B, C, H', W'), pooled 2x2 when anti-aliasing (pooling
    first: the 2x2 blocks of an even height flip onto blocks, and the flip then moves 4x less)."""
    image = image.permute(0, 3, 1, 2)
    if anti_aliasing:
        image = F.avg_pool2d(image, kernel_size=2, stride=2)
    return image.flip(2)


def in_mesh_faces(frags: Fragments, parent) -> Fragments:
    """Fragments in terms of the mesh's own faces when the near plane clipped some of them:
    ``parent`` = (parent face (B, F'), barycentric matrix (B, F', 3, 3)) from ``clip.near_plane``."""
    if parent is None:
        return frags
    parent_face, matrix = parent
    B = frags.face_index.shape[0]
    hit = frags.face_index >= 0
    index = frags.face_index.clamp(min=0)
    b = torch.arange(B, device=index.device)[:, None, None]
    face_index = torch.where(hit, parent_face[b, index], -1)
    bary = torch.einsum("bhwj,bhwjk->bhwk", frags.bary, matrix[b, index])
    return frags._replace(face_index=face_index, bary=torch.where(hit[..., None], bary, 0.0))


def render_faces(faces, attributes=None, *, shader=None, image_size=DEFAULT_IMAGE_SIZE,
                 anti_aliasing=DEFAULT_ANTI_ALIASING, near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS,
                 background_color=DEFAULT_BACKGROUND_COLOR, outputs=("rgb", "depth", "alpha"), backend="auto",
                 light=None, parent=None):
    """Render trusted screen-space faces: a dict with 'rgb' (B, C, H, W), 'depth' (B, H, W) and
    'alpha' (B, H, W), each present when named in ``outputs``.

    Inputs are not validated here (the public functions do it once). ``attributes`` are the
    shader's, already checked; ``light`` (B, F, 3) multiplies a lit shader's colours by face;
    ``parent`` maps clipped faces back to the mesh's faces (see :func:`in_mesh_faces`).
    """
    height, width = checks.image_size(image_size)
    scale = 2 if anti_aliasing else 1
    frags = _fragments(faces, height * scale, width * scale, near, far, backend)
    covered = (frags.face_index >= 0)[..., None]
    channels = []
    if "rgb" in outputs:
        shaded = in_mesh_faces(frags, parent)
        rgb = shader.shade(shaded, attributes, backend)
        if light is not None and light.shape[1] and getattr(shader, "lit", False):
            b = torch.arange(rgb.shape[0], device=rgb.device)[:, None, None]
            rgb = rgb * _light_for(light, rgb.shape[-1])[b, shaded.face_index.clamp(min=0)]
        bg = checks.on_device(checks.background(background_color, rgb.shape[-1]), rgb)
        channels.append(torch.where(covered, rgb, bg))
    if "alpha" in outputs:
        channels.append(covered.to(faces.dtype))
    out = {}
    if channels:
        image = edge_gradient(torch.cat(channels, -1), frags, eps, backend=backend)
        if "rgb" in outputs:
            out["rgb"] = _finish(image[..., :-1] if "alpha" in outputs else image, anti_aliasing)
        if "alpha" in outputs:
            out["alpha"] = _finish(image[..., -1:], anti_aliasing)[:, 0]
    if "depth" in outputs:
        out["depth"] = _finish(frags.depth[..., None], anti_aliasing)[:, 0]
    return out


def _light_for(light, channels):
    """Per-face light (B, F, 3) for images of ``channels`` colours: as it is for 3, one grey value
    per face for any other count (the light's colours must then be grey)."""
    if channels == 3:
        return light
    if not torch.equal(light, light[..., :1].expand_as(light)):
        raise ValueError(f"coloured light (light_color_ambient / light_color_directional) needs 3-channel "
                         f"colours; the shader gives {channels} channels: use grey light colours")
    return light[..., :1]


def rasterize_rgbad(faces: Tensor, textures=None, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                    anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
                    eps: float = DEFAULT_EPS, background_color: Sequence[float] = DEFAULT_BACKGROUND_COLOR,
                    return_rgb: bool = True, return_alpha: bool = True, return_depth: bool = True, *,
                    backend: str = "auto", shader=None) -> Dict[str, Optional[Tensor]]:
    """Render screen-space ``faces`` (B, F, 3, 3) to a dict with 'rgb' (B, C, H, W), 'alpha'
    (B, H, W) and 'depth' (B, H, W) (None for what was not asked for).

    textures: per-face cubes (B, F, T, T, T, C), per face-vertex colours (B, F, 3, C) (Gouraud), or UV
    maps (see :class:`tritonnmr.UVTextureShader`); ``shader`` overrides the choice. image_size: int or
    (height, width). With anti_aliasing the image is rendered at twice the size and average-pooled.
    Row 0 of every output is the top of the picture (y = +1). Gradients: rgb and alpha to faces by
    the blurred-edge rule and rgb to the textures; depth exactly. No lighting (see Renderer).
    """
    size = checks.image_size(image_size)
    checks.near_far(near, far)
    checks.positive_number("eps", eps, allow_zero=True)
    outputs = tuple(n for n, on in (("rgb", return_rgb), ("depth", return_depth), ("alpha", return_alpha)) if on)
    if return_rgb and textures is None:
        raise ValueError("textures is required when return_rgb=True")
    faces = checks.screen_faces(faces)
    with precision.float32(faces.device), checks.gathered():  # float32 under autocast; one read of the checks
        checks.finite("faces", faces)
        B, nf = faces.shape[:2]
        if return_rgb:
            shader = as_shader(shader) if shader is not None else default_shader(textures, eps)
            textures = shader.check(textures, B, nf)
            checks.same_device(faces=faces, **attribute_tensors(textures))
            checks.background(background_color)
    with precision.float32(faces.device):
        out = render_faces(faces, textures, shader=shader, image_size=size, anti_aliasing=anti_aliasing, near=near,
                           far=far, eps=eps, background_color=background_color, outputs=outputs, backend=backend)
    return {"rgb": out.get("rgb"), "alpha": out.get("alpha"), "depth": out.get("depth")}


def rasterize(faces: Tensor, textures, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
              anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
              eps: float = DEFAULT_EPS, background_color: Sequence[float] = DEFAULT_BACKGROUND_COLOR, *,
              backend: str = "auto", shader=None) -> Tensor:
    """RGB image (B, C, H, W) of screen-space faces (B, F, 3, 3) with textures (see rasterize_rgbad)."""
    return rasterize_rgbad(faces, textures, image_size, anti_aliasing, near, far, eps, background_color,
                           return_rgb=True, return_alpha=False, return_depth=False, backend=backend,
                           shader=shader)["rgb"]


def rasterize_silhouettes(faces: Tensor, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                          anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR,
                          far: float = DEFAULT_FAR, eps: float = DEFAULT_EPS, *, backend: str = "auto") -> Tensor:
    """Alpha (B, H, W): 1 where a face covers the pixel. Differentiable by the blurred-edge rule."""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, eps, return_rgb=False,
                           return_alpha=True, return_depth=False, backend=backend)["alpha"]


def rasterize_depth(faces: Tensor, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                    anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
                    eps: float = DEFAULT_EPS, *, backend: str = "auto") -> Tensor:
    """Depth (B, H, W) of the nearest face, ``far`` where empty; exact gradient to faces.
    (``eps`` is accepted for neural_renderer's signature; depth has no blurred edge.)"""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, return_rgb=False,
                           return_alpha=False, return_depth=True, backend=backend)["depth"]
