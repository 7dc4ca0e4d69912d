"""Shading ops on perspective-correct barycentrics ``bary`` (B, H, W, 3), as numba kernels.

The forward passes share the image rows out over threads (``_jit.run_jobs``; each job writes its
own rows). The backward passes add pixel contributions into per-face (or per-texel) gradients in
raster order, so every gradient is bit-identical between runs and thread counts: the per-face ones
one batch entry per job (each entry owns its faces), the texels' (shared by the batch) serially.

Empty pixels (face index -1) read nothing and write 0: the forwards write every output element, so
their outputs need no clearing first.
"""
import numpy as np

from ._jit import jit


# ----------------------------------------------------------------------------------------------
# Texture cubes: t_k = clamp(bary_k (T - 1), 0, T - 1 - eps), trilinear over the 8 cells around t
# ----------------------------------------------------------------------------------------------
@jit
def cube_corners(bary, b, r, c, size, top):
    """Lower corner (i, j, l), upper corner (clamped to T - 1) and fractions of pixel (b, r, c);
    ``top`` = max(T - 1 - eps, 0) as float32."""
    scale = np.float32(size - 1)
    t0 = min(max(bary[b, r, c, 0] * scale, np.float32(0.0)), top)
    t1 = min(max(bary[b, r, c, 1] * scale, np.float32(0.0)), top)
    t2 = min(max(bary[b, r, c, 2] * scale, np.float32(0.0)), top)
    l0, l1, l2 = np.floor(t0), np.floor(t1), np.floor(t2)
    i0, i1, i2 = int(l0), int(l1), int(l2)
    return (i0, i1, i2), (min(i0 + 1, size - 1), min(i1 + 1, size - 1), min(i2 + 1, size - 1)), \
        (t0 - l0, t1 - l1, t2 - l2)


@jit
def corner(lo, hi, frac, k):
    """Cell (i, j, l) of corner k (bit m of k: upper along axis m) and its trilinear weight."""
    one = np.float32(1.0)
    i = hi[0] if k & 1 else lo[0]
    j = hi[1] if k & 2 else lo[1]
    m = hi[2] if k & 4 else lo[2]
    w = frac[0] if k & 1 else one - frac[0]
    w = w * (frac[1] if k & 2 else one - frac[1])
    w = w * (frac[2] if k & 4 else one - frac[2])
    return i, j, m, w


@jit
def sample_cubes(lo, hi, face_index, bary, textures, top, out):
    """out (B, H, W, C) <- trilinear samples of textures (B, F, T, T, T, C), the 8 corners added in
    order starting from 0, rows lo .. hi - 1 (jobs b * H + r)."""
    H, W = face_index.shape[1], face_index.shape[2]
    T, C = textures.shape[2], textures.shape[5]
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            for ch in range(C):
                out[b, r, c, ch] = np.float32(0.0)
            f = face_index[b, r, c]
            if f < 0:
                continue
            lo, hi, frac = cube_corners(bary, b, r, c, T, top)
            for k in range(8):
                i, j, m, w = corner(lo, hi, frac, k)
                for ch in range(C):
                    out[b, r, c, ch] += textures[b, f, i, j, m, ch] * w


@jit
def sample_cubes_backward(lo, hi, face_index, bary, grad, top, out):
    """out (B, F, T, T, T, C) <- each pixel's gradient spread over its 8 cells, batch entries lo .. hi - 1."""
    _, H, W = face_index.shape
    T, C = out.shape[2], out.shape[5]
    for b in range(lo, hi):
        for r in range(H):
            for c in range(W):
                f = face_index[b, r, c]
                if f < 0:
                    continue
                lo, hi, frac = cube_corners(bary, b, r, c, T, top)
                for k in range(8):
                    i, j, m, w = corner(lo, hi, frac, k)
                    for ch in range(C):
                        out[b, f, i, j, m, ch] += w * grad[b, r, c, ch]


