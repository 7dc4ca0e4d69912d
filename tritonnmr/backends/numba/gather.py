"""mesh.gather as one numba pass each way: per face-vertex values (B, F, 3, C) from per-vertex ones
(B, V, C), zeros for -1 padding rows, and the gradient's per-vertex sums.

The torch path is a clamp, an index_select, a where and, backward, an index_add and a where, each
face-sized. The gradient adds each vertex's face corners in (face, corner) order, the padding rows'
zeros included (to vertex 0, as the torch path's clamped index does), so it equals the torch path's
bit for bit; one job per batch entry (each writes its own vertices).
"""
import numpy as np

from . import buffers
from ._jit import jit, run_jobs


@jit
def gather_entries(lo, hi, values, faces, out):
    """out[b, f, k] <- values[b, faces[b, f, k]] (zeros where the row faces[b, f] is all -1), for
    batch entries lo .. hi - 1."""
    F, C = faces.shape[1], values.shape[2]
    V = values.shape[1]
    for b in range(lo, hi):
        for f in range(F):
            pad = faces[b, f, 0] < 0 and faces[b, f, 1] < 0 and faces[b, f, 2] < 0
            for k in range(3):
                v = min(max(faces[b, f, k], 0), V - 1)
                for c in range(C):
                    out[b, f, k, c] = 0 if pad else values[b, v, c]


@jit
def scatter_entries(lo, hi, grad, faces, out):
    """out (B, V, C) (zeroed) <- each vertex's sum of grad (B, F, 3, C) over its face corners, in
    (face, corner) order, for batch entries lo .. hi - 1 (padding rows add 0 to vertex 0)."""
    F, C = faces.shape[1], out.shape[2]
    V = out.shape[1]
    for b in range(lo, hi):
        for f in range(F):
            pad = faces[b, f, 0] < 0 and faces[b, f, 1] < 0 and faces[b, f, 2] < 0
            for k in range(3):
                v = min(max(faces[b, f, k], 0), V - 1)
                for c in range(C):
                    out[b, v, c] += 0 if pad else grad[b, f, k, c]


def gather(values, faces):
    """Numpy (B, F, 3, C) of values (B, V, C) float and faces (B, F, 3) int64 (see gather_entries)."""
    B, F = faces.shape[:2]
    out = buffers.empty((B, F, 3, values.shape[2]), values.dtype)
    run_jobs(gather_entries, B, values, faces, out, work=out.size)
    return out


def gather_backward(grad, faces, num_vertices):
    """Numpy (B, V, C) gradient of :func:`gather` from grad (B, F, 3, C)."""
    B = faces.shape[0]
    out = buffers.zeros((B, num_vertices, grad.shape[3]), grad.dtype)
    run_jobs(scatter_entries, B, grad, faces, out, work=grad.size)
    return out
