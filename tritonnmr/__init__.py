"""tritonnmr: a differentiable mesh renderer (Neural 3D Mesh Renderer) with Triton kernels.

The path from mesh to image: ``io`` (load_obj, load_mesh) -> ``mesh`` (fill_back, vertices_to_faces) ->
``lights`` -> ``camera`` -> ``clip`` -> ``raster`` (fragments, ``shading``, blurred-edge gradient; the
ops run by a backend of ``backends``: torch, triton, numba) -> images. ``Renderer`` composes them;
``apps`` and ``bench`` are built on top (nothing below imports them).
"""
from .camera import DEFAULT_DISTANCE, get_points_from_angles, look, look_at, perspective, projection
from .compat import Mesh, Rasterize
from .io import DATA_DIR, data_path, load_mesh, load_obj, save_mesh, save_obj
from .lights import face_light, lighting
from .mesh import fill_back, vertices_to_faces
from .raster import Fragments, edge_gradient, rasterize_fragments
from .render import rasterize, rasterize_depth, rasterize_rgbad, rasterize_silhouettes
from .renderer import Renderer
from .shading import Shader, TextureCubeShader, UVTextureShader, VertexColorShader
from .uvmap import UVMap

__version__ = "0.1.0"


__all__ = [
    "DEFAULT_DISTANCE", "Renderer", "Fragments", "Shader", "TextureCubeShader", "VertexColorShader", "UVTextureShader",
    "rasterize", "rasterize_rgbad", "rasterize_silhouettes", "rasterize_depth", "rasterize_fragments",
    "edge_gradient", "look_at", "look", "perspective", "projection", "get_points_from_angles",
    "lighting", "face_light", "vertices_to_faces", "fill_back", "load_obj", "save_obj", "load_mesh", "save_mesh",
    "data_path",
    "Mesh", "Rasterize", "UVMap",
]