@jit
def fill_back_cubes(lo, hi, source, out, backward):
    """Forward: out (B, 2F, T, T, T, C) <- cube f of source (B, F, ...) at f and its mirror at F + f (the
    reversed face sees cell (i, j, k) at cell (k, j, i)). ``backward``: out (B, F, ...) <- the gradient
    from source (B, 2F, ...), the copy's plus the mirror's. Jobs b * F + f in lo .. hi - 1."""
    F = out.shape[1] if backward else source.shape[1]
    T, C = source.shape[2], source.shape[5]
    for job in range(lo, hi):
        b, f = job // F, job % F
        for i in range(T):
            for j in range(T):
                for k in range(T):
                    for ch in range(C):
                        if backward:
                            out[b, f, i, j, k, ch] = source[b, f, i, j, k, ch] + source[b, F + f, k, j, i, ch]
                        else:
                            value = source[b, f, i, j, k, ch]
                            out[b, f, i, j, k, ch] = value
                            out[b, F + f, k, j, i, ch] = value


# ----------------------------------------------------------------------------------------------
# Per face-vertex attributes: sum_k bary_k a_k
# ----------------------------------------------------------------------------------------------
@jit
def interpolate(lo, hi, face_index, bary, attributes, out):
    """out (B, H, W, C) <- sum_k bary_k attributes[b, f, k] (attributes (B, F, 3, C)), 0 where empty,
    rows lo .. hi - 1 (jobs b * H + r)."""
    H, W = face_index.shape[1], face_index.shape[2]
    C = attributes.shape[3]
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            f = face_index[b, r, c]
            if f < 0:
                for ch in range(C):
                    out[b, r, c, ch] = np.float32(0.0)
                continue
            for ch in range(C):
                out[b, r, c, ch] = (attributes[b, f, 0, ch] * bary[b, r, c, 0]
                                    + attributes[b, f, 1, ch] * bary[b, r, c, 1]
                                    + attributes[b, f, 2, ch] * bary[b, r, c, 2])


@jit
def interpolate_backward(lo, hi, face_index, bary, grad, out):
    """out (B, F, 3, C) <- sum over the face's pixels of bary_k * grad, batch entries lo .. hi - 1."""
    _, H, W = face_index.shape
    C = out.shape[3]
    for b in range(lo, hi):
        for r in range(H):
            for c in range(W):
                f = face_index[b, r, c]
                if f < 0:
                    continue
                for k in range(3):
                    for ch in range(C):
                        out[b, f, k, ch] += bary[b, r, c, k] * grad[b, r, c, ch]


# ----------------------------------------------------------------------------------------------
# UV-mapped texels: bilinear with wrap modes 0 REPEAT, 1 MIRRORED_REPEAT, 2 CLAMP_TO_EDGE
# ----------------------------------------------------------------------------------------------
@jit
def wrap_index(i, size, mode):
    """Texel index i wrapped into [0, size): mod, mirror every period, or clamp."""
    if mode == 0:
        return i % size  # Python semantics in numba too: non-negative for size > 0
    if mode == 1:
        p = i % (2 * size)
        return p if p < size else 2 * size - 1 - p
    return min(max(i, 0), size - 1)


