"""Benchmark baseline, not used by the renderer: a pixel-parallel forward in which every pixel
loops over all faces (the strategy of the paper's own CUDA code). It fills the same key map as
raster.coverage_kernel, so raster.resolve_kernel finishes the job; its cost is pixels x faces."""
import torch
import triton
import triton.language as tl

from .geometry import barycentric, front_facing, gather_faces, inside, pixel_centre
from .raster import EMPTY, resolve_kernel


@triton.jit
def pixel_loop_kernel(faces_ptr, zbuf_ptr, F, S, total, near, far, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    b = offs // (S * S)
    Sf = S.to(tl.float32)
    xp = pixel_centre(offs % S, Sf)
    yp = pixel_centre((offs // S) % S, Sf)
    best = tl.full([BLOCK], EMPTY, tl.int64)
    for f in range(0, F):
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = gather_faces(faces_ptr + (b * F + f) * 9, valid)
        w0, w1, w2 = barycentric(x0, y0, x1, y1, x2, y2, xp, yp)
        z = 1.0 / (w0 / z0 + w1 / z1 + w2 / z2)
        keep = front_facing(x0, y0, x1, y1, x2, y2) & inside(x0, y0, x1, y1, x2, y2, xp, yp) \
            & (z > near) & (z < far)
        key = (z.to(tl.int32, bitcast=True).to(tl.int64) << 32) + f
        best = tl.where(keep & (key < best), key, best)
    tl.store(zbuf_ptr + offs, best, mask=valid)


def rasterize_fragments_pixel_loop(faces, image_size, near, far, block=128):
    """Same results as kernels.rasterize_fragments, computed pixel-parallel."""
    B, F = faces.shape[:2]
    S = image_size
    total = B * S * S
    zbuf = torch.empty((total,), dtype=torch.int64, device=faces.device)
    pixel_loop_kernel[(triton.cdiv(total, block),)](faces, zbuf, F, S, total, near, far, BLOCK=block)
    face_index = torch.empty((B, S, S), dtype=torch.int64, device=faces.device)
    weights = torch.empty((B, S, S, 3), dtype=faces.dtype, device=faces.device)
    depth = torch.empty((B, S, S), dtype=faces.dtype, device=faces.device)
    resolve_kernel[(triton.cdiv(total, block),)](zbuf, faces, face_index, weights, depth, F, S, total, far,
                                                 BLOCK=block)
    return face_index, weights, depth
