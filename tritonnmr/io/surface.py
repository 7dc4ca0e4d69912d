"""A mesh as read from any file (:class:`MeshData`), and its surface in the form a shader takes:
texture cubes, a :class:`tritonnmr.UVMap` or per-vertex colours (:func:`surface_textures`).

Which form comes from what the file holds:

| the file has | ``"cubes"`` | ``"uv"`` | ``"vertex"`` |
|---|---|---|---|
| images / material colours (``sources``) | baked from them | the uvs and images | 0.5 grey, notice |
| per-vertex colours only | interpolated per cube cell | 0.5 grey, notice | the colours |
| neither | 0.5 grey, notice | 0.5 grey, notice | 0.5 grey, notice |

A notice is one :class:`NoTextureWarning` naming the file. Materials win over vertex colours when a
file has both (an OBJ with ``mtllib`` and ``v x y z r g b`` lines).
"""
import warnings
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from ..uvmap import UVMap
from .cubes import bake_cubes, cube_barycentrics
from .text import one_line

GREY = np.full(3, 0.5, dtype=np.float32)  # neural_renderer's colour for faces without a material


class NoTextureWarning(UserWarning):
    """The file has no surface of the kind asked for: the mesh is 0.5 grey (one line, naming the file)."""


@dataclass
class MeshData:
    """One mesh read from a file, before normalisation and textures.

    vertices (V, 3) float32; faces (F, 3) int64 (0-based); uvs (F, 3, 2) float32, each face corner's
    (u, v) (v up, 0 where there is none); material (F,) int64, an index into ``sources``, each a
    colour (3,) or an image (h, w, 3) float32 in [0, 1] (row 0 the top); colours (V, 3) float32
    per-vertex colours or None; ``textured`` whether ``sources`` came from the file (False: a single
    0.5 grey default).
    """
    path: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    material: np.ndarray
    sources: List[np.ndarray]
    colours: Optional[np.ndarray] = None
    textured: bool = False


def untextured(path, vertices, faces, colours=None):
    """MeshData of a mesh without materials: one grey source, zero uvs."""
    faces = np.asarray(faces, dtype=np.int64)
    return MeshData(path, vertices, faces, np.zeros((len(faces), 3, 2), dtype=np.float32),
                    np.zeros(len(faces), dtype=np.int64), [GREY], colours, False)


def _notice(data, what, hint=""):
    warnings.warn(NoTextureWarning(f"{one_line(data.path)}: {what}{hint}; the mesh is 0.5 grey"), stacklevel=4)


def uv_map(uvs, material, sources, wrap):
    """A :class:`UVMap` (CPU) of corner uvs (F, 3, 2), materials (F,) and sources (colours become 1 x 1
    images)."""
    images = [torch.from_numpy(np.array(s if s.ndim == 3 else s[None, None], dtype=np.float32)) for s in sources]
    return UVMap(torch.from_numpy(np.ascontiguousarray(uvs, dtype=np.float32)),
                 torch.from_numpy(np.asarray(material, dtype=np.int64)), images, wrap)


def vertex_cubes(faces, colours, size):
    """Texture cubes (F, T, T, T, 3) float32 from per-vertex colours (V, 3): each cell the colours of
    its face's corners mixed at the cell's barycentric point (see :func:`cube_barycentrics`)."""
    corner = colours.astype(np.float64)[faces]  # (F, 3, 3)
    cells = np.einsum("ck,fkd->fcd", cube_barycentrics(size), corner)
    return cells.astype(np.float32).reshape(len(faces), size, size, size, 3)


def surface_textures(data, texture_format, texture_size, wrapping, bilinear):
    """``data``'s surface as ``texture_format`` asks (the table in the module docstring), on the CPU:
    "cubes" (F, T, T, T, 3) float32 tensor, "uv" a :class:`UVMap`, "vertex" (V, 3) float32 tensor."""
    has_colours = data.colours is not None
    if texture_format == "vertex":
        if has_colours:
            return torch.from_numpy(np.ascontiguousarray(data.colours, dtype=np.float32))
        _notice(data, "no per-vertex colours",
                " (it has materials: use texture_format='uv' or 'cubes')" if data.textured else "")
        return torch.from_numpy(np.tile(GREY, (len(data.vertices), 1)))
    if texture_format == "uv":
        if not data.textured:
            _notice(data, "no texture or material colours",
                    " (it has per-vertex colours: use texture_format='vertex' or 'cubes')" if has_colours else "")
        return uv_map(data.uvs, data.material, data.sources, wrapping)
    if not data.textured and has_colours:
        return torch.from_numpy(vertex_cubes(data.faces, data.colours, texture_size))
    if not data.textured:
        _notice(data, "no texture, material colours or vertex colours")
    return torch.from_numpy(bake_cubes(data.uvs, data.material, data.sources, texture_size, wrapping, bilinear))
