"""Reading PLY, STL, OFF, glTF, GLB (and whatever else trimesh reads) into a :class:`MeshData`.

trimesh parses the file (``process=False``: vertices and faces as written). What is taken from it:

- every triangle mesh of the scene, its node's transform applied, concatenated in the file's order
  of meshes (each instance of a mesh counts); point clouds and lines are skipped with a notice, and
  a file with no triangles at all is an error;
- glTF/GLB materials: the base-colour texture times the base-colour factor with the ``TEXCOORD_0``
  uvs, or the factor alone as a colour; other materials (a PLY's texture): the image, or the diffuse
  colour;
- per-vertex colours (PLY ``red green blue``, glTF ``COLOR_0``) as (V, 3) in [0, 1], alpha dropped;
  per-face colours (PLY) as one colour source per distinct colour, in order of first use;
- STL, glTF and GLB store a vertex once per triangle or once per uv seam: vertices at exactly the same
  position are merged there, in order of first appearance (the first one's colour kept), so the mesh
  is connected as its OBJ twin is. PLY and OFF keep their vertex list as written.

Every problem is a one-line ValueError naming the file; trimesh's own messages are quoted in it, and
what it dropped becomes one warning.
"""
import json
import os
import warnings

import numpy as np

from .images import image_pixels
from .surface import GREY, MeshData
from .text import FLOAT32_OVERFLOW, one_line
from .trimesh_guard import failure, notice, quietly, require_trimesh

MERGED = ("stl", "glb", "gltf")  # formats that store a vertex once per triangle or per uv seam
WHITE = np.ones(3, dtype=np.float32)


def _resolver(trimesh, path):
    """trimesh's resolver for the files a glTF names, refusing anything but regular files (a FIFO or
    device would block the read)."""
    class RegularFiles(trimesh.resolvers.FilePathResolver):
        def get(self, name):
            for candidate in (name.strip(), name.strip().lstrip("/"), os.path.split(name)[-1]):
                try:
                    target = self.absolute(candidate)
                except ValueError:
                    continue
                if target.exists() and not target.is_file():
                    raise ValueError(f"{name!r} is not a regular file")
            return super().get(name)
    return RegularFiles(path)


def _rgb(colours):
    """uint8 (N, 3 or 4) -> float32 (N, 3) in [0, 1]."""
    return (np.asarray(colours, dtype=np.float32)[:, :3] / 255.0).astype(np.float32)


def _material_source(material):
    """(source (3,) colour or (h, w, 3) image, whether it is an image) of a trimesh material."""
    if hasattr(material, "baseColorTexture"):  # glTF's PBR material: texture times factor
        factor = material.baseColorFactor
        factor = WHITE if factor is None else _rgb(np.asarray(factor)[None])[0]
        image = material.baseColorTexture
        if image is None:
            return factor, False
        return (image_pixels(image) * factor).astype(np.float32), True
    image = getattr(material, "image", None)
    if image is not None:
        return image_pixels(image), True
    diffuse = getattr(material, "diffuse", None)
    return (GREY if diffuse is None else _rgb(np.asarray(diffuse)[None])[0]), False


def _part(geometry, transform):
    """One mesh of the scene as plain arrays: (vertices (V, 3) float64 transformed, faces (F, 3)
    int64, uvs (F, 3, 2) or None, sources, material (F,) into them or None, colours (V, 3) or None)."""
    vertices = np.asarray(geometry.vertices, dtype=np.float64)
    vertices = vertices @ transform[:3, :3].T + transform[:3, 3]
    faces = np.asarray(geometry.faces, dtype=np.int64).reshape(-1, 3)
    visual = geometry.visual
    kind = getattr(visual, "kind", None)
    uvs, sources, material, colours = None, [], None, None
    if kind == "texture":
        source, is_image = _material_source(visual.material)
        sources, material = [source], np.zeros(len(faces), dtype=np.int64)
        if visual.uv is not None and len(visual.uv) == len(vertices):
            uvs = np.asarray(visual.uv, dtype=np.float64)[faces]
        elif is_image:  # an image without uvs: its mean colour is all that can be shown
            sources = [source.reshape(-1, 3).mean(0).astype(np.float32)]
    elif kind == "vertex":
        colours = _rgb(visual.vertex_colors)
    elif kind == "face":
        table, first, inverse = np.unique(np.asarray(visual.face_colors)[:, :3], axis=0, return_index=True,
                                          return_inverse=True)
        order = np.argsort(first)  # colours in order of first use, as OBJ materials
        rank = np.argsort(order)
        sources, material = list(_rgb(table[order])), rank[inverse.reshape(-1)].astype(np.int64)
    return vertices, faces, uvs, sources, material, colours


