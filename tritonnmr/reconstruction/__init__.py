"""Single-image 3D mesh reconstruction trained with silhouettes only, against a voxel baseline.

data (files, procedural generator) -> models (mesh generator, PTN-style voxel net) -> train
(silhouette IoU through the renderer or the voxel projection) -> voxel IoU per category.
Modules: shapes (meshes), voxels (voxelization, IoU), data, models, losses, training, commands (CLI).
"""
from .data import Dataset, load_category, make_dataset, save_category
from .losses import face_pairs, iou_loss, smoothness_loss
from .models import MeshGenerator, VoxelGenerator, project_voxels
from .training import FULL, QUICK, Config, evaluate, load_checkpoint, train
from .voxels import from_dataset, to_dataset, voxel_iou, voxelize

__all__ = ["FULL", "QUICK", "Config", "Dataset", "MeshGenerator", "VoxelGenerator", "evaluate", "face_pairs",
           "from_dataset", "iou_loss", "load_category", "load_checkpoint", "make_dataset", "project_voxels",
           "save_category", "smoothness_loss", "to_dataset", "train", "voxel_iou", "voxelize"]
