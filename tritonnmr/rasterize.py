"""Rasterization as three differentiable ops, and neural_renderer's rasterize_* functions on top.

1. :func:`rasterize_fragments` -- face index, weights and depth maps; backward: exact depth gradient.
2. a shader (:mod:`tritonnmr.shading`) -- colours from fragments; backward: to its attributes.
3. :func:`edge_gradient` -- identity forward; backward: the paper's blurred-edge gradient to faces.

All maps inside are pre-flip (row 0 at y = -1); the rasterize_* functions flip them so that row 0
of what they return is the top of the picture, and average-pool 2x2 when anti-aliasing.
"""
import torch
import torch.nn.functional as F

from . import backends, checks
from .shading import Fragments, Shader, default_shader

DEFAULT_IMAGE_SIZE = 256
DEFAULT_ANTI_ALIASING = True
DEFAULT_NEAR = 0.1
DEFAULT_FAR = 100
DEFAULT_EPS = 1e-4
DEFAULT_BACKGROUND_COLOR = (0, 0, 0)


class _RasterizeFragments(torch.autograd.Function):
    @staticmethod
    def forward(ctx, faces, image_size, near, far, ops):
        face_index, weights, depth = ops.rasterize_fragments(faces, image_size, near, far)
        ctx.save_for_backward(faces, face_index, weights, depth)
        ctx.ops = ops
        ctx.mark_non_differentiable(face_index, weights)
        return face_index, weights, depth

    @staticmethod
    def backward(ctx, _grad_index, _grad_weights, grad_depth):
        grad = ctx.ops.depth_backward(*ctx.saved_tensors, grad_depth.contiguous())
        return grad, None, None, None, None


class _EdgeGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image, faces, face_index, eps, ops):
        ctx.save_for_backward(image, faces, face_index)
        ctx.eps, ctx.ops = eps, ops
        return image.clone()

    @staticmethod
    def backward(ctx, grad_image):
        image, faces, face_index = ctx.saved_tensors
        grad_image = grad_image.contiguous()
        grad_faces = ctx.ops.edge_backward(faces, face_index, image, grad_image, ctx.eps)
        return grad_image, grad_faces, None, None, None


def rasterize_fragments(faces, image_size=DEFAULT_IMAGE_SIZE, near=DEFAULT_NEAR, far=DEFAULT_FAR,
                        backend="auto"):
    """Z-buffered rasterization of screen-space ``faces`` (B, F, 3, 3) float32, x and y in NDC.

    Returns :class:`Fragments` of pre-flip maps (row r at NDC y = (2r + 1 - S) / S):
    face_index (B, S, S) int64 (-1: empty), weights (B, S, S, 3) (no gradient), depth (B, S, S)
    (``far`` where empty; differentiable with respect to faces), and the faces themselves.
    Back faces are culled, the nearest face wins, ties go to the lower face index.
    """
    faces = checks.screen_faces(faces)
    image_size = checks.image_size(image_size)
    checks.near_far(near, far)
    ops = backends.ops(backend, faces.device)
    face_index, weights, depth = _RasterizeFragments.apply(faces, image_size, float(near), float(far), ops)
    return Fragments(face_index, weights, depth, faces)


def edge_gradient(image, fragments, eps=DEFAULT_EPS, backend="auto"):
    """Identity on ``image`` (B, S, S, C) pre-flip; its backward adds the blurred-edge gradient
    from the image's gradient to ``fragments.faces``. Apply it once to all channels that depend on
    coverage (e.g. rgb and alpha stacked): whether a move lowers the loss is decided on their sum.
    """
    if image.shape[:3] != fragments.face_index.shape:
        raise ValueError(f"image must have shape (B, S, S, C) = {tuple(fragments.face_index.shape)} + (C,), "
                         f"got {tuple(image.shape)}")
    ops = backends.ops(backend, image.device)
    return _EdgeGradient.apply(image.contiguous(), fragments.faces, fragments.face_index, float(eps), ops)


