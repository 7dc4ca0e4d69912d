"""Evaluation by voxel IoU per category, against the trivial mean-shape baseline."""
import numpy as np
import torch
from tqdm.auto import tqdm

from . import voxels


@torch.no_grad()
def predict_occupancy(model, images, threshold=0.5):
    """Voxel occupancy (B, 32, 32, 32) [x, y, z] predicted from images (B, 4, 64, 64)."""
    model.eval()
    out = model(images)
    if model.kind == "voxel":
        return out > threshold
    return torch.stack([voxels.voxelize(v, model.faces) for v in out])


@torch.no_grad()
def choose_threshold(model, dataset, device, objects=32, seed=0):
    """The voxel model's occupancy threshold: the one of 0.1 ... 0.9 with the best IoU on training objects."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[:objects]
    model.eval()
    occupancy = model(dataset.images(idx, torch.zeros_like(idx)).to(device)).cpu()
    gt = dataset.voxels[idx]
    scores = {t: voxels.voxel_iou(occupancy > t, gt).mean().item() for t in np.round(np.arange(0.1, 0.95, 0.1), 2)}
    return float(max(scores, key=scores.get))


def mean_shape(train_set):
    """The trivial baseline: the mean training occupancy, thresholded where training IoU is best."""
    mean = train_set.voxels.float().mean(0)
    candidates = np.round(np.arange(0.05, 0.95, 0.05), 2)
    scores = {t: voxels.voxel_iou(mean > t, train_set.voxels).mean().item() for t in candidates}
    return mean > max(scores, key=scores.get)


@torch.no_grad()
def evaluate(trained, test_set, train_set, views, device="cpu", batch_size=32, progress=True):
    """Per-category mean voxel IoU over the test objects seen from ``views``.

    trained: {'mesh': model, 'voxel': model} (either may be missing). Adds 'mean_shape' (the trivial
    baseline). -> {category name: {'mesh_iou': x, 'voxel_iou': y, 'mean_shape_iou': z}}."""
    thresholds = {k: (choose_threshold(m, train_set, device) if k == "voxel" else 0.5) for k, m in trained.items()}
    baseline = mean_shape(train_set)
    objects = torch.arange(len(test_set)).repeat_interleave(len(views))
    view_ids = torch.tensor(views).repeat(len(test_set))
    scores = {k: [] for k in trained}
    bar = tqdm(total=len(objects) * len(trained), desc="eval", unit="image", disable=not progress)
    for start in range(0, len(objects), batch_size):
        o, v = objects[start:start + batch_size], view_ids[start:start + batch_size]
        images = test_set.images(o, v).to(device)
        for kind, model in trained.items():
            predicted = predict_occupancy(model, images, thresholds[kind]).cpu()
            scores[kind].append(voxels.voxel_iou(predicted, test_set.voxels[o]))
            bar.update(len(o))
    bar.close()
    per_image = {k: torch.cat(s) for k, s in scores.items()}
    labels = test_set.labels[objects]
    trivial = voxels.voxel_iou(baseline[None], test_set.voxels)
    result = {}
    for c, name in enumerate(test_set.names()):
        row = {f"{k}_iou": per_image[k][labels == c].mean().item() for k in trained}
        row["mean_shape_iou"] = trivial[test_set.labels == c].mean().item()
        result[name] = row
    return result, thresholds
