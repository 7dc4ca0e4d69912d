"""``load_obj``: an OBJ file (and its MTL files and texture images) to tensors."""
import warnings

import numpy as np
import torch

from ..uvmap import WRAPS as UV_WRAPS
from .cubes import WRAPPINGS
from .images import read_texture
from .mtl import read_materials
from .obj import parse_obj
from .surface import GREY, MeshData, surface_textures, untextured
from .text import ObjError, where

FORMATS = ("cubes", "uv")


def default_device():
    """neural_renderer's device: 'cuda' where CUDA is available, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def normalize_vertices(vertices):
    """neural_renderer's normalisation, in float64: shift to min 0, divide by the largest coordinate,
    times 2, centre on the box's middle (longest side spans [-1, 1]). (V, 3) float32 -> float32.
    Every finite float32 input gives finite output (no float32 overflow of the range); a mesh whose
    vertices are all equal maps to the origin (neural_renderer divides 0 by 0 there)."""
    v = vertices.astype(np.float64)
    v = v - v.min(0)
    scale = np.abs(v).max()
    if scale > 0:
        v = v / scale
    v = v * 2
    v = v - v.max(0) / 2
    return v.astype(np.float32)


def _sources(obj, materials):
    """Per-face slot index (F,) and one source per slot: an image (path, MTL file, line) or a colour
    (3,) float32. Slots are numbered in order of first use by a face; materials sharing an image file
    share its slot; faces without a material, or with a name no MTL defines (warned once per name),
    share one 0.5 grey slot."""
    slots, sources, remap = {}, [], np.full(len(obj.material_names) + 1, -1, dtype=np.int64)

    def slot(key, source):
        if key not in slots:
            slots[key] = len(sources)
            sources.append(source)
        return slots[key]

    values, first = np.unique(obj.material, return_index=True)
    for i in values[np.argsort(first)]:  # in order of first use by a face; -1 is "no usemtl yet"
        if i < 0:
            remap[0] = slot(None, GREY)
            continue
        name = obj.material_names[i]
        m = materials.get(name)
        if m is None:
            warnings.warn(f"{where(obj.path, obj.material_lines[i])}: material {name!r} is not defined "
                          f"in the MTL files; its faces get 0.5 grey (as neural_renderer)", stacklevel=3)
            remap[i + 1] = slot(None, GREY)
        elif m.image is not None:
            remap[i + 1] = slot(("image", m.image), (m.image, m.path, m.image_line))  # one slot per file
        else:
            remap[i + 1] = slot(name, m.kd if m.kd is not None else GREY)
    return remap[obj.material + 1], sources


def load_obj(filename_obj, normalization=True, texture_size=4, load_texture=False,
             texture_wrapping="REPEAT", use_bilinear=True, texture_format="cubes", device=None):
    """Read a Wavefront OBJ file (neural_renderer's ``load_obj``, same arguments and defaults).

    Returns ``(vertices, faces)`` or, with ``load_texture``, ``(vertices, faces, textures)``:
    vertices (V, 3) float32, faces (F, 3) int32 (polygons fan-triangulated; ``v``, ``v/vt``,
    ``v//vn``, ``v/vt/vn`` corners, negative indices relative to the elements read so far).

    - ``normalization``: scale and centre into [-1, 1]^3 (longest side 2), computed in float64.
    - ``load_texture``: read the ``mtllib`` files (several per line allowed); per face, ``map_Kd``
      images, else ``Kd`` colours, else 0.5 grey (no ``usemtl``, or a material no MTL defines:
      warned). ``texture_format="cubes"``: per-face cubes (F, T, T, T, 3) of ``texture_size``
      T, baked as :mod:`tritonnmr.io.cubes` documents with ``texture_wrapping`` ('REPEAT',
      'MIRRORED_REPEAT', 'CLAMP_TO_EDGE' or 'CLAMP_TO_BORDER') and ``use_bilinear``.
      ``texture_format="uv"``: a :class:`tritonnmr.UVMap` (the uvs, a material per face, the images
      unbaked; 'CLAMP_TO_BORDER' is not available there; ``texture_size`` and ``use_bilinear`` unused).
    - ``device``: where the tensors go; default ``"cuda"`` if ``torch.cuda.is_available()`` else
      ``"cpu"``, as neural_renderer (which always returns CUDA tensors).

    Raises FileNotFoundError for a missing OBJ, MTL or image file, and a one-line ValueError
    ``path:line: problem`` for anything malformed (non-numbers, NaN, infinities or values beyond
    float32 in ``v``/``vt``/``vn``/``Kd``, bad or out-of-range indices, unreadable images ...).
    """
    check_texture_options(texture_format, FORMATS, texture_wrapping, texture_size)
    data = read_obj(str(filename_obj), materials=load_texture)
    if load_texture and not data.textured:
        raise ObjError(f"{where(data.path)}: load_texture=True but the file names no material library (mtllib)")
    return mesh_tensors(data, normalization, device, texture_format if load_texture else None,
                        texture_size, texture_wrapping, use_bilinear)


def check_texture_options(texture_format, formats, texture_wrapping, texture_size):
    """ValueError naming the argument for a format not in ``formats``, a wrap mode the format does not
    take, or a texture_size that is not a positive int."""
    if texture_format not in formats:
        raise ValueError(f"texture_format must be one of {', '.join(map(str, formats))}, got {texture_format!r}")
    allowed = UV_WRAPS if texture_format == "uv" else WRAPPINGS
    if texture_wrapping not in allowed:
        raise ValueError(f"texture_wrapping must be one of {', '.join(allowed)} for texture_format="
                         f"{texture_format!r}, got {texture_wrapping!r}")
    if isinstance(texture_size, bool) or not isinstance(texture_size, (int, np.integer)) or texture_size < 1:
        raise ValueError(f"texture_size must be a positive int, got {texture_size!r}")


def read_obj(path, materials=True):
    """:class:`MeshData` of an OBJ file; its materials (MTL files, images) are read when ``materials``
    and the file names a library (``textured`` says whether it did)."""
    obj = parse_obj(path, materials=materials)
    if not (materials and obj.mtllibs):
        return untextured(path, obj.vertices, obj.faces, obj.colours)
    material, sources = _sources(obj, read_materials(obj))
    images = {}
    for s in sources:
        if isinstance(s, tuple) and s[0] not in images:
            images[s[0]] = read_texture(*s)
    sources = [images[s[0]] if isinstance(s, tuple) else s for s in sources]
    return MeshData(path, obj.vertices, obj.faces, obj.uvs, material, sources, obj.colours, True)


def mesh_tensors(data, normalization, device, texture_format, texture_size=4, texture_wrapping="REPEAT",
                 use_bilinear=True):
    """``(vertices (V, 3) float32, faces (F, 3) int32[, textures])`` of ``data`` on ``device`` (None:
    :func:`default_device`), normalised as :func:`normalize_vertices` when ``normalization``;
    textures (see :func:`tritonnmr.io.surface.surface_textures`) unless ``texture_format`` is None."""
    device = torch.device(default_device() if device is None else device)
    vertices = normalize_vertices(data.vertices) if normalization else data.vertices
    v = torch.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32)).to(device)
    f = torch.from_numpy(data.faces.astype(np.int32)).to(device)
    if texture_format is None:
        return v, f
    return v, f, surface_textures(data, texture_format, texture_size, texture_wrapping, use_bilinear).to(device)