def _parts(scene):
    """(parts (see :func:`_part`), names of the skipped geometries' kinds) of a trimesh Scene."""
    parts, skipped = [], []
    placed = scene.graph.geometry_nodes
    for name, geometry in scene.geometry.items():  # the file's order (a dict), each instance of it
        for node in placed.get(name, []):
            transform = scene.graph[node][0]
            faces = getattr(geometry, "faces", None)
            if faces is None:
                skipped.append(type(geometry).__name__)
            elif len(faces):
                parts.append(_part(geometry, np.asarray(transform, dtype=np.float64)))
    return parts, skipped


def _no_faces(path, skipped):
    kinds = {"PointCloud": "points", "Path3D": "lines", "Path2D": "2D lines"}
    found = sorted({kinds.get(k, k) for k in skipped})
    held = f"it holds only {' and '.join(found)}" if found else "it may be empty, truncated or of another format"
    return ValueError(f"{one_line(path)}: no triangles found ({held})")


def _checked(path, parts):
    """Our own checks of what trimesh gave, then the parts concatenated: (vertices (V, 3) float32, faces,
    uvs, material, sources, colours, textured)."""
    offset, count = 0, 0
    for vertices, faces, uvs, *_ in parts:
        if not np.isfinite(vertices).all():
            bad = int(np.flatnonzero(~np.isfinite(vertices).all(1))[0]) + count
            raise ValueError(f"{one_line(path)}: vertex {bad} is not finite (NaN or infinity)")
        if np.abs(vertices).max(initial=0) >= FLOAT32_OVERFLOW:
            raise ValueError(f"{one_line(path)}: vertices beyond float32 range")
        outside = (faces < 0) | (faces >= len(vertices))
        if outside.any():
            raise ValueError(f"{one_line(path)}: a face refers to vertex {int(faces[outside][0])}, outside the "
                             f"{len(vertices)} vertices of its mesh")
        if uvs is not None and not np.isfinite(uvs).all():
            raise ValueError(f"{one_line(path)}: texture coordinates are not finite (NaN or infinity)")
        count += len(vertices)
    textured = any(p[3] for p in parts)
    has_colours = any(p[5] is not None for p in parts)
    vertices, faces, uvs, material, sources, colours = [], [], [], [], [], []
    for v, f, uv, src, mat, col in parts:
        faces.append(f + offset)
        offset += len(v)
        vertices.append(v)
        uvs.append(uv if uv is not None else np.zeros((len(f), 3, 2)))
        if not src:
            src, mat = [GREY], np.zeros(len(f), dtype=np.int64)
        material.append(mat + len(sources))
        sources += src
        colours.append(col if col is not None else np.tile(GREY, (len(v), 1)))
    return (np.concatenate(vertices).astype(np.float32), np.concatenate(faces),
            np.concatenate(uvs).astype(np.float32), np.concatenate(material), sources,
            np.concatenate(colours).astype(np.float32) if has_colours else None, textured)


def merge_equal_vertices(vertices, faces, colours=None):
    """Vertices at exactly the same position (``-0.0`` equal to ``0.0``) made one, in order of first
    appearance: (vertices (U, 3), faces (F, 3) re-indexed, colours (U, 3) of each first one or None)."""
    unique, first, inverse = np.unique(vertices + np.float32(0), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    faces = rank[inverse.reshape(-1)][faces]
    return unique[order], faces, (None if colours is None else colours[first[order]])


def _check_json(path, what):
    """A .gltf file is JSON: its syntax errors named here (trimesh would look for another file)."""
    try:
        with open(path, "rb") as f:
            json.loads(f.read())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise failure(path, what, e) from None


def read_with_trimesh(path, file_type):
    """:class:`MeshData` of the mesh file ``path`` read by trimesh as ``file_type`` ('ply', 'glb' ...).

    Raises ImportError (one line, what to install) without trimesh, FileNotFoundError for a missing
    file, and a one-line ValueError naming the file for an empty, truncated or malformed one, or one
    without triangles.
    """
    trimesh = require_trimesh(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mesh file not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{one_line(path)}: the file is empty")
    what = f"read it as {file_type.upper()}"
    if file_type == "gltf":
        _check_json(path, what)
    with quietly() as messages:
        try:
            parts, skipped = _parts(trimesh.load_scene(path, file_type=file_type, resolver=_resolver(trimesh, path),
                                                       process=False))
        except Exception as e:  # trimesh raises what its parsers meet: ValueError, KeyError, struct.error ...
            raise failure(path, what, e) from None
    if not parts:
        raise _no_faces(path, skipped)
    if skipped:
        messages.append(f"{', '.join(sorted(set(skipped)))} (not triangles)")
    text = notice(path, messages)
    if text:
        warnings.warn(text, stacklevel=3)
    vertices, faces, uvs, material, sources, colours, textured = _checked(path, parts)
    if file_type in MERGED:
        vertices, faces, colours = merge_equal_vertices(vertices, faces, colours)
    if not textured:
        sources, material = [GREY], np.zeros_like(material)
    return MeshData(path, vertices, faces, uvs, material, sources, colours, textured)
