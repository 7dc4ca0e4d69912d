"""Wavefront OBJ/MTL reading and writing, with textures baked into per-face cubes."""
import os

import numpy as np
import torch

WRAPPINGS = ("REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE")


class ObjError(ValueError):
    """A malformed OBJ or MTL file."""


def _read_lines(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def _floats(parts, count, path, lineno, what):
    try:
        values = [float(p) for p in parts[:count]]
    except ValueError:
        raise ObjError(f"{path}:{lineno}: {what} needs {count} numbers, got {' '.join(parts)!r}") from None
    if len(values) < count:
        raise ObjError(f"{path}:{lineno}: {what} needs {count} numbers, got {len(values)}")
    return values


def _index(token, count, path, lineno):
    """1-based (or negative, relative) OBJ index -> 0-based."""
    try:
        i = int(token)
    except ValueError:
        raise ObjError(f"{path}:{lineno}: bad index {token!r} in face") from None
    i = i - 1 if i > 0 else count + i
    if not 0 <= i < count:
        raise ObjError(f"{path}:{lineno}: index {token} out of range (there are {count} so far)")
    return i


def parse_obj(path):
    """Vertices (V, 3), faces (F, 3), per-face uv (F, 3, 2) or None, per-face material names, mtllib."""
    vertices, uvs, faces, face_uvs, materials = [], [], [], [], []
    mtllib, material = None, None
    for lineno, line in enumerate(_read_lines(path, "OBJ file"), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        key, args = parts[0], parts[1:]
        if key == "v":
            vertices.append(_floats(args, 3, path, lineno, "vertex"))
        elif key == "vt":
            uvs.append(_floats(args, 2, path, lineno, "texture coordinate"))
        elif key == "f":
            if len(args) < 3:
                raise ObjError(f"{path}:{lineno}: a face needs at least 3 vertices, got {len(args)}")
            corners = [tok.split("/") for tok in args]
            vi = [_index(c[0], len(vertices), path, lineno) for c in corners]
            ti = [_index(c[1], len(uvs), path, lineno) if len(c) > 1 and c[1] else -1 for c in corners]
            for k in range(1, len(vi) - 1):  # fan triangulation
                faces.append((vi[0], vi[k], vi[k + 1]))
                face_uvs.append((ti[0], ti[k], ti[k + 1]))
                materials.append(material)
        elif key == "mtllib" and args:
            mtllib = line.split(None, 1)[1].strip()
        elif key == "usemtl" and args:
            material = args[0]
    if not vertices:
        raise ObjError(f"{path}: no vertices ('v' lines) found")
    if not faces:
        raise ObjError(f"{path}: no faces ('f' lines) found")
    uv_table = np.array(uvs, dtype=np.float32).reshape(-1, 2)
    fuv = np.array(face_uvs, dtype=np.int64)
    face_uv = np.where(fuv[..., None] >= 0, uv_table[np.maximum(fuv, 0)] if len(uvs) else 0.0, 0.0)
    return (np.array(vertices, dtype=np.float32), np.array(faces, dtype=np.int64),
            face_uv.astype(np.float32), materials, mtllib)


def parse_mtl(path):
    """{material: {"Kd": (3,) or None, "map_Kd": path or None}}."""
    out, name = {}, None
    for lineno, line in enumerate(_read_lines(path, "MTL file"), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "newmtl":
            if len(parts) < 2:
                raise ObjError(f"{path}:{lineno}: newmtl needs a name")
            name = parts[1]
            out[name] = {"Kd": None, "map_Kd": None}
        elif name is not None and parts[0] == "Kd":
            out[name]["Kd"] = np.array(_floats(parts[1:], 3, path, lineno, "Kd"), dtype=np.float32)
        elif name is not None and parts[0] == "map_Kd" and len(parts) > 1:
            out[name]["map_Kd"] = os.path.join(os.path.dirname(path), parts[-1])
    return out


def _wrap(uv, wrapping):
    if wrapping == "REPEAT":
        return uv - np.floor(uv)
    if wrapping == "MIRRORED_REPEAT":
        m = np.mod(uv, 2.0)
        return np.where(m > 1.0, 2.0 - m, m)
    return np.clip(uv, 0.0, 1.0)


def _sample_image(image, uv, bilinear):
    """Colours (N, 3) of ``image`` (H, W, 3) in [0, 1] at uv in [0, 1] (v up)."""
    h, w = image.shape[:2]
    x = uv[:, 0] * (w - 1)
    y = (1.0 - uv[:, 1]) * (h - 1)
    if not bilinear:
        return image[np.rint(y).astype(int), np.rint(x).astype(int)]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def cube_barycentrics(size):
    """(T^3, 3) barycentric weights of the cube cells: (i, j, k) / (i + j + k), cell 0 -> (1/3, 1/3, 1/3)."""
    idx = np.stack(np.meshgrid(*([np.arange(size)] * 3), indexing="ij"), -1).reshape(-1, 3).astype(np.float64)
    total = idx.sum(1, keepdims=True)
    return np.where(total > 0, idx / np.maximum(total, 1), 1.0 / 3.0)


def bake_textures(face_uv, materials, mtl, texture_size, wrapping, bilinear):
    """Per-face cubes (F, T, T, T, 3): cell (i, j, k) takes the colour at the uv point with
    barycentric weights (i, j, k) / (i + j + k) in the face's uv triangle (or the material's Kd)."""
    F, T = len(materials), texture_size
    textures = np.zeros((F, T ** 3, 3), dtype=np.float32)
    bary = cube_barycentrics(T)
    images = {}
    for name in set(materials):
        info = mtl.get(name)
        sel = np.array([m == name for m in materials])
        if info is None:
            continue
        if info["map_Kd"]:
            path = info["map_Kd"]
            if path not in images:
                import imageio.v3 as iio
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"texture image not found: {path}")
                img = np.asarray(iio.imread(path)).astype(np.float32) / 255.0
                img = img[..., None].repeat(3, -1) if img.ndim == 2 else img[..., :3]
                images[path] = img
            uv = np.einsum("cv,fvd->fcd", bary, face_uv[sel]).reshape(-1, 2)
            textures[sel] = _sample_image(images[path], _wrap(uv, wrapping), bilinear).reshape(-1, T ** 3, 3)
        elif info["Kd"] is not None:
            textures[sel] = info["Kd"]
    return textures.reshape(F, T, T, T, 3)


def load_obj(filename_obj, normalization=True, texture_size=4, load_texture=False,
             texture_wrapping="REPEAT", use_bilinear=True):
    """Read an OBJ file: vertices (V, 3) float32, faces (F, 3) int32 [, textures (F, T, T, T, 3)].

    Polygons are fan-triangulated; ``v``, ``v/vt``, ``v//vn`` and ``v/vt/vn`` forms are read. With
    ``normalization`` the mesh is scaled and centred into [-1, 1]^3 (longest side 2). With
    ``load_texture`` MTL ``Kd`` colours and ``map_Kd`` images are baked into texture cubes of
    ``texture_size``^3 cells with the given wrapping ('REPEAT', 'MIRRORED_REPEAT', 'CLAMP_TO_EDGE').
    Tensors are on the CPU; call ``.cuda()`` on them as needed.
    """
    if texture_wrapping not in WRAPPINGS:
        raise ValueError(f"texture_wrapping must be one of {', '.join(WRAPPINGS)}, got {texture_wrapping!r}")
    if not isinstance(texture_size, int) or texture_size < 1:
        raise ValueError(f"texture_size must be a positive int, got {texture_size!r}")
    vertices, faces, face_uv, materials, mtllib = parse_obj(filename_obj)
    if normalization:
        vertices = vertices - vertices.min(0)
        vertices /= max(np.abs(vertices).max(), 1e-12)
        vertices *= 2
        vertices -= vertices.max(0) / 2
    v, f = torch.from_numpy(vertices), torch.from_numpy(faces.astype(np.int32))
    if not load_texture:
        return v, f
    if mtllib is None:
        raise ObjError(f"{filename_obj}: load_texture=True but the file names no material library (mtllib)")
    mtl = parse_mtl(os.path.join(os.path.dirname(filename_obj), mtllib))
    textures = bake_textures(face_uv, materials, mtl, texture_size, texture_wrapping, use_bilinear)
    return v, f, torch.from_numpy(textures)


def _texture_atlas(textures, tile=8):
    """Image and per-face uv for cubes (F, T, T, T, 3): each face gets a tile whose lower-left
    triangle holds the cube's colours at t_k = w_k (T - 1) (what the renderer shows at z = z_k)."""
    from .reference import _texture_corners
    F, T = textures.shape[:2]
    cols = int(np.ceil(np.sqrt(F)))
    rows = int(np.ceil(F / cols))
    # uv triangle of a tile: corners (0, 0), (1, 0), (0, 1) inset by half a pixel -> pixel grid
    ys, xs = np.mgrid[0:tile, 0:tile]
    inset = 1.5 / tile  # keep samples (bilinear, half-pixel offsets) inside the tile
    a = (xs + 0.5) / tile
    b = 1.0 - (ys + 0.5) / tile  # v up within the tile
    span = 1.0 - 3 * inset
    w1 = np.clip((a - inset) / span, 0, 1)
    w2 = np.clip((b - inset) / span, 0, 1)
    scale = np.maximum(w1 + w2, 1.0)
    w1, w2 = w1 / scale, w2 / scale
    w = np.stack([1 - w1 - w2, w1, w2], -1).reshape(-1, 3)
    wt = torch.from_numpy(w).float().repeat(F, 1)
    rows_t = torch.ones(F * tile * tile, 3, 3)  # z_k = 1 so that t_k = w_k (T - 1)
    offsets, tw = _texture_corners(rows_t, wt, torch.ones(len(wt)), T, 0.0)
    face = torch.arange(F).repeat_interleave(tile * tile)
    colours = (textures.reshape(F, T ** 3, 3)[face[:, None], offsets] * tw[..., None]).sum(1)
    colours = colours.reshape(F, tile, tile, 3).numpy()
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


def save_obj(filename, vertices, faces, textures=None, texture_tile=8):
    """Write vertices (V, 3) and faces (F, 3) to an OBJ file (no batch dimension).

    With textures (F, T, T, T, 3), also writes ``<name>.mtl`` and a texture atlas ``<name>.png``
    (one ``texture_tile`` pixel tile per face) that :func:`load_obj` bakes back into cubes.
    """
    vertices = torch.as_tensor(vertices).detach().cpu()
    faces = torch.as_tensor(faces).detach().cpu()
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.is_floating_point():
        raise ValueError(f"faces must be an integer tensor of shape (F, 3), got {tuple(faces.shape)} {faces.dtype}")
    if faces.numel() and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces indices must be in [0, {len(vertices)})")
    directory = os.path.dirname(os.path.abspath(filename))
    os.makedirs(directory, exist_ok=True)
    stem = os.path.splitext(os.path.basename(filename))[0]
    lines = [f"# {os.path.basename(filename)} written by tritonnmr"]
    uv = None
    if textures is not None:
        textures = torch.as_tensor(textures).detach().cpu().float()
        if textures.dim() != 5 or textures.shape[0] != len(faces) or textures.shape[-1] != 3:
            raise ValueError(f"textures must have shape (F={len(faces)}, T, T, T, 3), got {tuple(textures.shape)}")
        import imageio.v3 as iio
        image, uv = _texture_atlas(textures, texture_tile)
        iio.imwrite(os.path.join(directory, stem + ".png"),
                    (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
        with open(os.path.join(directory, stem + ".mtl"), "w") as f:
            f.write(f"newmtl material_1\nKd 1 1 1\nmap_Kd {stem}.png\n")
        lines.append(f"mtllib {stem}.mtl")
    lines += ["v %.8f %.8f %.8f" % tuple(v) for v in vertices.tolist()]
    if uv is not None:
        lines += ["vt %.8f %.8f" % tuple(t) for t in uv.reshape(-1, 2).tolist()]
        lines.append("usemtl material_1")
        lines += [f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}"
                  for i, (a, b, c) in enumerate(faces.tolist())]
    else:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    with open(filename, "w") as f:
        f.write("\n".join(lines) + "\n")
