"""The soft rasterizer (SoftRas; Liu et al., ICCV 2019) as a gradient estimator: a soft image, and its
exact gradient.

Every face j within reach of pixel p contributes ``D_j(p) = sigmoid(s d^2 / sigma)`` (d the distance
from p's centre to the face in square NDC, s = +1 inside, -1 outside): ``alpha = 1 - prod_j (1 - D_j)``,
and the colour is a depth softmax over the contributing faces and the background,
``(sum_j D_j w_j C_j + w_bg C_bg) / (sum_j D_j w_j + w_bg)``, ``w_j = exp(zn_j / gamma)``, zn_j the
face's normalised depth ``(far - depth_j) / (far - near)`` at the barycentric point clamped to the face,
``w_bg = exp(eps / gamma)``. C_j is the shader's colour of face j at that point, lit as in the hard
image. The formulas and their derivatives: backends/torch_soft.py.

Which faces take part: the faces the hard rasterizer draws (front-facing, non-zero area, so with
``fill_back=True`` both sides of every face; a culled back face contributes nothing, as it covers
nothing in the hard image), after near-plane clipping, whose depth there lies in (near, far) and
that lie within ``sqrt(sigma ln(1 / SOFT_DIST_EPS - 1))`` of p (SoftRas's cut-off, where D falls below
SOFT_DIST_EPS; inside a face always). The backends list these pairs exactly (no face dropped, no
per-pixel cap). Shading: the pairs are shaded as a (B, 1, P) image of fragments (one column per pair
of the batch entry), so any shader works unchanged; its colours get gradients to its attributes and,
through the barycentrics (``X_bary_backward``; autograd for plain-torch shaders), to the vertices.
"""
import math

import torch

from .. import backends, defaults
from ..raster import Fragments, in_mesh_faces
from . import background, light_of


def radius(sigma):
    """The cut-off distance (square NDC): outside a face, D = sigmoid(-d^2 / sigma) < SOFT_DIST_EPS beyond it."""
    return math.sqrt(sigma * math.log(1.0 / defaults.SOFT_DIST_EPS - 1.0))


class _SoftFragments(torch.autograd.Function):
    """faces -> the (pixel, face) pairs and their d2, depth and bary; backward: exact, to the faces."""

    @staticmethod
    def forward(ctx, faces, height, width, near, far, reach, ops):
        pixel, face, d2, depth, bary = ops.soft_fragments(faces, height, width, near, far, reach)
        ctx.save_for_backward(faces, pixel, face)
        ctx.size, ctx.ops = (height, width), ops
        ctx.mark_non_differentiable(pixel, face)
        return pixel, face, d2, depth, bary

    @staticmethod
    def backward(ctx, _grad_pixel, _grad_face, grad_d2, grad_depth, grad_bary):
        faces, pixel, face = ctx.saved_tensors
        n = pixel.numel()
        grad_d2 = faces.new_zeros(n) if grad_d2 is None else grad_d2.contiguous()
        grad_depth = faces.new_zeros(n) if grad_depth is None else grad_depth.contiguous()
        grad_bary = faces.new_zeros(n, 3) if grad_bary is None else grad_bary.contiguous()
        grad = ctx.ops.soft_fragments_backward(faces, *ctx.size, pixel, face, grad_d2, grad_depth, grad_bary)
        return grad, None, None, None, None, None, None


class _SoftBlend(torch.autograd.Function):
    """pairs -> rgb (P, C) and alpha (P,); backward: exact, to the pairs' d2, depth and colours."""

    @staticmethod
    def forward(ctx, pixel, d2, depth, colours, background_colour, num_pixels, sigma, gamma, eps, near, far, ops):
        args = (num_pixels, sigma, gamma, eps, near, far)
        rgb, alpha = ops.soft_blend(pixel, d2, depth, colours, background_colour, *args)
        ctx.save_for_backward(pixel, d2, depth, colours, background_colour)
        ctx.args, ctx.ops = args, ops
        return rgb, alpha

    @staticmethod
    def backward(ctx, grad_rgb, grad_alpha):
        pixel, d2, depth, colours, background_colour = ctx.saved_tensors
        num_pixels = ctx.args[0]
        grad_rgb = colours.new_zeros(num_pixels, colours.shape[1]) if grad_rgb is None else grad_rgb.contiguous()
        grad_alpha = d2.new_zeros(num_pixels) if grad_alpha is None else grad_alpha.contiguous()
        g_d2, g_depth, g_colours = ctx.ops.soft_blend_backward(pixel, d2, depth, colours, background_colour, *ctx.args,
                                                               grad_rgb, grad_alpha)
        return (None, g_d2, g_depth, g_colours) + (None,) * 8


def pair_colours(scene, pixel, face, depth, bary):
    """The lit shader colours (N, C) of the pairs: the shader sees them as fragments of a (B, 1, P)
    image, pair i of batch entry b at column i - (the entry's first pair), in the mesh's faces."""
    B, F = scene.faces.shape[:2]
    entry = pixel // (scene.height * scene.width)
    counts = torch.bincount(entry, minlength=B)
    columns = int(counts.max()) if entry.numel() else 0  # one host read: the image's width
    column = torch.arange(entry.numel(), device=entry.device) - (torch.cumsum(counts, 0) - counts)[entry]
    where = (entry, torch.zeros_like(entry), column)
    face_index = torch.full((B, 1, columns), -1, dtype=torch.long, device=entry.device).index_put(where, face % F)
    bary_map = bary.new_zeros(B, 1, columns, 3).index_put(where, bary)
    depth_map = depth.new_full((B, 1, columns), scene.far).index_put(where, depth.detach())
    corner_z = scene.faces.reshape(B * F, 3, 3)[face, :, 2]
    weights = bary.new_zeros(B, 1, columns, 3).index_put(where, (bary * corner_z / depth[:, None]).detach())
    shaded = in_mesh_faces(Fragments(face_index, weights, depth_map, scene.faces, bary_map), scene.parent)
    rgb = scene.shader.shade(shaded, scene.attributes, scene.backend)
    light = light_of(scene, shaded.face_index, rgb.shape[-1])
    rgb = rgb if light is None else rgb * light
    return rgb[where]


def render(scene, fragments, outputs, options):
    B = scene.faces.shape[0]
    H, W = scene.height, scene.width
    ops = backends.ops_for(scene.backend, scene.faces.device)
    near, far = float(scene.near), float(scene.far)
    pixel, face, d2, depth, bary = _SoftFragments.apply(scene.faces, H, W, near, far, radius(options.sigma), ops)
    if "rgb" in outputs:
        colours = pair_colours(scene, pixel, face, depth, bary)
        bg = background(scene, colours)
    else:  # alpha alone: no colour channel
        colours, bg = d2.new_zeros(d2.shape[0], 0), d2.new_zeros(0)
    rgb, alpha = _SoftBlend.apply(pixel, d2, depth, colours, bg, B * H * W, float(options.sigma),
                                  float(options.gamma), defaults.SOFT_BACKGROUND_DEPTH, near, far, ops)
    out = {}
    if "rgb" in outputs:
        out["rgb"] = rgb.view(B, H, W, -1)
    if "alpha" in outputs:
        out["alpha"] = alpha.view(B, H, W, 1)
    return out
