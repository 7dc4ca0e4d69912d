"""Texture cubes: baking images and colours into per-face T x T x T cubes (neural_renderer's
``load_textures``), evaluating cubes at barycentric points, and the atlas that ``save_obj`` writes.

Baking, per face with corner uvs (uv_0, uv_1, uv_2) and cube cell (i, j, k):
- the cell's barycentric point is (i, j, k) / (i + j + k); cell (0, 0, 0) takes the centroid
  (1/3, 1/3, 1/3) (neural_renderer takes uv (0, 0) of the image whatever the face: see below);
- its uv is sum_k b_k uv_k, wrapped *per point* ('REPEAT': fractional part outside [0, 1];
  'MIRRORED_REPEAT': mirrored every period; 'CLAMP_TO_EDGE': clipped; 'CLAMP_TO_BORDER': colour 0
  outside [0, 1]); uvs inside [0, 1], 1 included, are never changed;
- the image is sampled corner-aligned as neural_renderer does: x = u (w - 1), y = (1 - v) (h - 1)
  (row 0 the top), bilinearly (the right/bottom neighbour clamped to the edge) or at the nearest
  texel, floor(x + 0.5).

Why cell (0, 0, 0) differs from neural_renderer: its point is undefined (0 / 0). The renderer reads it
with weight (1 - t_0)(1 - t_1)(1 - t_2) at t = w (T - 1), which is 8/27 at a T = 2 face's centre: with
the centroid's colour there a linear colour field is reproduced exactly at the centre, with one fixed
texel of the image it is not.
"""
import numpy as np
import torch

WRAPPINGS = ("REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE", "CLAMP_TO_BORDER")


def cube_barycentrics(size):
    """(T^3, 3) float64 barycentric point of every cell (i, j, k) in row-major order:
    (i, j, k) / (i + j + k); cell (0, 0, 0) -> (1/3, 1/3, 1/3)."""
    idx = np.stack(np.meshgrid(*([np.arange(size)] * 3), indexing="ij"), -1).reshape(-1, 3).astype(np.float64)
    total = idx.sum(1, keepdims=True)
    return np.where(total > 0, idx / np.maximum(total, 1), 1.0 / 3.0)


def wrap_uv(uv, wrapping):
    """(uv (..., 2) in [0, 1], inside (...,) bool): wrapped texture coordinates; ``inside`` is False
    only for 'CLAMP_TO_BORDER' points outside [0, 1]^2 (their colour is the border, 0)."""
    in_range = (uv >= 0) & (uv <= 1)
    inside = np.ones(uv.shape[:-1], dtype=bool)
    if wrapping == "REPEAT":
        uv = np.where(in_range, uv, uv - np.floor(uv))
    elif wrapping == "MIRRORED_REPEAT":
        m = np.mod(uv, 2.0)
        uv = np.where(m > 1.0, 2.0 - m, m)
    else:
        if wrapping == "CLAMP_TO_BORDER":
            inside = in_range.all(-1)
        uv = np.clip(uv, 0.0, 1.0)
    return uv, inside


def sample_image(image, uv, bilinear):
    """Colours (N, C) of ``image`` (h, w, C) at uv (N, 2) in [0, 1] (v up), corner-aligned:
    x = u (w - 1), y = (1 - v) (h - 1)."""
    h, w = image.shape[:2]
    x = uv[:, 0] * (w - 1)
    y = (1.0 - uv[:, 1]) * (h - 1)
    if not bilinear:
        return image[np.floor(y + 0.5).astype(np.int64), np.floor(x + 0.5).astype(np.int64)]
    x0 = np.clip(np.floor(x), 0, w - 1).astype(np.int64)
    y0 = np.clip(np.floor(y), 0, h - 1).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def bake_cubes(face_uv, material, sources, texture_size, wrapping, bilinear):
    """Texture cubes (F, T, T, T, 3) float32.

    face_uv (F, 3, 2) corner uvs; material (F,) int index into ``sources``, each either a colour (3,)
    (every cell of its faces) or an image (h, w, 3) sampled as the module docstring says.
    """
    F, T = len(material), texture_size
    textures = np.zeros((F, T ** 3, 3), dtype=np.float32)
    bary = cube_barycentrics(T)
    for m, source in enumerate(sources):
        sel = material == m
        if not sel.any():
            continue
        if source.ndim == 1:
            textures[sel] = source
            continue
        uv = np.einsum("cv,fvd->fcd", bary, face_uv[sel].astype(np.float64)).reshape(-1, 2)
        uv, inside = wrap_uv(uv, wrapping)
        colours = sample_image(source.astype(np.float64), uv, bilinear) * inside[:, None]
        textures[sel] = colours.reshape(-1, T ** 3, 3)
    return textures.reshape(F, T, T, T, 3)


