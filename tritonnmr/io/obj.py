"""Parsing the geometry of a Wavefront OBJ file (``v``, ``vt``, ``vn``, ``f``, ``mtllib``, ``usemtl``)."""
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .text import ObjError, integer, numbers, read_lines, where

NO_COLOUR = 0.5  # the colour of a vertex without one, when others have one (neural_renderer's grey)
KINDS = ("vertex", "texture coordinate", "normal")


@dataclass
class ObjData:
    """What :func:`parse_obj` reads from one OBJ file.

    vertices (V, 3) float32; faces (F, 3) int64 (polygons fan-triangulated, 0-based); uvs (F, 3, 2)
    float32, each face corner's ``vt`` (u, v), 0 where the corner has none; material (F,) int64, an
    index into ``material_names`` (the ``usemtl`` names in order of first use) or -1 before any
    ``usemtl``; ``material_lines`` the line of each name's first ``usemtl``; ``mtllibs`` the
    ``mtllib`` lines as (line number, file names, raw rest of the line); ``colours`` (V, 3) float32,
    the ``v x y z r g b [a]`` colours (0.5 grey for vertices without one), or None when no ``v`` line
    has a colour.
    """
    path: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    material: np.ndarray
    material_names: list = field(default_factory=list)
    material_lines: list = field(default_factory=list)
    mtllibs: list = field(default_factory=list)
    colours: Optional[np.ndarray] = None


def _corner(tok, counts, path, lineno, forward):
    """One face corner ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` -> 0-based (v, vt or -1).

    Negative indices count back from the elements defined so far. Positive ones may point past
    them (forward references are checked once the whole file is read): ``forward`` collects the
    largest positive index of each kind with its line. A normal index must be an integer and is
    otherwise ignored: normals are never used, so 0 or an index out of range is not an error.
    """
    parts = tok.split("/")
    if len(parts) > 3 or not parts[0] or (len(parts) == 2 and not parts[1]) or (len(parts) == 3 and not parts[2]):
        raise ObjError(f"{where(path, lineno)}: face corner {tok!r} is not v, v/vt, v//vn or v/vt/vn")
    out = []
    for kind, part in enumerate(parts):
        if not part:  # the empty vt of v//vn
            out.append(-1)
            continue
        name = KINDS[kind]
        i = integer(part, path, lineno, f"{name} index")
        if kind == 2:
            continue  # a normal: never used
        if i == 0:
            raise ObjError(f"{where(path, lineno)}: {name} index 0 is invalid (OBJ indices start at 1)")
        if i < 0:
            if -i > counts[kind]:
                raise ObjError(f"{where(path, lineno)}: {name} index {i} points before the first "
                               f"(there are {counts[kind]} so far)")
            i = counts[kind] + i
        else:
            if i > forward[kind][0]:
                forward[kind] = (i, lineno)
            i -= 1
        out.append(i)
    return out[0], (out[1] if len(out) > 1 else -1)


def parse_obj(path, materials=True):
    """Read ``path``; raises FileNotFoundError, or ObjError (a ValueError) naming the line.

    ``materials``: whether the materials will be read. Without, a ``mtllib`` or ``usemtl`` line with
    no name is irrelevant to the geometry: it is skipped with a warning instead of an error.
    """
    verts, colours, tex, faces, face_tex, face_mat = [], [], [], [], [], []
    counts = [0, 0]  # v, vt so far
    forward = [(0, 0), (0, 0)]  # largest positive index of v and vt, and its line
    names, first_use, mtllibs, bare = {}, [], [], []
    material = -1
    for line in read_lines(path, "OBJ file"):
        key = line.tokens[0]
        if key == "v":
            xyz = numbers(line, path, 3, 7, "x y z [w | r g b [a]]")
            verts.append(xyz[:3])
            colours.append(xyz[3:6] if len(xyz) >= 6 else None)
            counts[0] += 1
        elif key == "vt":
            uv = numbers(line, path, 1, 3, "u [v [w]]")
            tex.append((uv[0], uv[1] if len(uv) > 1 else 0.0))
            counts[1] += 1
        elif key == "vn":
            numbers(line, path, 3, 3, "x y z")  # checked, not used
        elif key == "f":
            args = line.tokens[1:]
            if len(args) < 3:
                raise ObjError(f"{where(path, line.lineno)}: a face needs at least 3 vertices, got {len(args)}")
            corners = [_corner(tok, counts, path, line.lineno, forward) for tok in args]
            for k in range(1, len(corners) - 1):  # fan triangulation
                tri = (corners[0], corners[k], corners[k + 1])
                faces.append(tuple(c[0] for c in tri))
                face_tex.append(tuple(c[1] for c in tri))
                face_mat.append(material)
        elif key in ("usemtl", "mtllib") and len(line.tokens) < 2:
            if materials:
                what = "a material name" if key == "usemtl" else "a file name"
                raise ObjError(f"{where(path, line.lineno)}: {key} needs {what}")
            bare.append((line.lineno, key))
        elif key == "usemtl":
            name = line.rest(1)
            if name not in names:
                names[name] = len(names)
                first_use.append(line.lineno)
            material = names[name]
        elif key == "mtllib":
            mtllibs.append((line.lineno, line.tokens[1:], line.rest(1)))
    if bare:
        more = f" (and {len(bare) - 1} more)" if len(bare) > 1 else ""
        warnings.warn(f"{where(path, bare[0][0])}: {bare[0][1]} without a name skipped{more}: materials are "
                      f"not read", stacklevel=3)
    for kind, ((largest, lineno), total) in enumerate(zip(forward, counts)):
        if largest > total:
            name = KINDS[kind]
            raise ObjError(f"{where(path, lineno)}: {name} index {largest} is out of range "
                           f"(the file has {total})")
    if not verts:
        raise ObjError(f"{where(path)}: no vertices ('v' lines) found")
    if not faces:
        raise ObjError(f"{where(path)}: no faces ('f' lines) found")
    table = np.array(tex, dtype=np.float32).reshape(-1, 2)
    fidx = np.array(face_tex, dtype=np.int64)
    uvs = np.zeros(fidx.shape + (2,), dtype=np.float32)
    if len(table):
        uvs = np.where(fidx[..., None] >= 0, table[np.maximum(fidx, 0)], np.float32(0))
    rgb = None
    if any(c is not None for c in colours):
        rgb = np.array([c if c is not None else [NO_COLOUR] * 3 for c in colours], dtype=np.float32)
    return ObjData(path, np.array(verts, dtype=np.float32), np.array(faces, dtype=np.int64),
                   uvs.astype(np.float32), np.array(face_mat, dtype=np.int64), list(names), first_use, mtllibs,
                   rgb)
