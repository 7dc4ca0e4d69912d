"""From screen-space faces to images: :func:`render_faces` (what the Renderer calls) and
neural_renderer's ``rasterize_*`` functions, with the gradient estimator chosen by ``gradient=``.

Inside, maps are pre-flip (row 0 at NDC y = -1) and rendered at twice the size when anti-aliasing;
what comes out is average-pooled 2x2 and flipped, so that row 0 is the top of the picture. The depth
map is always the hard z-buffer's (exact gradient), whatever the estimator. Images may be non-square:
``image_size`` is an int or ``(height, width)``.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import backends, checks, defaults, gradients, precision
from .raster import ImageSize, fragments_of
from .shading import as_shader, attribute_tensors, default_shader

# the rasterize functions' defaults (neural_renderer's; every default is named in defaults.py)
DEFAULT_IMAGE_SIZE = defaults.IMAGE_SIZE
DEFAULT_ANTI_ALIASING = defaults.ANTI_ALIASING
DEFAULT_NEAR = defaults.NEAR
DEFAULT_FAR = defaults.FAR
DEFAULT_EPS = defaults.SILHOUETTE_EPS
DEFAULT_BACKGROUND_COLOR = defaults.BACKGROUND_COLOR


def _finish(image, anti_aliasing):
    """Pre-flip (B, H, W, C) -> flipped (B, C, H', W'), pooled 2x2 when anti-aliasing (pooling
    first: the 2x2 blocks of an even height flip onto blocks, and the flip then moves 4x less)."""
    image = image.permute(0, 3, 1, 2)
    if anti_aliasing:
        image = F.avg_pool2d(image, kernel_size=2, stride=2)
    return image.flip(2)


class _FusedFinish(torch.autograd.Function):
    """:func:`_finish` and the split into parts as one backend pass each way (``ops.finish``)."""

    @staticmethod
    def forward(ctx, image, sizes, squeeze, anti_aliasing, ops):
        ctx.set_materialize_grads(False)
        ctx.sizes, ctx.anti_aliasing, ctx.ops, ctx.shape = sizes, anti_aliasing, ops, image.shape[1:3]
        return ops.finish(image, sizes, anti_aliasing, squeeze)

    @staticmethod
    def backward(ctx, *grads):
        return ctx.ops.finish_backward(grads, ctx.sizes, ctx.anti_aliasing, *ctx.shape), None, None, None, None


def _channels(names, image):
    """The channel count of each of ``names`` stacked in ``image`` (B, H, W, C): one each but rgb's."""
    return tuple(1 if n != "rgb" else image.shape[-1] - (len(names) - 1) for n in names)


def finish_images(images: Dict, anti_aliasing: bool, backend: str) -> Dict[str, Tensor]:
    """The pictures of an estimator's pre-flip images: {name: (B, C, H', W')}, or (B, H', W') for
    "alpha" and "depth". A key of ``images`` may be a tuple of names whose images are stacked along
    channels in that order: it is finished once and split afterwards (the backend's fused pass where
    it has one, ``ops.finish``)."""
    out = {}
    for key, image in images.items():
        names = key if isinstance(key, tuple) else (key,)
        sizes, squeeze = _channels(names, image), tuple(n in ("alpha", "depth") for n in names)
        ops = backends.ops_for(backend, image.device)
        if hasattr(ops, "finish"):
            parts = _FusedFinish.apply(image.contiguous(), sizes, squeeze, anti_aliasing, ops)
        else:
            parts = [p[:, 0] if flat else p for p, flat in zip(torch.split(_finish(image, anti_aliasing), sizes, 1),
                                                              squeeze)]
        out.update(zip(names, parts))
    return out


