"""Triton backend: the same ops as tritonnmr.reference, as kernels.

Import this module only after deciding on the interpreter: TRITON_INTERPRET=1 must be set before
triton is imported for the kernels to run on CPU tensors.

The interpreter accepts code that the real compiler rejects; tests/test_compile.py compiles every
launch for sm_80 and sm_90. So, in every kernel: a module global read inside a kernel is a
``tl.constexpr(...)``; an int argument that may be 1 is in ``do_not_specialize`` (Triton turns an
int equal to 1 into a constant, which has no ``.to()``); and no lane, masked or not, divides by zero
(faces that are not drawn are replaced by a harmless triangle first: geometry.sanitize).
"""
import torch
import triton

from . import edges, raster, shade

BLOCK = 128



def rasterize_fragments(faces, image_size, near, far):
    """See reference.rasterize_fragments: (face_index int64, weights, depth) maps."""
    B, F = faces.shape[:2]
    S = image_size
    total = B * S * S
    zbuf = torch.full((total,), raster.EMPTY_KEY, dtype=torch.int64, device=faces.device)
    if B * F:
        raster.coverage_kernel[(B * F,)](faces, zbuf, F, S, near, far, BLOCK=BLOCK)
    face_index = torch.empty((B, S, S), dtype=torch.int64, device=faces.device)
    weights = torch.empty((B, S, S, 3), dtype=faces.dtype, device=faces.device)
    depth = torch.empty((B, S, S), dtype=faces.dtype, device=faces.device)
    if total:
        raster.resolve_kernel[(triton.cdiv(total, BLOCK),)](zbuf, faces, face_index, weights, depth,
                                                            F, S, total, far, BLOCK=BLOCK)
    return face_index, weights, depth


def depth_backward(faces, face_index, weights, depth, grad_depth):
    B, F = faces.shape[:2]
    out = torch.zeros_like(faces)
    if B * F:
        raster.depth_backward_kernel[(B * F,)](faces, face_index, weights, depth, grad_depth, out,
                                               F, face_index.shape[-1], BLOCK=BLOCK)
    return out


def edge_backward(faces, face_index, image, grad_image, eps):
    B, F = faces.shape[:2]
    C = image.shape[-1]
    out = torch.zeros_like(faces)
    if B * F:
        edges.edge_backward_kernel[(B * F,)](faces, image, grad_image, face_index, out, F,
                                             face_index.shape[-1], eps, C=C, CP=triton.next_power_of_2(C),
                                             BLOCK=64)
    return out


def _texture_pass(faces, face_index, weights, depth, cubes, pixels, eps, backward):
    B, F, T = cubes.shape[:3]
    total = face_index.numel()
    if total:
        shade.texture_kernel[(triton.cdiv(total, BLOCK),)](faces, face_index, weights, depth, cubes, pixels,
                                                           F, face_index.shape[-1], T, total, eps,
                                                           BACKWARD=backward, BLOCK=BLOCK)


def sample_textures(faces, face_index, weights, depth, textures, eps):
    rgb = torch.empty(face_index.shape + (3,), dtype=textures.dtype, device=textures.device)
    _texture_pass(faces, face_index, weights, depth, textures, rgb, eps, False)
    return rgb


def sample_textures_backward(faces, face_index, weights, depth, texture_shape, grad_rgb, eps):
    grad = torch.zeros(texture_shape, dtype=grad_rgb.dtype, device=grad_rgb.device)
    _texture_pass(faces, face_index, weights, depth, grad, grad_rgb, eps, True)
    return grad


def _interpolate_pass(faces, face_index, weights, depth, attributes, pixels, backward):
    F, C = attributes.shape[1], attributes.shape[-1]
    total = face_index.numel()
    if total:
        shade.interpolate_kernel[(triton.cdiv(total, BLOCK),)](
            faces, face_index, weights, depth, attributes, pixels, F, face_index.shape[-1], total,
            C=C, CP=triton.next_power_of_2(C), BACKWARD=backward, BLOCK=BLOCK)


def interpolate(faces, face_index, weights, depth, attributes):
    out = torch.empty(face_index.shape + (attributes.shape[-1],), dtype=attributes.dtype,
                      device=attributes.device)
    _interpolate_pass(faces, face_index, weights, depth, attributes, out, False)
    return out


def interpolate_backward(faces, face_index, weights, depth, attribute_shape, grad_out):
    grad = torch.zeros(attribute_shape, dtype=grad_out.dtype, device=grad_out.device)
    _interpolate_pass(faces, face_index, weights, depth, grad, grad_out, True)
    return grad
