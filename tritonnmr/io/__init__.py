"""Reading and writing meshes.

``load_obj`` (:mod:`.load`) reads geometry (:mod:`.obj`), materials (:mod:`.mtl`) and texture images
(:mod:`.images`), and either bakes them into per-face cubes (:mod:`.cubes`) or returns a
:class:`tritonnmr.UVMap`; ``save_obj`` (:mod:`.save`) writes them back. Text is tokenised by
:mod:`.text`, which also makes every error one line naming the file and line.

``load_mesh`` and ``save_mesh`` (:mod:`.mesh_files`) take any format by its extension: OBJ as above,
PLY, STL, OFF, glTF, GLB ... through trimesh (:mod:`.trimesh_read`, :mod:`.trimesh_write`, called
through :mod:`.trimesh_guard`); :mod:`.surface` turns what a file holds into cubes, a UV map or
per-vertex colours.
"""
from .bundled import DATA_DIR, data_path
from .load import load_obj
from .mesh_files import load_mesh, save_mesh
from .save import save_obj
from .surface import NoTextureWarning
from .text import ObjError

__all__ = ["DATA_DIR", "data_path", "load_obj", "save_obj", "load_mesh", "save_mesh", "NoTextureWarning", "ObjError"]