def render_faces(faces: Tensor, attributes=None, *, shader=None, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                 anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
                 background_color: Sequence[float] = DEFAULT_BACKGROUND_COLOR, outputs=("rgb", "depth", "alpha"),
                 backend: str = "auto", light: Optional[Tensor] = None, parent=None, gradient: str = "blurred_edge",
                 options: gradients.Options = gradients.Options(), indices: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Render trusted screen-space faces: a dict with 'rgb' (B, C, H, W), 'depth' (B, H, W) and
    'alpha' (B, H, W), each present when named in ``outputs``.

    Inputs are not validated here (the public functions do it once). ``attributes`` are the
    shader's, already checked; ``light`` (B, F, 3) multiplies a lit shader's colours by face;
    ``parent`` maps clipped faces back to the mesh's faces (see raster.in_mesh_faces); ``gradient``
    names the estimator (gradients.ESTIMATORS) and ``options`` hold its settings; ``indices`` (B, F, 3) are
    the mesh faces' vertex indices (its topology) where there is a mesh.
    """
    height, width = checks.image_size(image_size)
    scale = 2 if anti_aliasing else 1
    frags = fragments_of(faces, height * scale, width * scale, near, far, backend, bary="rgb" in outputs)
    scene = gradients.Scene(faces, attributes, shader, light, parent, background_color, height * scale, width * scale,
                            near, far, backend, indices)
    images = [n for n in ("rgb", "alpha") if n in outputs]
    out = gradients.estimator(gradient).render(scene, frags, images, options) if images else {}
    if "depth" in outputs:
        out["depth"] = frags.depth[..., None]
    return finish_images(out, anti_aliasing, backend)


def rasterize_rgbad(faces: Tensor, textures=None, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                    anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
                    eps: float = DEFAULT_EPS, background_color: Sequence[float] = DEFAULT_BACKGROUND_COLOR,
                    return_rgb: bool = True, return_alpha: bool = True, return_depth: bool = True, *,
                    backend: str = "auto", shader=None, gradient: str = "blurred_edge",
                    sigma: float = defaults.SOFT_SIGMA, gamma: float = defaults.SOFT_GAMMA) -> Dict[str, Optional[Tensor]]:
    """Render screen-space ``faces`` (B, F, 3, 3) to a dict with 'rgb' (B, C, H, W), 'alpha'
    (B, H, W) and 'depth' (B, H, W) (None for what was not asked for).

    textures: per-face cubes (B, F, T, T, T, C), per face-vertex colours (B, F, 3, C) (Gouraud), or UV
    maps (see :class:`tritonnmr.UVTextureShader`); ``shader`` overrides the choice. image_size: int or
    (height, width). With anti_aliasing the image is rendered at twice the size and average-pooled.
    Row 0 of every output is the top of the picture (y = +1). Gradients: rgb and alpha to faces by the
    ``gradient`` estimator ("blurred_edge", the paper's, with ``eps``; "soft", SoftRas's, with ``sigma``
    and ``gamma``: see tritonnmr.gradients) and rgb to the textures; depth exactly. No lighting (see
    Renderer).
    """
    size = checks.image_size(image_size)
    checks.near_far(near, far)
    settings = gradients.options(gradient, eps, sigma, gamma)
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
                           far=far, background_color=background_color, outputs=outputs, backend=backend,
                           gradient=gradient, options=settings)
    return {"rgb": out.get("rgb"), "alpha": out.get("alpha"), "depth": out.get("depth")}


def rasterize(faces: Tensor, textures, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
              anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
              eps: float = DEFAULT_EPS, background_color: Sequence[float] = DEFAULT_BACKGROUND_COLOR, *,
              backend: str = "auto", shader=None, gradient: str = "blurred_edge", sigma: float = defaults.SOFT_SIGMA,
              gamma: float = defaults.SOFT_GAMMA) -> Tensor:
    """RGB image (B, C, H, W) of screen-space faces (B, F, 3, 3) with textures (see rasterize_rgbad)."""
    return rasterize_rgbad(faces, textures, image_size, anti_aliasing, near, far, eps, background_color,
                           return_rgb=True, return_alpha=False, return_depth=False, backend=backend,
                           shader=shader, gradient=gradient, sigma=sigma, gamma=gamma)["rgb"]


def rasterize_silhouettes(faces: Tensor, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                          anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR,
                          far: float = DEFAULT_FAR, eps: float = DEFAULT_EPS, *, backend: str = "auto",
                          gradient: str = "blurred_edge", sigma: float = defaults.SOFT_SIGMA) -> Tensor:
    """Alpha (B, H, W): 1 where a face covers the pixel (soft coverage with gradient="soft").
    Differentiable by the ``gradient`` estimator (see rasterize_rgbad)."""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, eps, return_rgb=False,
                           return_alpha=True, return_depth=False, backend=backend, gradient=gradient,
                           sigma=sigma)["alpha"]


def rasterize_depth(faces: Tensor, image_size: ImageSize = DEFAULT_IMAGE_SIZE,
                    anti_aliasing: bool = DEFAULT_ANTI_ALIASING, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR,
                    eps: float = DEFAULT_EPS, *, backend: str = "auto") -> Tensor:
    """Depth (B, H, W) of the nearest face, ``far`` where empty; exact gradient to faces.
    (``eps`` is accepted for neural_renderer's signature; depth has no blurred edge.)"""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, return_rgb=False,
                           return_alpha=False, return_depth=True, backend=backend)["depth"]