def _finish(image, anti_aliasing):
    """Pre-flip (B, S, S, C) -> flipped (B, C, S', S'), pooled 2x2 when anti-aliasing."""
    image = image.flip(1).permute(0, 3, 1, 2)
    return F.avg_pool2d(image, kernel_size=2, stride=2) if anti_aliasing else image


def rasterize_rgbad(faces, textures=None, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                    near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS,
                    background_color=DEFAULT_BACKGROUND_COLOR, return_rgb=True, return_alpha=True,
                    return_depth=True, backend="auto", shader=None):
    """Render screen-space ``faces`` (B, F, 3, 3) to a dict with 'rgb' (B, C, S, S), 'alpha'
    (B, S, S) and 'depth' (B, S, S) (None for what was not asked for).

    textures: per-face cubes (B, F, T, T, T, 3), or per face-vertex colours (B, F, 3, C) (Gouraud);
    ``shader`` overrides the choice (see :mod:`tritonnmr.shading`). With anti_aliasing the image is
    rendered at 2S and average-pooled. Row 0 of every output is the top of the picture (y = +1).
    Gradients: rgb and alpha to faces by the blurred-edge rule and rgb to textures; depth exactly.
    """
    faces = checks.screen_faces(faces)
    B, nf = faces.shape[:2]
    size = checks.image_size(image_size) * (2 if anti_aliasing else 1)
    if return_rgb:
        if textures is None:
            raise ValueError("textures is required when return_rgb=True")
        shader = shader or default_shader(textures, eps)
        if not isinstance(shader, Shader) and not hasattr(shader, "shade"):
            raise TypeError("shader must have a shade(fragments, attributes, backend) method")
        textures = shader.check(textures, B, nf)
        checks.same_device(faces=faces, textures=textures)
    frags = rasterize_fragments(faces, size, near, far, backend)
    covered = (frags.face_index >= 0)[..., None]
    channels = []
    if return_rgb:
        rgb = shader.shade(frags, textures, backend)
        bg = torch.as_tensor(background_color, dtype=rgb.dtype, device=rgb.device).flatten()
        if bg.numel() != rgb.shape[-1]:
            raise ValueError(f"background_color must have {rgb.shape[-1]} values, got {bg.numel()}")
        channels.append(torch.where(covered, rgb, bg))
    if return_alpha:
        channels.append(covered.to(faces.dtype))
    out = {"rgb": None, "alpha": None, "depth": None}
    if channels:
        image = edge_gradient(torch.cat(channels, -1), frags, eps, backend)
        if return_rgb:
            out["rgb"] = _finish(image[..., :-1] if return_alpha else image, anti_aliasing)
        if return_alpha:
            out["alpha"] = _finish(image[..., -1:], anti_aliasing)[:, 0]
    if return_depth:
        out["depth"] = _finish(frags.depth[..., None], anti_aliasing)[:, 0]
    return out


def rasterize(faces, textures, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
              near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, background_color=DEFAULT_BACKGROUND_COLOR,
              backend="auto", shader=None):
    """RGB image (B, 3, S, S) of screen-space faces (B, F, 3, 3) with textures (B, F, T, T, T, 3)."""
    return rasterize_rgbad(faces, textures, image_size, anti_aliasing, near, far, eps, background_color,
                           True, False, False, backend, shader)["rgb"]


def rasterize_silhouettes(faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                          near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, backend="auto"):
    """Alpha (B, S, S): 1 where a face covers the pixel. Differentiable by the blurred-edge rule."""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, eps, None,
                           False, True, False, backend)["alpha"]


def rasterize_depth(faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                    near=DEFAULT_NEAR, far=DEFAULT_FAR, backend="auto"):
    """Depth (B, S, S) of the nearest face, ``far`` where empty; exact gradient to faces."""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, DEFAULT_EPS, None,
                           False, False, True, backend)["depth"]
