"""TEMPORARY adapter: the backend contract v2 (docs/backend-contract.md) over today's kernels.

Square images only; the UV ops use the reference. Replaced when the kernels move to contract v2.
"""
import torch

from .. import reference
from . import depth_backward as _depth_backward
from . import edge_backward as _edge_backward
from . import interpolate as _interpolate
from . import interpolate_backward as _interpolate_backward
from . import rasterize_fragments as _rasterize_fragments
from . import sample_textures as _sample_textures
from . import sample_textures_backward as _sample_textures_backward


def _square(height, width):
    if height != width:
        raise NotImplementedError("the Triton kernels take square images until they move to contract v2")
    return height


def rasterize_fragments(faces, height, width, near, far):
    return _rasterize_fragments(faces, _square(height, width), near, far)


def depth_backward(faces, face_index, weights, depth, grad_depth):
    return _depth_backward(faces, face_index, weights, depth, grad_depth)


def edge_backward(faces, face_index, image, grad_image, eps):
    _square(*face_index.shape[1:])
    return _edge_backward(faces, face_index, image, grad_image, eps)


def _unit_depth(face_index, num_faces):
    """Faces with z = 1 and depth 1, so that the old kernels' w z / z_k equals the bary given as w."""
    B = face_index.shape[0]
    return (torch.ones(B, num_faces, 3, 3, device=face_index.device),
            torch.ones(face_index.shape, device=face_index.device))


def sample_cubes(face_index, bary, textures, eps):
    faces, depth = _unit_depth(face_index, textures.shape[1])
    return _sample_textures(faces, face_index, bary, depth, textures, eps)


def sample_cubes_backward(face_index, bary, grad, texture_shape, eps):
    faces, depth = _unit_depth(face_index, texture_shape[1])
    return _sample_textures_backward(faces, face_index, bary, depth, texture_shape, grad, eps)


def interpolate(face_index, bary, attributes):
    faces, depth = _unit_depth(face_index, attributes.shape[1])
    return _interpolate(faces, face_index, bary, depth, attributes)


def interpolate_backward(face_index, bary, grad, attribute_shape):
    faces, depth = _unit_depth(face_index, attribute_shape[1])
    return _interpolate_backward(faces, face_index, bary, depth, attribute_shape, grad)


perspective_barycentrics = reference.perspective_barycentrics
sample_uv = reference.sample_uv
sample_uv_backward = reference.sample_uv_backward
