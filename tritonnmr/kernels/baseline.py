"""Benchmark baseline, not used by the renderer: a pixel-parallel forward in which every pixel
loops over all faces (the strategy of the paper's own CUDA code). It fills the same key map as
raster.coverage_kernel, so raster.resolve_kernel finishes the job; its cost is pixels x faces."""
import torch
import triton
import triton.language as tl

from .geometry import barycentric, gather_faces, inside, inverse_depth, pixel_centre
from .raster import EMPTY, resolve_kernel


@triton.jit(do_not_specialize=["F", "S", "total"])
def pixel_loop_kernel(faces_ptr, zbuf_ptr, F, S, total, near, far, BLOCK: tl.constexpr):
    """Per pixel: the smallest key (float bits of z) << 32 | f over all faces f that are drawn,
    cover the pixel centre and have near < z < far (EMPTY if none)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    b = offs // (S * S)
    Sf = S.to(tl.float32)
    xp = pixel_centre(offs % S, Sf)
    yp = pixel_centre((offs // S) % S, Sf)
    best = tl.full([BLOCK], EMPTY, tl.int64)
    for f in range(0, F):
        drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = gather_faces(faces_ptr + (b * F + f) * 9, valid)
        w0, w1, w2 = barycentric(x0, y0, x1, y1, x2, y2, xp, yp)
        z, finite = inverse_depth(w0, w1, w2, z0, z1, z2)
        keep = drawn & inside(x0, y0, x1, y1, x2, y2, xp, yp) & finite & (z > near) & (z < far)
        key = (z.to(tl.int32, bitcast=True).to(tl.int64) << 32) + f
        best = tl.where(keep & (key < best), key, best)
    tl.store(zbuf_ptr + offs, best, mask=valid)


def rasterize_fragments_pixel_loop(faces, image_size, near, far, block=128):
    """Same results as kernels.rasterize_fragments, computed pixel-parallel."""
    B, F = faces.shape[:2]
    S = image_size
    total = B * S * S
    zbuf = torch.empty((total,), dtype=torch.int64, device=faces.device)
    face_index = torch.empty((B, S, S), dtype=torch.int64, device=faces.device)
    weights = torch.empty((B, S, S, 3), dtype=faces.dtype, device=faces.device)
    depth = torch.empty((B, S, S), dtype=faces.dtype, device=faces.device)
    if total:
        grid = (triton.cdiv(total, block),)
        pixel_loop_kernel[grid](faces, zbuf, F, S, total, near, far, BLOCK=block)
        resolve_kernel[grid](zbuf, faces, face_index, weights, depth, F, S, total, far, BLOCK=block)
    return face_index, weights, depth
