"""``load_mesh`` and ``save_mesh``: a mesh file of any format, chosen by its extension.

OBJ goes through our own reader and writer (:func:`tritonnmr.load_obj`, :func:`tritonnmr.save_obj`);
every other format through trimesh (the optional ``io`` extra: ``pip install 'tritonnmr[io]'``), see
:mod:`.trimesh_read` and :mod:`.trimesh_write`.
"""
import os
from typing import Optional, Union

import numpy as np
import torch

from .load import check_texture_options, mesh_tensors, read_obj
from .save import check_mesh, save_obj
from .text import one_line
from .trimesh_guard import require_trimesh
from .trimesh_read import read_with_trimesh
from .trimesh_write import WRITTEN, write_with_trimesh

TEXTURE_FORMATS = ("uv", "cubes", "vertex")
READ_BY_TRIMESH = ("ply", "stl", "off", "glb", "gltf")  # known without importing trimesh (which reads more)


def _suffix(path, formats):
    """The longest of ``formats`` that ``path`` ends with (".tar.gz" before ".gz"), else its last
    extension, lower case without the dot ('' when it has none)."""
    name = os.path.basename(path).lower()
    for fmt in sorted(formats, key=len, reverse=True):
        if name.endswith("." + fmt):
            return fmt
    return os.path.splitext(name)[1][1:]


def _trimesh_formats():
    """The formats trimesh reads here (its optional dependencies decide), without OBJ; () without it."""
    try:
        trimesh = require_trimesh("")
    except ImportError:
        return ()
    return tuple(f for f in trimesh.available_formats() if f != "obj")


def mesh_format(path):
    """The format ``load_mesh`` reads ``path`` as: 'obj', a trimesh file type, or a ValueError naming
    the file when its extension is none of them (ImportError when only trimesh would know)."""
    path = os.fspath(path)
    formats = _trimesh_formats()
    ext = _suffix(path, ("obj",) + formats + READ_BY_TRIMESH)
    if ext == "obj" or ext in formats:
        return ext
    if ext in READ_BY_TRIMESH:
        require_trimesh(path)  # raises: trimesh is not installed
    if formats:
        known = ", ".join("." + f for f in ("obj",) + tuple(sorted(formats)))
    else:
        known = ".obj, and with trimesh (pip install 'tritonnmr[io]') " + ", ".join("." + f for f in READ_BY_TRIMESH)
    what = f"'.{ext}' is not a mesh format tritonnmr reads" if ext else "no file extension to tell its format"
    raise ValueError(f"{one_line(path)}: {what} (it reads {known})")


def load_mesh(path: Union[str, os.PathLike], normalization: bool = True, texture_format: Optional[str] = None,
              device=None, *, texture_size: int = 4, texture_wrapping: str = "REPEAT", use_bilinear: bool = True):
    """Read a mesh file of any format: ``(vertices, faces)`` or, with ``texture_format``,
    ``(vertices, faces, textures)``, as :func:`tritonnmr.load_obj` returns them.

    vertices (V, 3) float32, faces (F, 3) int32, on ``device`` (default: CUDA where available).

    - ``path``: ``.obj`` is read by :func:`tritonnmr.load_obj` (the same tensors); ``.ply``, ``.stl``,
      ``.off``, ``.glb``, ``.gltf`` and whatever else trimesh reads, by trimesh (see
      :mod:`tritonnmr.io.trimesh_read` for what is taken from each).
    - ``normalization``: scale and centre into [-1, 1]^3, as ``load_obj``.
    - ``texture_format``: None (geometry only), ``"uv"`` (a :class:`tritonnmr.UVMap`: the uvs and
      images, or a 1 x 1 image per material colour), ``"cubes"`` (per-face cubes (F, T, T, T, 3) of
      ``texture_size``, baked with ``texture_wrapping`` and ``use_bilinear`` as ``load_obj`` does, or
      interpolated from vertex colours) or ``"vertex"`` (per-vertex colours (V, 3) for
      :class:`tritonnmr.VertexColorShader`). A file without the surface asked for gives 0.5 grey with
      one :class:`tritonnmr.io.NoTextureWarning`; see :mod:`tritonnmr.io.surface`.

    Raises FileNotFoundError for a missing file (or an MTL, image or glTF buffer it names),
    ImportError (one line: what to install) for a format that needs trimesh when it is not installed,
    and a one-line ValueError naming the file for an unknown extension and for empty, truncated or
    malformed files (trimesh's exceptions and warnings never reach the caller raw: what it skipped is
    one warning).
    """
    if texture_format is not None:
        check_texture_options(texture_format, TEXTURE_FORMATS, texture_wrapping, texture_size)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mesh file not found: {path}")
    fmt = mesh_format(path)
    if fmt == "obj":
        data = read_obj(path, materials=texture_format is not None)
    else:
        data = read_with_trimesh(path, fmt)
    return mesh_tensors(data, normalization, device, texture_format, texture_size, texture_wrapping, use_bilinear)


def save_mesh(path: Union[str, os.PathLike], vertices: torch.Tensor, faces: torch.Tensor, textures=None,
              texture_tile: int = 8) -> None:
    """Write vertices (V, 3) and faces (F, 3) (no batch dimension, any device) to ``path``, in the
    format of its extension.

    ``textures``: None, per-vertex colours (V, 3), texture cubes (F, T, T, T, 3) or a
    :class:`tritonnmr.UVMap`. ``.obj`` goes to :func:`tritonnmr.save_obj` (OBJ + MTL + PNG; vertex
    colours on the ``v`` lines); ``.ply``, ``.stl``, ``.off``, ``.glb``, ``.gltf`` through trimesh,
    UV maps and cubes (as their atlas) as GLB/glTF textures (see :mod:`tritonnmr.io.trimesh_write`
    for what each format holds). :func:`load_mesh` reads back the same vertices and faces.

    Raises ValueError naming the argument for bad shapes or values, for textures the format cannot hold
    and for an extension it does not write; ImportError (one line) when trimesh is needed and missing.
    """
    path = os.fspath(path)
    fmt = _suffix(path, ("obj",) + WRITTEN)
    if fmt == "obj":
        return save_obj(path, vertices, faces, textures, texture_tile)
    if fmt not in WRITTEN:
        raise ValueError(f"{one_line(path)}: save_mesh writes .obj, {', '.join('.' + f for f in WRITTEN)}; "
                         f"not {'.' + fmt if fmt else 'a file without extension'}")
    require_trimesh(path, "writing")
    vertices, faces = check_mesh(vertices, faces)
    write_with_trimesh(path, fmt, vertices.numpy(), faces.numpy().astype(np.int64), textures, texture_tile)
