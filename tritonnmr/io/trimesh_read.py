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
- STL, glTF and GLB store a vertex once per triangle or once per uv seam: split vertices are merged
  there (the first one's colour kept), so the mesh is connected as its OBJ twin is. A glTF/GLB that
  save_mesh wrote names each vertex's index in the mesh (the ``_TRITONNMR_VERTEX`` attribute), and
  the vertices come back exactly, duplicates included; in any other file vertices at exactly the same
  position are merged, in order of first appearance. PLY and OFF keep their vertex list as written.

Every problem is a one-line ValueError naming the file; trimesh's own messages are quoted in it, and
what it dropped becomes one warning.
"""
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .images import image_pixels, reason
from .surface import GREY, MeshData
from .text import FLOAT32_OVERFLOW, one_line, short
from .trimesh_guard import REASON_CHARS, failure, notice, quietly, require_trimesh

MERGED = ("stl", "glb", "gltf")  # formats that store a vertex once per triangle or per uv seam
VERTEX_ID = "_TRITONNMR_VERTEX"  # glTF attribute save_mesh writes: each written vertex's index in the mesh
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


@dataclass
class _Part:
    """One mesh of a scene as plain arrays: vertices (V, 3) float64 (transformed), faces (F, 3) int64,
    uvs (F, 3, 2) or None, sources and material (F,) into them (none: no colour), colours (V, 3) or
    None, ids (V,) the :data:`VERTEX_ID` attribute or None."""
    vertices: np.ndarray
    faces: np.ndarray
    uvs: Optional[np.ndarray] = None
    sources: list = field(default_factory=list)
    material: Optional[np.ndarray] = None
    colours: Optional[np.ndarray] = None
    ids: Optional[np.ndarray] = None


def _part(geometry, transform):
    """The :class:`_Part` of one trimesh geometry placed by ``transform`` (4, 4)."""
    vertices = np.asarray(geometry.vertices, dtype=np.float64)
    part = _Part(vertices @ transform[:3, :3].T + transform[:3, 3], np.asarray(geometry.faces, dtype=np.int64))
    part.faces = part.faces.reshape(-1, 3)
    ids = getattr(geometry, "vertex_attributes", {}).get(VERTEX_ID)
    if ids is not None and np.size(ids) == len(vertices):
        part.ids = np.asarray(ids, dtype=np.float64).reshape(-1)
    visual = geometry.visual
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        source, is_image = _material_source(visual.material)
        part.sources, part.material = [source], np.zeros(len(part.faces), dtype=np.int64)
        if visual.uv is not None and len(visual.uv) == len(vertices):
            part.uvs = np.asarray(visual.uv, dtype=np.float64)[part.faces]
        elif is_image:  # an image without uvs: its mean colour is all that can be shown
            part.sources = [source.reshape(-1, 3).mean(0).astype(np.float32)]
    elif kind == "vertex":
        part.colours = _rgb(visual.vertex_colors)
    elif kind == "face":
        table, first, inverse = np.unique(np.asarray(visual.face_colors)[:, :3], axis=0, return_index=True,
                                          return_inverse=True)
        order = np.argsort(first)  # colours in order of first use, as OBJ materials
        part.sources, part.material = list(_rgb(table[order])), np.argsort(order)[inverse.reshape(-1)]
    return part


def _parts(scene):
    """(the :class:`_Part` of every mesh instance, names of the skipped geometries' kinds) of a Scene."""
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


def _check(path, part, first):
    """ValueError naming the file for non-finite or too large vertices, faces outside their mesh's
    vertices, non-finite uvs; ``first`` the index of the part's first vertex in the file."""
    finite = np.isfinite(part.vertices).all(1)
    if not finite.all():
        raise ValueError(f"{one_line(path)}: vertex {int(np.flatnonzero(~finite)[0]) + first} is not finite "
                         f"(NaN or infinity)")
    if np.abs(part.vertices).max(initial=0) >= FLOAT32_OVERFLOW:
        raise ValueError(f"{one_line(path)}: vertices beyond float32 range")
    outside = (part.faces < 0) | (part.faces >= len(part.vertices))
    if outside.any():
        raise ValueError(f"{one_line(path)}: a face refers to vertex {int(part.faces[outside][0])}, outside the "
                         f"{len(part.vertices)} vertices of its mesh")
    if part.uvs is not None and not np.isfinite(part.uvs).all():
        raise ValueError(f"{one_line(path)}: texture coordinates are not finite (NaN or infinity)")


def _concatenated(path, parts):
    """The parts checked and joined: :class:`MeshData` plus the vertex ids (V,) of the file, or None
    unless every part has them."""
    offset, vertices, faces, uvs, material, sources, colours = 0, [], [], [], [], [], []
    textured = any(p.sources for p in parts)
    has_colours = any(p.colours is not None for p in parts)
    for p in parts:
        _check(path, p, offset)
        faces.append(p.faces + offset)
        offset += len(p.vertices)
        vertices.append(p.vertices)
        uvs.append(p.uvs if p.uvs is not None else np.zeros((len(p.faces), 3, 2)))
        src, mat = (p.sources, p.material) if p.sources else ([GREY], np.zeros(len(p.faces), dtype=np.int64))
        material.append(mat + (len(sources) if textured else 0))
        sources += src if textured else []
        colours.append(p.colours if p.colours is not None else np.tile(GREY, (len(p.vertices), 1)))
    ids = np.concatenate([p.ids for p in parts]) if all(p.ids is not None for p in parts) else None
    data = MeshData(path, np.concatenate(vertices).astype(np.float32), np.concatenate(faces),
                    np.concatenate(uvs).astype(np.float32), np.concatenate(material).astype(np.int64),
                    sources if textured else [GREY],
                    np.concatenate(colours).astype(np.float32) if has_colours else None, textured)
    return data, ids


def merge_equal_vertices(vertices, faces, colours=None, ids=None):
    """Split vertices made one again: (vertices (U, 3), faces (F, 3) re-indexed, colours (U, 3) of
    each first one, or None).

    With ``ids`` (V,) that are exactly the integers 0 .. U - 1, each at least once (what save_mesh
    writes as :data:`VERTEX_ID`), vertex k is the first with id k. Otherwise vertices at exactly the
    same position (``-0.0`` equal to ``0.0``) are merged, in order of first appearance.
    """
    if ids is not None and _valid_ids(ids):
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        order = np.arange(len(first))  # the sorted ids are 0 .. U - 1
    else:
        _, first, inverse = np.unique(vertices + np.float32(0), axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = first[order]
    return vertices[keep], rank[inverse.reshape(-1)][faces], (None if colours is None else colours[keep])


def _valid_ids(ids):
    """Whether ``ids`` are integers covering exactly 0 .. max (what save_mesh writes)."""
    if not len(ids) or not np.isfinite(ids).all() or (ids != np.round(ids)).any() or ids.min() != 0 \
            or ids.max() >= len(ids):
        return False
    return len(np.unique(ids)) == int(ids.max()) + 1


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
    file or a missing file it names (a glTF's buffers and images), and a one-line ValueError naming the
    file for an empty, truncated or malformed one, or one without triangles.
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
        except FileNotFoundError as e:  # a buffer or image the file names (as load_obj's MTL and images)
            raise FileNotFoundError(f"{one_line(path)}: a file it names is not found: "
                                    f"{one_line(short(reason(e), REASON_CHARS))}") from None
        except Exception as e:  # trimesh raises what its parsers meet: ValueError, KeyError, struct.error ...
            raise failure(path, what, e) from None
    if not parts:
        raise _no_faces(path, skipped)
    if skipped:
        messages.append(f"{', '.join(sorted(set(skipped)))} (not triangles)")
    text = notice(path, messages)
    if text:
        warnings.warn(text, stacklevel=3)
    data, ids = _concatenated(path, parts)
    if file_type in MERGED:
        data.vertices, data.faces, data.colours = merge_equal_vertices(data.vertices, data.faces, data.colours, ids)
    return data
