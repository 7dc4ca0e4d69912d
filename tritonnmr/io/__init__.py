"""Wavefront OBJ/MTL reading and writing.

``load_obj`` (:mod:`.load`) reads geometry (:mod:`.obj`), materials (:mod:`.mtl`) and texture images
(:mod:`.images`), and either bakes them into per-face cubes (:mod:`.cubes`) or returns a
:class:`tritonnmr.UVMap`; ``save_obj`` (:mod:`.save`) writes them back. Text is tokenised by
:mod:`.text`, which also makes every error one line naming the file and line.
"""
from .load import load_obj
from .save import save_obj
from .text import ObjError

__all__ = ["load_obj", "save_obj", "ObjError"]
