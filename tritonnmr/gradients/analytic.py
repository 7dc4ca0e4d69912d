"""nvdiffrast's estimator (Laine et al. 2020, "Modular Primitives for High-Performance Differentiable
Rendering"; its ``antialias`` op): the hard image, then analytic antialiasing of silhouette edges.

Forward: the image shaded at pixel centres as for the blurred edge (background where no face, alpha
= coverage), then every pair of neighbouring pixels whose faces differ is blended where a silhouette
edge of the nearer face crosses between their centres: the pixel on the crossing's side of the
midpoint moves toward its neighbour by |1/2 - c|, c the crossing's fraction of the way from the
face's pixel (a straight edge's pixels get their exact area coverage along the pair's axis; the
rule in full is in tritonnmr/backends/torch_antialias.py). Backward: the exact derivative of that
blend, to the colours and, through c, to the crossing edge's two vertices (none where c was clamped).
With anti_aliasing the blend runs at the doubled size, before the pooling. Which edges may be
silhouettes: :mod:`.silhouettes` (mesh topology through the Renderer, every edge for screen-space
input). The estimator has no settings (``eps``, ``sigma`` and ``gamma`` are not used).
"""
from typing import Optional

import torch
from torch import Tensor

from .. import backends, checks
from ..raster import Fragments
from . import hard_image
from .silhouettes import silhouette_edges


class _Antialias(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image, faces, alpha, edge, ops):
        ctx.save_for_backward(image, faces, alpha, edge)
        ctx.ops = ops
        return ops.antialias(image, alpha)

    @staticmethod
    def backward(ctx, grad):
        image, faces, alpha, edge = ctx.saved_tensors
        grad_image, grad_faces = ctx.ops.antialias_backward(faces, image, alpha, edge, grad.contiguous())
        return grad_image, grad_faces, None, None, None


def antialias(image: Tensor, fragments: Fragments, silhouette: Optional[Tensor] = None, *,
              backend: str = "auto") -> Tensor:
    """``image`` (B, H, W, C) pre-flip, antialiased along the silhouette edges of ``fragments.faces``;
    differentiable with respect to the image and to the faces (through the edges' crossings).

    silhouette (B, F, 3) bool: which edges k = (k, k + 1 mod 3) of the faces may be silhouettes (see
    :func:`.silhouettes.silhouette_edges`); None: every edge. Apply it once to all channels (e.g.
    rgb and alpha stacked): they share the pairs' geometry."""
    image = checks.tensor("image", image, dims=4)
    faces = fragments.faces
    if image.shape[:3] != fragments.face_index.shape:
        raise ValueError(f"image must have shape (B, H, W, C) = {tuple(fragments.face_index.shape)} + (C,), "
                         f"got {tuple(image.shape)}")
    if silhouette is None:
        silhouette = torch.ones(faces.shape[:2] + (3,), dtype=torch.bool, device=faces.device)
    elif tuple(silhouette.shape) != tuple(faces.shape[:2]) + (3,) or silhouette.dtype != torch.bool:
        raise ValueError(f"silhouette must be a bool tensor of shape (B, F, 3) = {tuple(faces.shape[:2]) + (3,)}, "
                         f"got {silhouette.dtype} {tuple(silhouette.shape)}")
    checks.same_device(image=image, faces=faces, silhouette=silhouette)
    ops = backends.ops_for(backend, image.device)
    with torch.no_grad():
        alpha, edge = ops.antialias_pairs(faces.detach(), fragments.face_index, fragments.depth.detach().contiguous(),
                                          silhouette.contiguous())
    return _Antialias.apply(image.contiguous(), faces, alpha, edge, ops)


def render(scene, fragments, outputs, options):
    silhouette = silhouette_edges(scene.faces.detach(), scene.indices, scene.parent)
    # one image of the outputs' channels stacked, in order (render.finish_images splits it)
    return {tuple(n for n in ("rgb", "alpha") if n in outputs):
            antialias(hard_image(scene, fragments, outputs), fragments, silhouette, backend=scene.backend)}
