"""The rasterizer's differentiable ops (each a torch.autograd.Function over one backend op):

1. :func:`rasterize_fragments` -- face index, weights and depth maps; backward: exact depth gradient.
2. a shader (:mod:`tritonnmr.shading`) -- colours from fragments; backward: to its attributes.
3. :func:`edge_gradient` -- identity forward; backward: the paper's blurred-edge gradient to faces.

The gradient estimators (:mod:`tritonnmr.gradients`) combine them; :mod:`tritonnmr.render` turns
faces into images with one of them. All maps here are pre-flip (row 0 at y = -1). Images may be
non-square: NDC x in [-1, 1] spans the width and y in [-1, 1] the height.
"""
from collections import namedtuple
from typing import Tuple, Union

import torch
from torch import Tensor

from . import backends, checks, defaults

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
        return image.view_as(image)  # the identity, without a copy

    @staticmethod
    def backward(ctx, grad_image):
        image, faces, face_index = ctx.saved_tensors
        grad_faces = ctx.ops.edge_backward(faces, face_index, image, grad_image.contiguous(), ctx.eps)
        return grad_image, grad_faces, None, None, None


def fragments_of(faces, height, width, near, far, backend, bary=True):
    """Fragments of trusted faces (B, F, 3, 3) at (height, width): the raster op, then bary (None
    without ``bary``: nothing is shaded)."""
    ops = backends.ops_for(backend, faces.device)
    face_index, weights, depth = _RasterizeFragments.apply(faces, height, width, float(near), float(far), ops)
    if not bary:
        return Fragments(face_index, weights, depth, faces, None)
    with torch.no_grad():
        bary = ops.perspective_barycentrics(faces, face_index, weights, depth)
    return Fragments(face_index, weights, depth, faces, bary)


def rasterize_fragments(faces: Tensor, image_size: ImageSize = defaults.IMAGE_SIZE, near: float = defaults.NEAR,
                        far: float = defaults.FAR, *, backend: str = "auto") -> Fragments:
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
    return fragments_of(faces, height, width, near, far, backend)


def edge_gradient(image: Tensor, fragments: Fragments, eps: float = defaults.SILHOUETTE_EPS, *, backend: str = "auto") -> Tensor:
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
