"""Writing PLY, STL, OFF, glTF and GLB files through trimesh.

What each format holds (``textures`` of :func:`write_with_trimesh`):

| format | geometry | per-vertex colours (V, 3) | a UVMap or cubes (F, T, T, T, 3) |
|---|---|---|---|
| PLY (binary) | exact | 8-bit | no |
| STL (binary) | exact (float32; no vertex list: merged again on reading) | no | no |
| OFF (text) | exact (enough decimals for 9 significant digits) | no | no |
| glTF (one file, buffers embedded) and GLB | exact | 8-bit ``COLOR_0`` | base-colour textures (8-bit PNG) |

For glTF/GLB a vertex is written once per distinct uv among its face corners (the format has one uv
per vertex), with its index in the mesh as the ``_TRITONNMR_VERTEX`` attribute, so that reading merges
them back into exactly the vertices given (duplicates and unused ones included: those go with the
first primitive). One primitive per material used, in order of index (``baseColorFactor`` for a 1 x 1
image, a texture otherwise), so faces read back grouped by material (in their order within each);
the wrap mode is not stored (nor is it in OBJ). Cubes are written as their texture atlas (as
:func:`tritonnmr.save_obj` does). A format that cannot hold the textures given is a ValueError.
"""
import math
import os

import numpy as np

from ..uvmap import UVMap
from .images import to_pil, to_uint8
from .save import check_uvmap, check_vertex_colours, cube_atlas, is_vertex_colours
from .trimesh_guard import failure, quietly, require_trimesh
from .trimesh_read import VERTEX_ID

WRITTEN = ("ply", "stl", "off", "glb", "gltf")
HOLDS_COLOURS = ("ply", "glb", "gltf")
HOLDS_TEXTURES = ("glb", "gltf")
SIGNIFICANT = 9  # decimal digits that bring any float32 back exactly
MAX_DECIMALS = 60  # enough for the smallest float32 (1.4e-45) with SIGNIFICANT digits
MAX_IDS = 2 ** 24  # vertex indices a float32 attribute holds exactly


def off_decimals(vertices):
    """Decimals for OFF's fixed-point numbers (trimesh writes ``%.Nf``) so that the smallest non-zero
    coordinate keeps :data:`SIGNIFICANT` digits (10 at least, trimesh's default)."""
    magnitudes = np.abs(vertices[vertices != 0])
    if not len(magnitudes):
        return 10
    return int(min(MAX_DECIMALS, max(10, SIGNIFICANT - math.floor(math.log10(float(magnitudes.min()))))))


def _split_by_uv(faces, uvs, extra=None):
    """One vertex per distinct (vertex, uv) corner, ordered by vertex then uv: (index (U,) of each
    in the mesh, faces (F, 3) into them, uv (U, 2)); ``extra`` vertex indices (unused ones) get one
    with uv (0, 0)."""
    index = faces.reshape(-1)
    uv = uvs.reshape(-1, 2)
    if extra is not None and len(extra):
        index = np.concatenate([index, extra])
        uv = np.concatenate([uv, np.zeros((len(extra), 2), dtype=uv.dtype)])
    keys = np.column_stack([index, uv.view(np.int32)]).astype(np.int64)  # exact uv bits
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)[:faces.size].reshape(-1, 3)
    return unique[:, 0], inverse, np.ascontiguousarray(unique[:, 1:].astype(np.int32)).view(np.float32)


def _textured_scene(trimesh, vertices, faces, uvs, material, images):
    """A trimesh Scene with one textured mesh per material used (in order of index)."""
    scene = trimesh.Scene()
    unused = np.setdiff1d(np.arange(len(vertices)), faces.reshape(-1))
    for k, m in enumerate(np.unique(material)):
        sel = material == m
        index, f, uv = _split_by_uv(faces[sel], uvs[sel], unused if k == 0 else None)
        image = images[m]
        if image.shape[:2] == (1, 1):
            pbr = trimesh.visual.material.PBRMaterial(baseColorFactor=np.append(to_uint8(image[0, 0]), 255))
        else:
            pbr = trimesh.visual.material.PBRMaterial(baseColorTexture=to_pil(image),
                                                      baseColorFactor=[255, 255, 255, 255])
        visual = trimesh.visual.TextureVisuals(uv=uv.astype(np.float64), material=pbr)
        scene.add_geometry(_with_ids(trimesh.Trimesh(vertices[index], f, visual=visual, process=False), index),
                           geom_name=f"material_{m}")
    return scene


