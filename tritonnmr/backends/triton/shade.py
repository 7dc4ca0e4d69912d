"""Shading kernels, forward: pixel-parallel, one pixel per lane, BLOCK pixels per program.

Every op reads the face index map (B, H, W) (-1: empty) and the perspective-correct barycentrics
``bary`` (B, H, W, 3) and writes (B, H, W, C), 0 where empty. Channels are the second axis of a
[BLOCK, CP] block (CP = C rounded up to a power of two, masked). The per-pixel helpers here
(``cube_point``, ``uv_taps``) are also what the backward kernels (``backward``) recompute. Helpers
are few and large: the interpreter pays for every helper call.
"""
import triton
import triton.language as tl

BIG = tl.constexpr(1073741824.0)  # 2^30: uv texel coordinates are clamped to +-BIG before int conversion


@triton.jit(do_not_specialize=["F", "HW", "total"])
def barycentrics_kernel(faces_ptr, index_ptr, weights_ptr, depth_ptr, out_ptr, F, HW, total, BLOCK: tl.constexpr):
    """bary_k = w_k z / z_k at covered pixels (they sum to 1), 0 where empty."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    face = tl.load(index_ptr + offs, mask=valid, other=-1)
    hit = valid & (face >= 0)
    flat = (offs // HW) * F + face
    z = tl.load(depth_ptr + offs, mask=hit, other=0.0)
    for k in tl.static_range(3):
        w = tl.load(weights_ptr + offs * 3 + k, mask=hit, other=0.0)
        zk = tl.load(faces_ptr + flat * 9 + 3 * k + 2, mask=hit, other=1.0)
        tl.store(out_ptr + offs * 3 + k, tl.where(hit, tl.math.div_rn(w * z, zk), 0.0), mask=valid)


@triton.jit
def cube_point(b0, b1, b2, T, top):
    """Lower cells, upper cells (clamped to T - 1) and fractions along the three cube axes at
    t_k = clamp(bary_k (T - 1), 0, top), top = max(T - 1 - eps, 0). Corner c (bit k: upper along
    axis k) is cell (i T + j) T + l with weight prod_k (f_k if upper else 1 - f_k)."""
    scale = (T - 1).to(tl.float32)
    t0 = tl.minimum(tl.maximum(b0 * scale, 0.0), top)
    t1 = tl.minimum(tl.maximum(b1 * scale, 0.0), top)
    t2 = tl.minimum(tl.maximum(b2 * scale, 0.0), top)
    lo0 = tl.floor(t0).to(tl.int32)
    lo1 = tl.floor(t1).to(tl.int32)
    lo2 = tl.floor(t2).to(tl.int32)
    return (lo0, tl.minimum(lo0 + 1, T - 1), t0 - tl.floor(t0), lo1, tl.minimum(lo1 + 1, T - 1), t1 - tl.floor(t1),
            lo2, tl.minimum(lo2 + 1, T - 1), t2 - tl.floor(t2))


@triton.jit(do_not_specialize=["F", "HW", "T", "total"])
def cubes_kernel(index_ptr, bary_ptr, tex_ptr, out_ptr, F, HW, T, total, top,
                 C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr):
    """Trilinear sampling of per-face cubes (B, F, T, T, T, C): sum over the 8 cells around
    t_k = clamp(bary_k (T - 1), 0, top) of weight * cell."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    face = tl.load(index_ptr + offs, mask=valid, other=-1)
    hit = valid & (face >= 0)
    lo0, hi0, f0, lo1, hi1, f1, lo2, hi2, f2 = cube_point(tl.load(bary_ptr + offs * 3 + 0, mask=hit, other=0.0),
                                                         tl.load(bary_ptr + offs * 3 + 1, mask=hit, other=0.0),
                                                         tl.load(bary_ptr + offs * 3 + 2, mask=hit, other=0.0), T, top)
    cube = ((offs // HW) * F + face) * T * T * T
    ch = tl.arange(0, CP)
    m = hit[:, None] & (ch < C)[None, :]
    acc = tl.zeros([BLOCK, CP], tl.float32)
    for corner in tl.static_range(8):  # bit k of corner: upper (1) or lower (0) cell along axis k
        cell = ((hi0 if corner & 1 else lo0) * T + (hi1 if corner & 2 else lo1)) * T + (hi2 if corner & 4 else lo2)
        weight = (f0 if corner & 1 else 1.0 - f0) * (f1 if corner & 2 else 1.0 - f1)
        weight = weight * (f2 if corner & 4 else 1.0 - f2)
        acc += weight[:, None] * tl.load(tex_ptr + ((cube + cell) * C)[:, None] + ch[None, :], mask=m, other=0.0)
    tl.store(out_ptr + (offs * C)[:, None] + ch[None, :], acc, mask=valid[:, None] & (ch < C)[None, :])


@triton.jit(do_not_specialize=["F", "HW", "total"])
def interpolate_kernel(index_ptr, bary_ptr, attr_ptr, out_ptr, F, HW, total,
                       C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr):
    """sum_k bary_k a_k of face-vertex attributes (B, F, 3, C)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    face = tl.load(index_ptr + offs, mask=valid, other=-1)
    hit = valid & (face >= 0)
    vertex = attr_ptr + (((offs // HW) * F + face) * 3 * C)[:, None] + tl.arange(0, CP)[None, :]
    m = hit[:, None] & (tl.arange(0, CP) < C)[None, :]
    acc = tl.zeros([BLOCK, CP], tl.float32)
    for k in tl.static_range(3):
        bary_k = tl.load(bary_ptr + offs * 3 + k, mask=hit, other=0.0)
        acc += tl.load(vertex + k * C, mask=m, other=0.0) * bary_k[:, None]
    tl.store(out_ptr + (offs * C)[:, None] + tl.arange(0, CP)[None, :], acc,
             mask=valid[:, None] & (tl.arange(0, CP) < C)[None, :])


@triton.jit
def uv_taps(offs, hit, index_ptr, bary_ptr, uvs_ptr, material_ptr, table_ptr, F, HW, wrap):
    """Per pixel ``offs``: the four texel rows around its uv point (top-left, top-right, bottom-left,
    bottom-right), the fractions (fx, fy), the material's (h, w) as floats, its flat face and bary.

    uv = sum_k bary_k uvs[face, k]; material m = material[face], table row m = (offset, h, w);
    texel centres at x = u w - 0.5, y = (1 - v) h - 0.5 (row 0 at v = 1)."""
    face = tl.load(index_ptr + offs, mask=hit, other=0)
    flat = (offs // HW) * F + face
    b0 = tl.load(bary_ptr + offs * 3 + 0, mask=hit, other=0.0)
    b1 = tl.load(bary_ptr + offs * 3 + 1, mask=hit, other=0.0)
    b2 = tl.load(bary_ptr + offs * 3 + 2, mask=hit, other=0.0)
    u = b0 * tl.load(uvs_ptr + flat * 6 + 0, mask=hit, other=0.0) \
        + b1 * tl.load(uvs_ptr + flat * 6 + 2, mask=hit, other=0.0) \
        + b2 * tl.load(uvs_ptr + flat * 6 + 4, mask=hit, other=0.0)
    v = b0 * tl.load(uvs_ptr + flat * 6 + 1, mask=hit, other=0.0) \
        + b1 * tl.load(uvs_ptr + flat * 6 + 3, mask=hit, other=0.0) \
        + b2 * tl.load(uvs_ptr + flat * 6 + 5, mask=hit, other=0.0)
    m = tl.load(material_ptr + flat, mask=hit, other=0)
    offset = tl.load(table_ptr + m * 3 + 0, mask=hit, other=0)
    h = tl.maximum(tl.load(table_ptr + m * 3 + 1, mask=hit, other=1), 1)
    w = tl.maximum(tl.load(table_ptr + m * 3 + 2, mask=hit, other=1), 1)
    h_f = h.to(tl.float32)
    w_f = w.to(tl.float32)
    x = u * w_f - 0.5
    y = (1.0 - v) * h_f - 0.5
    x_lo = tl.floor(x)
    y_lo = tl.floor(y)
    x0 = tl.minimum(tl.maximum(x_lo, -BIG), BIG).to(tl.int64)
    y0 = tl.minimum(tl.maximum(y_lo, -BIG), BIG).to(tl.int64)
    # wrap the four indices i = x0, x0 + 1 (size w) and y0, y0 + 1 (size h), side by side in a
    # (BLOCK, 4) block: 0 REPEAT: i mod size; 1 MIRRORED_REPEAT: p = i mod 2 size, p or 2 size - 1 - p;
    # 2 CLAMP_TO_EDGE: clamp to [0, size - 1]. Remainders are made non-negative by hand, so the
    # result does not depend on the sign convention of %.
    k = tl.arange(0, 4)[None, :]
    i = tl.where(k < 2, x0[:, None], y0[:, None]) + k % 2
    size = tl.where(k < 2, w[:, None], h[:, None])
    r = i % size
    r = tl.where(r < 0, r + size, r)
    p = i % (2 * size)
    p = tl.where(p < 0, p + 2 * size, p)
    p = tl.where(p < size, p, 2 * size - 1 - p)
    wrapped = tl.where(wrap == 0, r, tl.where(wrap == 1, p, tl.minimum(tl.maximum(i, 0), size - 1)))
    col0 = tl.sum(tl.where(k == 0, wrapped, 0), axis=1)
    col1 = tl.sum(tl.where(k == 1, wrapped, 0), axis=1)
    row0 = offset + tl.sum(tl.where(k == 2, wrapped, 0), axis=1) * w
    row1 = offset + tl.sum(tl.where(k == 3, wrapped, 0), axis=1) * w
    return row0 + col0, row0 + col1, row1 + col0, row1 + col1, x - x_lo, y - y_lo, h_f, w_f, flat, b0, b1, b2


@triton.jit(do_not_specialize=["F", "HW", "total", "wrap"])
def uv_kernel(index_ptr, bary_ptr, uvs_ptr, material_ptr, texels_ptr, table_ptr, out_ptr, F, HW, total, wrap,
              C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr):
    """Bilinear samples of UV-mapped texels (N, C): the four texels around the pixel's uv point,
    weighted (1 - fx)(1 - fy), fx (1 - fy), (1 - fx) fy, fx fy."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < total
    hit = valid & (tl.load(index_ptr + offs, mask=valid, other=-1) >= 0)
    t00, t01, t10, t11, fx, fy, _h, _w, _f, _b0, _b1, _b2 = uv_taps(offs, hit, index_ptr, bary_ptr, uvs_ptr,
                                                                    material_ptr, table_ptr, F, HW, wrap)
    ch = tl.arange(0, CP)[None, :]
    m = hit[:, None] & (ch < C)
    acc = ((1 - fx) * (1 - fy))[:, None] * tl.load(texels_ptr + t00[:, None] * C + ch, mask=m, other=0.0)
    acc += (fx * (1 - fy))[:, None] * tl.load(texels_ptr + t01[:, None] * C + ch, mask=m, other=0.0)
    acc += ((1 - fx) * fy)[:, None] * tl.load(texels_ptr + t10[:, None] * C + ch, mask=m, other=0.0)
    acc += (fx * fy)[:, None] * tl.load(texels_ptr + t11[:, None] * C + ch, mask=m, other=0.0)
    tl.store(out_ptr + (offs * C)[:, None] + ch, acc, mask=valid[:, None] & (ch < C))


@triton.jit(do_not_specialize=["F", "HW", "total", "wrap"])
def uv_taps_kernel(pixels_ptr, index_ptr, bary_ptr, uvs_ptr, material_ptr, table_ptr, taps_ptr, F, HW, total,
                     wrap, BLOCK: tl.constexpr):
    """The four texel rows (uv_taps) of each covered pixel pixels[i], to taps[4 i + q]: the keys by
    which the texel gradient groups its contributions."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = i < total
    offs = tl.load(pixels_ptr + i, mask=valid, other=0)
    t00, t01, t10, t11, _fx, _fy, _h, _w, _f, _b0, _b1, _b2 = uv_taps(offs, valid, index_ptr, bary_ptr, uvs_ptr,
                                                                      material_ptr, table_ptr, F, HW, wrap)
    tl.store(taps_ptr + i * 4 + 0, t00, mask=valid)
    tl.store(taps_ptr + i * 4 + 1, t01, mask=valid)
    tl.store(taps_ptr + i * 4 + 2, t10, mask=valid)
    tl.store(taps_ptr + i * 4 + 3, t11, mask=valid)
