"""Benchmark baseline, not used by the renderer: a pixel-parallel forward in which every pixel
loops over all faces (the strategy of the paper's own CUDA code). It fills the same key map as
raster.coverage_kernel, so raster.resolve_kernel finishes the job; its cost is pixels x faces."""
import triton
import triton.language as tl

from .geometry import EMPTY, cover_key, gather_faces, pixel_centre


@triton.jit(do_not_specialize=["F", "H", "W", "total"])
def pixel_loop_kernel(faces_ptr, zbuf_ptr, F, H, W, total, near, far, BLOCK: tl.constexpr):
    """Per pixel: the smallest key (float bits of z) << 32 | f over all faces f that are drawn,
    cover the pixel centre and have near < z < far (EMPTY if none)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    b = offs // (H * W)
    xp = pixel_centre(offs % W, W.to(tl.float32))
    yp = pixel_centre((offs // W) % H, H.to(tl.float32))
    best = tl.full([BLOCK], EMPTY, tl.int64)
    for f in range(0, F):
        drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = gather_faces(faces_ptr + (b * F + f) * 9, valid)
        key = cover_key(x0, y0, z0, x1, y1, z1, x2, y2, z2, f, xp, yp, near, far)
        best = tl.where(drawn, tl.minimum(best, key), best)
    tl.store(zbuf_ptr + offs, best, mask=valid)
