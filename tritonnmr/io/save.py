"""``save_obj``: vertices, faces and textures (cubes or a UVMap) to OBJ + MTL + PNG files."""
import os

import numpy as np
import torch

from ..uvmap import UVMap
from .cubes import texture_atlas
from .images import write_png


def check_mesh(vertices, faces):
    """(vertices (V, 3) float32, faces (F, 3) int64) on the CPU; ValueError naming the argument for a
    wrong shape or dtype, a face index outside [0, V) or a non-finite vertex."""
    vertices = torch.as_tensor(vertices).detach().cpu()
    faces = torch.as_tensor(faces).detach().cpu()
    if vertices.dim() != 2 or vertices.shape[1] != 3 or not vertices.is_floating_point():
        raise ValueError(f"vertices must be a float tensor of shape (V, 3), got {tuple(vertices.shape)} {vertices.dtype}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.is_floating_point():
        raise ValueError(f"faces must be an integer tensor of shape (F, 3), got {tuple(faces.shape)} {faces.dtype}")
    if faces.numel() and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces indices must be in [0, {len(vertices)})")
    if not torch.isfinite(vertices).all():
        raise ValueError("vertices must be finite (no NaN or infinity)")
    return vertices.float(), faces.long()


def _g(x):
    """A float32 number written so that parsing it back gives the same float32 (9 digits)."""
    return "%.9g" % x


def check_uvmap(uvmap, faces):
    """(uvs (F, 3, 2) float32, material (F,) int64, images [(h, w, 3) float32]) of a UVMap, as numpy
    arrays; ValueError naming ``textures`` unless it has one uv triangle per face, RGB images, and
    finite uvs and images."""
    if uvmap.uvs.shape[0] != len(faces):
        raise ValueError(f"textures (a UVMap) must have one uv triangle per face ({len(faces)}), "
                         f"got {uvmap.uvs.shape[0]}")
    if uvmap.channels != 3:
        raise ValueError(f"textures (a UVMap) must have RGB images (C = 3) to be saved, got C = {uvmap.channels}")
    uvs = uvmap.uvs.detach().cpu().float().numpy()
    if not np.isfinite(uvs).all():
        raise ValueError("textures (a UVMap) must have finite uvs")
    images = [image.detach().cpu().float().numpy() for image in uvmap.images]
    for m, image in enumerate(images):
        if not np.isfinite(image).all():
            raise ValueError(f"textures.images[{m}] must be finite")
    return uvs, uvmap.material.detach().cpu().numpy().astype(np.int64), images


def check_vertex_colours(colours, vertices):
    """Per-vertex colours (V, 3) float32 as numpy; ValueError naming ``textures`` otherwise."""
    colours = torch.as_tensor(colours).detach().cpu()
    if colours.shape != (len(vertices), 3) or not colours.is_floating_point():
        raise ValueError(f"textures (per-vertex colours) must be a float tensor of shape (V={len(vertices)}, 3), "
                         f"got {tuple(colours.shape)} {colours.dtype}")
    if not torch.isfinite(colours).all():
        raise ValueError("textures (per-vertex colours) must be finite")
    return colours.float().numpy()


def is_vertex_colours(textures):
    """Whether ``textures`` is meant as per-vertex colours: a 2-D array (cubes are 5-D)."""
    return not isinstance(textures, UVMap) and torch.as_tensor(textures).dim() == 2


def _write_uvmap(directory, stem, faces, uvmap):
    """vt/usemtl/f lines for a UVMap; writes ``<stem>.mtl`` and ``<stem>_<m>.png`` files."""
    uvs, material, images = check_uvmap(uvmap, faces)
    table, inverse = np.unique(uvs.reshape(-1, 2), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1, 3) + 1
    mtl = []
    for m, image in enumerate(images):
        mtl.append(f"newmtl material_{m}")
        if image.shape[:2] == (1, 1):  # a plain colour: Kd, exact
            mtl.append("Kd " + " ".join(_g(c) for c in np.float32(image[0, 0])))
        else:
            name = f"{stem}_{m}.png"
            write_png(os.path.join(directory, name), image)
            mtl += ["Kd 1 1 1", f"map_Kd {name}"]
        mtl.append("")
    with open(os.path.join(directory, stem + ".mtl"), "w") as f:
        f.write("\n".join(mtl))
    lines = ["vt %s %s" % (_g(u), _g(v)) for u, v in table]
    material = material.tolist()
    current = None
    for i, (a, b, c) in enumerate(faces.tolist()):
        if material[i] != current:
            current = material[i]
            lines.append(f"usemtl material_{current}")
        ta, tb, tc = inverse[i]
        lines.append(f"f {a + 1}/{ta} {b + 1}/{tb} {c + 1}/{tc}")
    return lines


def cube_atlas(textures, faces, tile):
    """(image (h, w, 3), uv (F, 3, 2)) of texture cubes (F, T, T, T, 3) as :func:`texture_atlas` lays
    them out; ValueError naming ``textures`` for another shape."""
    textures = torch.as_tensor(textures).detach().cpu().float()
    if textures.dim() != 5 or textures.shape[0] != len(faces) or textures.shape[-1] != 3 or \
            not textures.shape[1] == textures.shape[2] == textures.shape[3]:
        raise ValueError(f"textures must have shape (F={len(faces)}, T, T, T, 3), (V, 3) or be a UVMap, "
                         f"got {tuple(textures.shape)}")
    if not torch.isfinite(textures).all():
        raise ValueError("textures (cubes) must be finite")
    return texture_atlas(textures, tile)


def _write_cubes(directory, stem, faces, textures, tile):
    """vt/usemtl/f lines for cubes (F, T, T, T, 3); writes ``<stem>.mtl`` and the atlas ``<stem>.png``."""
    image, uv = cube_atlas(textures, faces, tile)
    write_png(os.path.join(directory, stem + ".png"), image)
    with open(os.path.join(directory, stem + ".mtl"), "w") as f:
        f.write(f"newmtl material_1\nKd 1 1 1\nmap_Kd {stem}.png\n")
    lines = ["vt %.8f %.8f" % tuple(t) for t in uv.reshape(-1, 2).tolist()]
    lines.append("usemtl material_1")
    lines += [f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}"
              for i, (a, b, c) in enumerate(faces.tolist())]
    return lines