def _with_ids(mesh, index):
    """``mesh`` with each vertex's index in the saved mesh as the :data:`VERTEX_ID` attribute (float32,
    exact up to 2^24 vertices; beyond, none: reading merges equal positions instead)."""
    if len(index) and index.max() < MAX_IDS:
        mesh.vertex_attributes[VERTEX_ID] = index.astype(np.float32)
    return mesh


def _mesh_or_scene(trimesh, file_type, vertices, faces, textures, tile):
    """What trimesh exports for ``textures`` (None, per-vertex colours, a UVMap or cubes)."""
    every = np.arange(len(vertices))
    if textures is None:
        return _with_ids(trimesh.Trimesh(vertices, faces, process=False), every)
    if is_vertex_colours(textures):
        colours = check_vertex_colours(textures, vertices)
        if file_type not in HOLDS_COLOURS:
            raise ValueError(f"textures: {file_type.upper()} files hold no colours here; save per-vertex colours as "
                             f".ply, .glb, .gltf or .obj")
        rgba = np.column_stack([to_uint8(colours), np.full(len(colours), 255, dtype=np.uint8)])
        return _with_ids(trimesh.Trimesh(vertices, faces, vertex_colors=rgba, process=False), every)
    if file_type not in HOLDS_TEXTURES:
        raise ValueError(f"textures: {file_type.upper()} files hold no textures; save a UVMap or cubes as .glb, "
                         f".gltf or .obj")
    if isinstance(textures, UVMap):
        uvs, material, images = check_uvmap(textures, faces)
    else:
        image, uvs = cube_atlas(textures, faces, tile)
        material, images = np.zeros(len(faces), dtype=np.int64), [image]
    return _textured_scene(trimesh, vertices, faces, uvs, material, images)


def _export(trimesh, file_type, geometry, vertices):
    """The file's bytes."""
    exchange = trimesh.exchange
    if file_type in ("glb", "gltf"):
        scene = geometry if isinstance(geometry, trimesh.Scene) else trimesh.Scene(geometry)
        if file_type == "glb":
            return exchange.gltf.export_glb(scene)
        files = exchange.gltf.export_gltf(scene, embed_buffers=True)
        return files["model.gltf"]
    if file_type == "ply":
        return exchange.ply.export_ply(geometry, encoding="binary")
    if file_type == "stl":
        return exchange.stl.export_stl(geometry)
    return exchange.off.export_off(geometry, digits=off_decimals(vertices)).encode("ascii")


def write_with_trimesh(path, file_type, vertices, faces, textures=None, tile=8):
    """Write vertices (V, 3) float32 and faces (F, 3) int64 (checked numpy arrays) and ``textures``
    to ``path`` as ``file_type`` (one of :data:`WRITTEN`; the table in the module docstring says what
    each holds; cubes go through a texture atlas of ``tile`` pixels per face).

    Raises ImportError (one line) without trimesh, ValueError naming ``textures`` for textures the
    format cannot hold, and a one-line ValueError naming the file when trimesh fails.
    """
    trimesh = require_trimesh(path, "writing")
    vertices = np.asarray(vertices, dtype=np.float64)
    with quietly():
        geometry = _mesh_or_scene(trimesh, file_type, vertices, faces, textures, tile)
        try:
            data = _export(trimesh, file_type, geometry, vertices)
        except Exception as e:
            raise failure(path, f"write it as {file_type.upper()}", e) from None
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
