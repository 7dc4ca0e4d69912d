"""lights.face_light as one numba pass each way: per face, the unit normal, its cosine with the light
direction and the light ``ambient + directional max(0, n . d)`` (B, F, 3), and the faces' gradient.

The torch path is two subtractions, a cross product, a normalisation (norm, clamp, division), a
product, a sum, a relu and two affine steps, each face-sized, and about twice as many operations
backward. Here each face is a few dozen flops, in float32 and in the torch path's order (torch's own
norm kernel rounds differently, so the two agree to within an ulp or so, not bit for bit):

    a = v0 - v1, b = v2 - v1, n = a x b, |n| = sqrt(n_x^2 + n_y^2 + n_z^2), u = n / max(|n|, eps),
    cos = max(u . d, 0), light_c = A_c + D_c cos    (A = ambient colour x intensity, D likewise)

Backward, with g = dL/dlight: g_cos = sum_c D_c g_c where cos > 0 (0 elsewhere, as relu's), g_u =
g_cos d, g_n = (g_u - u (u . g_u)) / |n| where |n| >= eps (g_u / eps elsewhere, the clamp's), then
g_a = b x g_n and g_b = g_n x a go to v0 and v2, and -(g_a + g_b) to v1. Each face writes only its own
rows, so the batch entries share threads and the result is the same on any number of them.
"""
import numpy as np

from .buffers import empty
from ._jit import jit, run_jobs


@jit
def _cosine(faces, direction, eps, b, f):
    """(a, b, |n|, u, u . d) of face (b, f): edge vectors a = v0 - v1 and b = v2 - v1, the length of
    n = a x b, the unit normal u = n / max(|n|, eps) and its (unclamped) cosine with d, float32."""
    ax, ay, az = faces[b, f, 0, 0] - faces[b, f, 1, 0], faces[b, f, 0, 1] - faces[b, f, 1, 1], \
        faces[b, f, 0, 2] - faces[b, f, 1, 2]
    bx, by, bz = faces[b, f, 2, 0] - faces[b, f, 1, 0], faces[b, f, 2, 1] - faces[b, f, 1, 1], \
        faces[b, f, 2, 2] - faces[b, f, 1, 2]
    n0, n1, n2 = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    norm = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    scale = max(norm, eps)
    u = (n0 / scale, n1 / scale, n2 / scale)
    cos = u[0] * direction[b, 0] + u[1] * direction[b, 1] + u[2] * direction[b, 2]
    return (ax, ay, az), (bx, by, bz), norm, u, cos


@jit
def light_rows(lo, hi, faces, ambient, directional, direction, eps, out):
    """out (B, F, 3) <- the light of faces (B, F, 3, 3) of batch entries lo .. hi - 1; ambient,
    directional and direction are (B, 3) (colour times intensity, and d)."""
    F = faces.shape[1]
    zero = np.float32(0.0)
    for b in range(lo, hi):
        for f in range(F):
            cos = max(_cosine(faces, direction, eps, b, f)[4], zero)
            for c in range(3):
                out[b, f, c] = ambient[b, c] + directional[b, c] * cos


@jit
def light_gradient_rows(lo, hi, faces, directional, direction, eps, grad, out):
    """out (B, F, 3, 3) <- the faces' gradient of sum(grad * light), batch entries lo .. hi - 1."""
    F = faces.shape[1]
    zero = np.float32(0.0)
    for b in range(lo, hi):
        for f in range(F):
            a, e, norm, (u0, u1, u2), cos = _cosine(faces, direction, eps, b, f)
            g_cos = zero
            if cos > zero:
                g_cos = directional[b, 0] * grad[b, f, 0] + directional[b, 1] * grad[b, f, 1] \
                    + directional[b, 2] * grad[b, f, 2]
            g0, g1, g2 = g_cos * direction[b, 0], g_cos * direction[b, 1], g_cos * direction[b, 2]
            if norm >= eps:
                along = u0 * g0 + u1 * g1 + u2 * g2
                g0, g1, g2 = (g0 - u0 * along) / norm, (g1 - u1 * along) / norm, (g2 - u2 * along) / norm
            else:
                g0, g1, g2 = g0 / eps, g1 / eps, g2 / eps
            ga = (e[1] * g2 - e[2] * g1, e[2] * g0 - e[0] * g2, e[0] * g1 - e[1] * g0)  # b x g_n
            gb = (g1 * a[2] - g2 * a[1], g2 * a[0] - g0 * a[2], g0 * a[1] - g1 * a[0])  # g_n x a
            for c in range(3):
                out[b, f, 0, c] = ga[c]
                out[b, f, 1, c] = -(ga[c] + gb[c])
                out[b, f, 2, c] = gb[c]


def face_light(faces, ambient, directional, direction, eps):
    """Numpy (B, F, 3) light of faces (B, F, 3, 3) float32; ambient, directional, direction (B, 3)."""
    B, F = faces.shape[:2]
    out = empty((B, F, 3), np.float32)
    run_jobs(light_rows, B, faces, ambient, directional, direction, np.float32(eps), out, work=faces.size)
    return out


def face_light_backward(faces, directional, direction, eps, grad):
    """Numpy (B, F, 3, 3) gradient to the faces from grad (B, F, 3)."""
    out = empty(faces.shape, np.float32)
    run_jobs(light_gradient_rows, faces.shape[0], faces, directional, direction, np.float32(eps), grad, out,
             work=faces.size)
    return out