def save_obj(filename, vertices, faces, textures=None, texture_tile=8):
    """Write vertices (V, 3) and faces (F, 3) (no batch dimension, any device) to an OBJ file.

    ``textures``:
    - per-vertex colours (V, 3): written on the ``v`` lines (``v x y z r g b``, 9 digits: they read
      back exactly with ``load_mesh(..., texture_format="vertex")``), no MTL file;
    - cubes (F, T, T, T, 3): also writes ``<name>.mtl`` and a texture atlas ``<name>.png``, one
      ``texture_tile`` pixel tile per face, that :func:`load_obj` bakes back into cubes;
    - a :class:`tritonnmr.UVMap` (RGB images): writes its uvs as ``vt`` lines (9 digits, so they
      read back as the same float32), one material per image in ``<name>.mtl`` — a 1 x 1 image as
      an exact ``Kd`` colour, others as 8-bit PNGs ``<name>_<m>.png`` (round(clip(x, 0, 1) * 255),
      so a reload is within 0.5/255) — and faces in their order with a ``usemtl`` at every change of
      material. ``load_obj(..., texture_format="uv")`` reads back equal uvs and materials (material
      indices come back in order of first use; the wrap mode is not stored).
    Vertices are written with 9 significant digits (they read back as the same float32).
    """
    vertices, faces = check_mesh(vertices, faces)
    directory = os.path.dirname(os.path.abspath(filename))
    os.makedirs(directory, exist_ok=True)
    stem = os.path.splitext(os.path.basename(filename))[0]
    header = [f"# {os.path.basename(filename)} written by tritonnmr"]
    rows = vertices.tolist()
    if textures is None or is_vertex_colours(textures):
        if textures is not None:
            rows = [v + c for v, c in zip(rows, check_vertex_colours(textures, vertices).tolist())]
        body = [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    else:
        header.append(f"mtllib {stem}.mtl")
        if isinstance(textures, UVMap):
            body = _write_uvmap(directory, stem, faces, textures)
        else:
            body = _write_cubes(directory, stem, faces, textures, texture_tile)
    lines = header + ["v " + " ".join(_g(x) for x in v) for v in rows] + body
    with open(filename, "w") as f:
        f.write("\n".join(lines) + "\n")
