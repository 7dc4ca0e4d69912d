"""Single-image 3D mesh reconstruction trained with silhouettes only, against a voxel baseline.

data (files, procedural generator) -> models (mesh generator, PTN-style voxel net) -> training
(silhouette IoU through the renderer or the voxel projection; checkpoints) -> evaluation (voxel IoU
per category) -> report (JSON, Markdown, chart).
Modules: shapes (meshes), voxels (voxelization, IoU), data, models, losses, config, checkpoints,
training, evaluation, per_category (one model per category), report, chart, commands (CLI);
distributed (torchrun's ranks and their collectives) and batchnorm (BatchNorm over all ranks' batch)
for training on several processes.
"""
from .checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from .config import FULL, QUICK, Config
from .data import Dataset, load_category, make_dataset, save_category
from .evaluation import evaluate, predict_occupancy
from .losses import face_pairs, iou_loss, smoothness_loss
from .models import MeshGenerator, VoxelGenerator, project_voxels
from .report import write_report
from .training import train
from .voxels import from_dataset, to_dataset, voxel_iou, voxelize

__all__ = ["FULL", "QUICK", "Config", "Dataset", "MeshGenerator", "VoxelGenerator", "evaluate", "face_pairs",
           "from_dataset", "iou_loss", "load_category", "load_checkpoint", "make_dataset", "predict_occupancy",
           "project_voxels", "read_checkpoint", "save_category", "save_checkpoint", "smoothness_loss",
           "to_dataset", "train", "voxel_iou", "voxelize", "write_report"]