def cube_colours(textures, weights):
    """Trilinear value of cubes ``textures`` (F, T, T, T, C) at t = w (T - 1) for barycentric
    ``weights`` (P, 3), the same points on every face: (F, P, C). The cell below t is clamped to
    T - 2 (T - 1 on axis k is the cube's far face), the one above to T - 1."""
    F, T = textures.shape[:2]
    C = textures.shape[-1]
    flat = textures.reshape(F, T ** 3, C)
    t = weights.to(textures.dtype) * (T - 1)  # (P, 3)
    lo = t.floor().clamp(0, max(T - 2, 0)).long()
    frac = t - lo
    hi = (lo + 1).clamp(max=T - 1)
    strides = torch.tensor([T * T, T, 1])
    out = torch.zeros(F, len(weights), C, dtype=textures.dtype)
    for corner in range(8):
        pick = torch.tensor([(corner >> (2 - a)) & 1 for a in range(3)], dtype=torch.bool)
        index = (torch.where(pick, hi, lo) * strides).sum(-1)  # (P,)
        weight = torch.where(pick, frac, 1 - frac).prod(-1)  # (P,)
        out += flat[:, index] * weight[None, :, None]
    return out


def texture_atlas(textures, tile=8):
    """(image (rows * tile, cols * tile, 3) float32, uv (F, 3, 2) float32) for cubes (F, T, T, T, 3):
    each face gets a tile whose lower-left triangle holds the cube's colours at t_k = w_k (T - 1)
    (what the renderer shows where the face's depth is constant), its uv triangle inset by 1.5 pixels
    so that bilinear samples stay inside the tile."""
    F = textures.shape[0]
    cols = int(np.ceil(np.sqrt(F)))
    rows = int(np.ceil(F / cols))
    ys, xs = np.mgrid[0:tile, 0:tile]
    inset = 1.5 / tile
    a = (xs + 0.5) / tile
    b = 1.0 - (ys + 0.5) / tile  # v up within the tile
    span = 1.0 - 3 * inset
    w1 = np.clip((a - inset) / span, 0, 1)
    w2 = np.clip((b - inset) / span, 0, 1)
    scale = np.maximum(w1 + w2, 1.0)
    w1, w2 = w1 / scale, w2 / scale
    w = torch.from_numpy(np.stack([1 - w1 - w2, w1, w2], -1).reshape(-1, 3))
    colours = cube_colours(textures.double(), w).reshape(F, tile, tile, 3).float().numpy()
    image = np.zeros((rows * tile, cols * tile, 3), dtype=np.float32)
    uv = np.zeros((F, 3, 2), dtype=np.float32)
    corners = np.array([[inset, inset], [1 - 2 * inset, inset], [inset, 1 - 2 * inset]])
    for i in range(F):
        r, c = divmod(i, cols)
        image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = colours[i]
        # image row 0 is the top: tile row r spans v from 1 - (r + 1) / rows to 1 - r / rows
        uv[i, :, 0] = (c + corners[:, 0]) / cols
        uv[i, :, 1] = 1 - (r + 1 - corners[:, 1]) / rows
    return image, uv
