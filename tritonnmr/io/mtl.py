"""Parsing Wavefront MTL files: each material's diffuse colour (``Kd``) and image (``map_Kd``)."""
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .text import ObjError, is_number, numbers, read_lines, where

# map_Kd options and how many arguments each takes (-o, -s, -t take 1 to 3 numbers)
_OPTIONS = {"-blendu": 1, "-blendv": 1, "-boost": 1, "-mm": 2, "-texres": 1, "-clamp": 1, "-bm": 1,
            "-imfchan": 1, "-type": 1, "-cc": 1, "-o": 3, "-s": 3, "-t": 3}


@dataclass
class Material:
    """One ``newmtl``: ``kd`` (3,) float32 or None, ``image`` the resolved ``map_Kd`` path or None,
    and where each was defined (``path``, ``line`` of ``newmtl``, ``image_line``)."""
    name: str
    path: str
    line: int
    kd: Optional[np.ndarray] = None
    image: Optional[str] = None
    image_line: Optional[int] = None


def _image_name(line, path):
    """The file name of a ``map_Kd`` line, after its options (the rest of the line, spaces kept)."""
    toks, k = line.tokens, 1
    while k < len(toks) and toks[k] in _OPTIONS:
        arity = _OPTIONS[toks[k]]
        k += 1
        if arity == 3:  # 1 to 3 numbers
            taken = 0
            while taken < 3 and k < len(toks) - 1 and is_number(toks[k]):
                k, taken = k + 1, taken + 1
            if taken == 0:
                raise ObjError(f"{where(path, line.lineno)}: map_Kd option {toks[k - 1]} needs a number")
        else:
            k += arity
    name = line.rest(k)
    if not name:
        raise ObjError(f"{where(path, line.lineno)}: map_Kd needs an image file name")
    return name


def resolve_image(name, directories):
    """The first existing file for ``name`` in ``directories`` (also with ``\\`` read as a
    separator, as Windows exporters write), else the path it would have in the first directory."""
    for candidate in (name, name.replace("\\", "/")):
        for d in directories:
            path = os.path.join(d, candidate)
            if os.path.isfile(path):
                return path
    return os.path.join(directories[0], name)


def parse_mtl(path, obj_dir=None):
    """{name: :class:`Material`} for the MTL file ``path``; ``map_Kd`` paths are relative to the MTL
    file's folder (then ``obj_dir``, where neural_renderer looks). Raises FileNotFoundError, or
    ObjError (a ValueError) naming the line: a material defined twice, ``Kd`` before ``newmtl``,
    ``Kd`` that is not 1 or 3 finite numbers, ``map_Kd`` without a file name."""
    out, current = {}, None
    directories = [os.path.dirname(path)] + ([obj_dir] if obj_dir is not None else [])
    for line in read_lines(path, "MTL file"):
        key = line.tokens[0]
        if key == "newmtl":
            name = line.rest(1)
            if not name:
                raise ObjError(f"{where(path, line.lineno)}: newmtl needs a material name")
            if name in out:
                first = out[name]
                raise ObjError(f"{where(path, line.lineno)}: material {name!r} is defined twice "
                               f"(first at {where(first.path, first.line)})")
            current = out[name] = Material(name, path, line.lineno)
        elif key in ("Kd", "map_Kd"):
            if current is None:
                raise ObjError(f"{where(path, line.lineno)}: {key} before any newmtl")
            if key == "Kd":
                if len(line.tokens) > 1 and line.tokens[1] in ("spectral", "xyz"):
                    raise ObjError(f"{where(path, line.lineno)}: Kd {line.tokens[1]} is not supported (use Kd r g b)")
                rgb = numbers(line, path, 1, 3, "r [g b]")
                if len(rgb) == 2:
                    raise ObjError(f"{where(path, line.lineno)}: Kd needs 1 or 3 numbers, got 2")
                current.kd = np.array(rgb * 3 if len(rgb) == 1 else rgb, dtype=np.float32)
            else:
                current.image = resolve_image(_image_name(line, path), directories)
                current.image_line = line.lineno
    return out


def read_materials(obj):
    """{name: Material} from every ``mtllib`` of the parsed OBJ ``obj`` (several files per line;
    a name with spaces is taken whole when the whole name is a file and its parts are not).
    Raises FileNotFoundError for a missing library."""
    obj_dir = os.path.dirname(obj.path)
    out, seen = {}, set()
    for lineno, names, whole in obj.mtllibs:
        paths = [os.path.join(obj_dir, n) for n in names]
        if len(names) > 1 and not all(os.path.isfile(p) for p in paths) and os.path.isfile(os.path.join(obj_dir, whole)):
            paths = [os.path.join(obj_dir, whole)]
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"MTL file not found: {p} (mtllib at {where(obj.path, lineno)})")
            if os.path.realpath(p) in seen:  # the same library named twice is read once
                continue
            seen.add(os.path.realpath(p))
            for name, m in parse_mtl(p, obj_dir).items():
                if name in out:
                    raise ObjError(f"{where(p, m.line)}: material {name!r} is defined twice "
                                   f"(first at {where(out[name].path, out[name].line)})")
                out[name] = m
    return out
