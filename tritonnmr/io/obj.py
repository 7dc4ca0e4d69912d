"""Parsing the geometry of a Wavefront OBJ file (``v``, ``vt``, ``vn``, ``f``, ``mtllib``, ``usemtl``)."""
from dataclasses import dataclass, field

import numpy as np

from .text import ObjError, integer, numbers, read_lines, where


@dataclass
class ObjData:
    """What :func:`parse_obj` reads from one OBJ file.

    vertices (V, 3) float32; faces (F, 3) int64 (polygons fan-triangulated, 0-based); uvs (F, 3, 2)
    float32, each face corner's ``vt`` (u, v), 0 where the corner has none; material (F,) int64, an
    index into ``material_names`` (the ``usemtl`` names in order of first use) or -1 before any
    ``usemtl``; ``material_lines`` the line of each name's first ``usemtl``; ``mtllibs`` the
    ``mtllib`` lines as (line number, file names, raw rest of the line).
    """
    path: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    material: np.ndarray
    material_names: list = field(default_factory=list)
    material_lines: list = field(default_factory=list)
    mtllibs: list = field(default_factory=list)


def _corner(tok, counts, path, lineno, forward):
    """One face corner ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` -> 0-based (v, vt or -1).

    Negative indices count back from the elements defined so far. Positive ones may point past
    them (forward references are checked once the whole file is read): ``forward`` collects the
    largest positive index of each kind with its line.
    """
    parts = tok.split("/")
    if len(parts) > 3 or not parts[0] or (len(parts) == 2 and not parts[1]) or (len(parts) == 3 and not parts[2]):
        raise ObjError(f"{where(path, lineno)}: face corner {tok!r} is not v, v/vt, v//vn or v/vt/vn")
    out = []
    for kind, part in enumerate(parts):
        if not part:  # the empty vt of v//vn
            out.append(-1)
            continue
        name = ("vertex", "texture coordinate", "normal")[kind]
        i = integer(part, path, lineno, f"{name} index")
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


def parse_obj(path):
    """Read ``path``; raises FileNotFoundError, or ObjError (a ValueError) naming the line."""
    verts, tex, faces, face_tex, face_mat = [], [], [], [], []
    counts = [0, 0, 0]  # v, vt, vn so far
    forward = [(0, 0), (0, 0), (0, 0)]  # largest positive index of each kind, and its line
    names, first_use, mtllibs = {}, [], []
    material = -1
    for line in read_lines(path, "OBJ file"):
        key = line.tokens[0]
        if key == "v":
            verts.append(numbers(line, path, 3, 7, "x y z [w | r g b [a]]")[:3])
            counts[0] += 1
        elif key == "vt":
            uv = numbers(line, path, 1, 3, "u [v [w]]")
            tex.append((uv[0], uv[1] if len(uv) > 1 else 0.0))
            counts[1] += 1
        elif key == "vn":
            numbers(line, path, 3, 3, "x y z")
            counts[2] += 1
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
        elif key == "usemtl":
            if len(line.tokens) < 2:
                raise ObjError(f"{where(path, line.lineno)}: usemtl needs a material name")
            name = line.rest(1)
            if name not in names:
                names[name] = len(names)
                first_use.append(line.lineno)
            material = names[name]
        elif key == "mtllib":
            if len(line.tokens) < 2:
                raise ObjError(f"{where(path, line.lineno)}: mtllib needs a file name")
            mtllibs.append((line.lineno, line.tokens[1:], line.rest(1)))
    final = (len(verts), len(tex), counts[2])
    for kind, ((largest, lineno), total) in enumerate(zip(forward, final)):
        if largest > total:
            name = ("vertex", "texture coordinate", "normal")[kind]
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
    return ObjData(path, np.array(verts, dtype=np.float32), np.array(faces, dtype=np.int64),
                   uvs.astype(np.float32), np.array(face_mat, dtype=np.int64), list(names), first_use, mtllibs)
