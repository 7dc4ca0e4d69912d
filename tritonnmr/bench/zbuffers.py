"""The forward z-buffers the binned one is benchmarked against, as Triton kernels (not used by the
renderer; measured by ``tritonnmr bench`` and counted by the work model):

- ``face``: one program per (batch, face) walks the face's clipped box BLOCK pixels at a time and keeps
  the smallest key per pixel with a global 64-bit ``atomic_min`` (the previous design);
- ``pixel-loop``: every pixel loops over all faces (the strategy of the paper's own CUDA code); its cost
  is pixels x faces.

Both fill a key map (float bits of z) << 32 | face like the binned z-buffer's tiles, and
``resolve_kernel`` decodes it into the contract's fragments, so all three give equal results.
"""
import torch
import triton
import triton.language as tl

from ..backends.common import EMPTY_KEY, guarded
from ..backends import triton as backend
from ..backends.triton import binning, tuning
from ..backends.triton.geometry import EMPTY, cover_key, gather_faces, load_face, pixel_centre, write_fragments

STRATEGIES = ("binned", "face", "pixel-loop")


@triton.jit(do_not_specialize=["F", "H", "W"])
def coverage_kernel(faces_ptr, box_ptr, zbuf_ptr, F, H, W, near, far, BLOCK: tl.constexpr):
    """Face-parallel: one program per (batch, face) walks the face's box (binning.face_boxes: lo_x,
    lo_y, columns, rows; empty for faces that cover nothing) BLOCK pixels at a time and keeps the
    smallest key per pixel with a global 64-bit atomic_min."""
    pid = tl.program_id(0)
    b = pid // F
    f = pid % F
    lo_x = tl.load(box_ptr + pid * 4 + 0).to(tl.int32)
    lo_y = tl.load(box_ptr + pid * 4 + 1).to(tl.int32)
    nx = tl.load(box_ptr + pid * 4 + 2).to(tl.int32)
    n = nx * tl.load(box_ptr + pid * 4 + 3).to(tl.int32)
    W_f = W.to(tl.float32)
    H_f = H.to(tl.float32)
    # sanitised: a face that is not drawn has an empty box (no trip) and divides by nothing
    _drawn, x0, y0, z0, x1, y1, z1, x2, y2, z2 = load_face(faces_ptr + pid.to(tl.int64) * 9)
    row = zbuf_ptr + b.to(tl.int64) * H * W
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        px = lo_x + offs % tl.maximum(nx, 1)
        py = lo_y + offs // tl.maximum(nx, 1)
        key = cover_key(x0, y0, z0, x1, y1, z1, x2, y2, z2, f, pixel_centre(px, W_f), pixel_centre(py, H_f), near, far)
        tl.atomic_min(row + py * W + px, key, mask=(offs < n) & (key != EMPTY))


@triton.jit(do_not_specialize=["F", "H", "W", "total"])
def resolve_kernel(zbuf_ptr, faces_ptr, index_ptr, weights_ptr, depth_ptr, F, H, W, total, far,
                   BLOCK: tl.constexpr):
    """Pixel-parallel: decode each pixel's key into face index and depth, recompute its weights."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    key = tl.load(zbuf_ptr + offs, mask=valid, other=EMPTY)
    b = offs // (H * W)
    write_fragments(key, offs, valid, b, offs % W, (offs // W) % H, faces_ptr, index_ptr, weights_ptr,
                    depth_ptr, F, W.to(tl.float32), H.to(tl.float32), far)


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


def _resolve(zbuf, faces, H, W, far, face_index, weights, depth, block):
    total = zbuf.numel()
    backend._launch(resolve_kernel, (triton.cdiv(total, block),), block)(
        zbuf, faces, face_index, weights, depth, faces.shape[1], H, W, total, far, BLOCK=block)


def _face_parallel(faces, H, W, near, far, face_index, weights, depth):
    """One coverage_kernel program per face (64-bit atomic_min into a key map), then the decode."""
    B, F = faces.shape[:2]
    cfg = tuning.config(H, W, F)
    boxes = torch.stack(list(binning.face_boxes(faces, H, W, near, far)), 1).to(torch.int32).contiguous()
    zbuf = torch.full((B * H * W,), EMPTY_KEY, dtype=torch.int64, device=faces.device)
    backend._launch(coverage_kernel, (B * F,), cfg.block)(faces, boxes, zbuf, F, H, W, near, far, BLOCK=cfg.block)
    _resolve(zbuf, faces, H, W, far, face_index, weights, depth, cfg.map_block)


def _pixel_loop(faces, H, W, near, far, face_index, weights, depth):
    """Every block of pixels loops over all faces (pixel_loop_kernel), then the decode."""
    B, F = faces.shape[:2]
    cfg = tuning.config(H, W, F)
    zbuf = torch.empty((B * H * W,), dtype=torch.int64, device=faces.device)
    backend._launch(pixel_loop_kernel, (triton.cdiv(zbuf.numel(), cfg.block),), cfg.block)(
        faces, zbuf, F, H, W, zbuf.numel(), near, far, BLOCK=cfg.block)
    _resolve(zbuf, faces, H, W, far, face_index, weights, depth, cfg.map_block)


@guarded
def rasterize_fragments(faces, height, width, near, far, strategy="binned"):
    """The contract's rasterize_fragments with the forward ``strategy``: "binned" (the renderer's),
    "face" or "pixel-loop"; equal fragments whichever is used."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    B = faces.shape[0]
    face_index = torch.full((B, height, width), -1, dtype=torch.int64, device=faces.device)
    weights = torch.zeros((B, height, width, 3), dtype=faces.dtype, device=faces.device)
    depth = torch.full((B, height, width), float(far), dtype=faces.dtype, device=faces.device)
    run = {"binned": backend.binned, "face": _face_parallel, "pixel-loop": _pixel_loop}[strategy]
    with backend.device_of(faces):
        run(faces, height, width, near, far, face_index, weights, depth)
    return face_index, weights, depth
