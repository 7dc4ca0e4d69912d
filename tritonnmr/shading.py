"""Shading: turning fragments into colours, pluggable without touching the rasterizer.

A shader is any object with ``shade(fragments, attributes, backend) -> image (B, S, S, C)`` that
is differentiable with respect to its attributes. It receives :class:`Fragments` (pre-flip maps:
face index (B, S, S) int64, -1 where empty; barycentric weights (B, S, S, 3); depth (B, S, S);
the screen-space faces (B, F, 3, 3)) and returns colours for the covered pixels (the value at
empty pixels is replaced by the background). The rasterizer adds the blurred-edge gradient to
the faces for any shader, so a shader only has to care about its own attributes.

Two shaders come with kernels in both backends: :class:`TextureCubeShader` (the paper's per-face
texture cubes) and :class:`VertexColorShader` (perspective-correct interpolation of per-vertex
attributes). A shader written with plain torch ops needs nothing else: autograd differentiates it.
"""
from collections import namedtuple

import torch

from . import backends, checks

Fragments = namedtuple("Fragments", ["face_index", "weights", "depth", "faces"])


class _KernelOp(torch.autograd.Function):
    """Runs ``ops.<name>`` forward and ``ops.<name>_backward`` for the gradient to the attributes."""

    @staticmethod
    def forward(ctx, ops, name, faces, face_index, weights, depth, attributes, *extra):
        ctx.save_for_backward(faces, face_index, weights, depth)
        ctx.ops, ctx.name, ctx.extra, ctx.shape = ops, name, extra, attributes.shape
        return getattr(ops, name)(faces, face_index, weights, depth, attributes, *extra)

    @staticmethod
    def backward(ctx, grad):
        backward = getattr(ctx.ops, ctx.name + "_backward")
        g = backward(*ctx.saved_tensors, ctx.shape, grad.contiguous(), *ctx.extra)
        return (None,) * 6 + (g,) + (None,) * len(ctx.extra)


def run_kernel_op(name, fragments, attributes, backend, *extra):
    """Helper for shaders backed by a pair of ops in both backends (see kernels/ and reference.py)."""
    ops = backends.ops(backend, attributes.device)
    f = fragments
    return _KernelOp.apply(ops, name, f.faces.detach(), f.face_index, f.weights.detach(),
                           f.depth.detach(), attributes, *extra)


class Shader:
    """Base class. Subclasses set ``channels`` and implement ``shade``."""

    channels = 3

    def shade(self, fragments, attributes, backend="auto"):
        raise NotImplementedError

    def check(self, attributes, batch, num_faces):
        """Validate ``attributes`` for a mesh of ``num_faces`` faces; return them as float32."""
        return attributes


class TextureCubeShader(Shader):
    """Per-face texture cubes (B, F, T, T, T, 3), sampled trilinearly at
    ``t_k = clamp(w_k (T - 1) z / z_k, 0, T - 1 - eps)``."""

    def __init__(self, eps=1e-3):
        self.eps = eps

    def check(self, attributes, batch, num_faces):
        return checks.textures(attributes, batch, num_faces)

    def shade(self, fragments, attributes, backend="auto"):
        return run_kernel_op("sample_textures", fragments, attributes, backend, self.eps)


class VertexColorShader(Shader):
    """Gouraud shading: per face-vertex attributes (B, F, 3, C), perspective-correct
    ``z * sum_k w_k a_k / z_k``. Use :func:`tritonnmr.vertices_to_faces` to turn per-vertex
    colours (B, V, C) into this layout."""

    def __init__(self, channels=3):
        self.channels = channels

    def check(self, attributes, batch, num_faces):
        attributes = checks.tensor("textures", attributes, dims=4)
        if attributes.shape[:3] != (batch, num_faces, 3) or attributes.shape[3] != self.channels:
            raise ValueError(f"vertex colours must have shape (B={batch}, F={num_faces}, 3, "
                             f"{self.channels}), got {tuple(attributes.shape)}")
        return checks.finite("textures", attributes)

    def shade(self, fragments, attributes, backend="auto"):
        return run_kernel_op("interpolate", fragments, attributes, backend)


def default_shader(textures, eps):
    """Texture cubes for 6-D textures, vertex colours for 4-D (B, F, 3, C) ones."""
    if torch.is_tensor(textures) and textures.dim() == 4:
        return VertexColorShader(textures.shape[-1])
    return TextureCubeShader(eps)