@jit
def uv_taps(face_index, bary, uvs, material, table, wrap, b, r, c):
    """The four texel rows of pixel (b, r, c) (top-left, top-right, bottom-left, bottom-right),
    the fractions (fx, fy) and the material's (h, w): x = u w - 0.5, y = (1 - v) h - 0.5."""
    f = face_index[b, r, c]
    u = (uvs[b, f, 0, 0] * bary[b, r, c, 0] + uvs[b, f, 1, 0] * bary[b, r, c, 1]
         + uvs[b, f, 2, 0] * bary[b, r, c, 2])
    v = (uvs[b, f, 0, 1] * bary[b, r, c, 0] + uvs[b, f, 1, 1] * bary[b, r, c, 1]
         + uvs[b, f, 2, 1] * bary[b, r, c, 2])
    m = material[b, f]
    offset, h, w = table[m, 0], table[m, 1], table[m, 2]
    x = u * np.float32(w) - np.float32(0.5)
    y = (np.float32(1.0) - v) * np.float32(h) - np.float32(0.5)
    fx0, fy0 = np.floor(x), np.floor(y)
    # a far-off uv cannot overflow the integer conversion: clamp first (wrapping makes this exact
    # for CLAMP_TO_EDGE, and REPEAT / MIRRORED_REPEAT of such a uv carry no meaningful texel)
    big = np.float32(1 << 30)
    x0 = int(min(max(fx0, -big), big))
    y0 = int(min(max(fy0, -big), big))
    xa, xb = wrap_index(x0, w, wrap), wrap_index(x0 + 1, w, wrap)
    ya, yb = wrap_index(y0, h, wrap), wrap_index(y0 + 1, h, wrap)
    return (offset + ya * w + xa, offset + ya * w + xb, offset + yb * w + xa, offset + yb * w + xb), \
        x - fx0, y - fy0, h, w


@jit
def sample_uv(lo, hi, face_index, bary, uvs, material, texels, table, wrap, out):
    """out (B, H, W, C) <- bilinear texel samples at each pixel's interpolated uv, 0 where empty,
    rows lo .. hi - 1 (jobs b * H + r)."""
    H, W = face_index.shape[1], face_index.shape[2]
    C = texels.shape[1]
    one = np.float32(1.0)
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            if face_index[b, r, c] < 0:
                for ch in range(C):
                    out[b, r, c, ch] = np.float32(0.0)
                continue
            taps, fx, fy, _, _ = uv_taps(face_index, bary, uvs, material, table, wrap, b, r, c)
            for ch in range(C):
                top = (one - fx) * texels[taps[0], ch] + fx * texels[taps[1], ch]
                bottom = (one - fx) * texels[taps[2], ch] + fx * texels[taps[3], ch]
                out[b, r, c, ch] = (one - fy) * top + fy * bottom


@jit
def sample_uv_backward(face_index, bary, uvs, material, texels, table, wrap, grad, grad_texels, grad_uvs):
    """grad_texels (N, C) and grad_uvs (B, F, 3, 2) <- gradients of sum(grad * sample_uv(...)).

    Texels get their bilinear weight times the pixel's gradient; the uv gets the derivative of the
    bilinear blend inside its cell (dx/du = w, dy/dv = -h), spread to the vertices by bary. Texels
    are shared by all faces, so this runs as one job in raster order (deterministic)."""
    B, H, W = face_index.shape
    C = texels.shape[1]
    one = np.float32(1.0)
    for b in range(B):
        for r in range(H):
            for c in range(W):
                f = face_index[b, r, c]
                if f < 0:
                    continue
                taps, fx, fy, h, w = uv_taps(face_index, bary, uvs, material, table, wrap, b, r, c)
                weights = ((one - fx) * (one - fy), fx * (one - fy), (one - fx) * fy, fx * fy)
                du = np.float32(0.0)
                dv = np.float32(0.0)
                for ch in range(C):
                    g = grad[b, r, c, ch]
                    for q in range(4):
                        grad_texels[taps[q], ch] += weights[q] * g
                    t00, t01 = texels[taps[0], ch], texels[taps[1], ch]
                    t10, t11 = texels[taps[2], ch], texels[taps[3], ch]
                    du += g * ((one - fy) * (t01 - t00) + fy * (t11 - t10))
                    dv += g * ((one - fx) * (t10 - t00) + fx * (t11 - t01))
                du = du * np.float32(w)
                dv = -dv * np.float32(h)
                for k in range(3):
                    grad_uvs[b, f, k, 0] += bary[b, r, c, k] * du
                    grad_uvs[b, f, k, 1] += bary[b, r, c, k] * dv
