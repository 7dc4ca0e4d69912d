"""Single-image reconstruction from silhouettes with each estimator: the mesh model, one model per
category, the project's quick configuration (``reconstruction.config.QUICK``: batch 16, lr 1e-3,
encoder width 16, feature 128, anti-aliased silhouettes, the sum of two IoU losses) and the same step
budget, seed and batches for every estimator; voxel IoU on the category's test objects from 4 views,
measured after each round of steps (training resumes exactly between rounds).
"""
import os
import time
from dataclasses import replace

import numpy as np

from tritonnmr.apps.reconstruction.config import QUICK
from tritonnmr.apps.reconstruction.data import Dataset, make_dataset
from tritonnmr.apps.reconstruction.evaluation import evaluate
from tritonnmr.apps.reconstruction.shapes import CATEGORIES
from tritonnmr.apps.reconstruction.training import train

from . import BACKEND

CLASS_IDS = {name: class_id for class_id, (name, _) in CATEGORIES.items()}


def prepare_data(directory, settings):
    """The categories' dataset in ``directory`` (made unless there): ``settings.recon_objects`` training
    objects and a quarter as many test objects per category. -> {name: class_id}."""
    ids = {name: CLASS_IDS[name] for name in settings.recon_categories}
    if not all(os.path.isfile(os.path.join(directory, f"{c}_test_voxels.npz")) for c in ids.values()):
        make_dataset(directory, settings.recon_objects, seed=0, class_ids=list(ids.values()), progress=False,
                     backend=BACKEND)
    return ids


def rounds(settings):
    """The step counts after which the models are evaluated: ``recon_rounds`` equal rounds of the budget."""
    n, total = settings.recon_rounds, settings.recon_steps
    return sorted({max(1, round(total * (k + 1) / n)) for k in range(n)})


def reconstruction(estimator, settings, data_dir, work_dir):
    """Train and evaluate one mesh model per category with ``estimator``'s training silhouettes.

    -> {'categories': {name: {'steps': [...], 'voxel_iou': [... per round], 'mean_shape_iou',
    'train_cpu_seconds'}}, 'steps', 'mean_voxel_iou' (per round, over the categories), 'cpu_seconds'
    (training and evaluation)}."""
    ids = prepare_data(data_dir, settings)
    start = time.process_time()
    categories, steps = {}, rounds(settings)
    for name, class_id in ids.items():
        train_set, test_set = Dataset(data_dir, "train", [class_id]), Dataset(data_dir, "test", [class_id])
        path = os.path.join(work_dir, estimator.label.replace(" ", "_").replace("σ=", "sigma"), f"{class_id}.pt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ious, mean_shape, history = [], None, None
        for k, done in enumerate(steps):
            config = replace(QUICK, backend=BACKEND, iterations=done, **estimator.keywords)
            model, history = train("mesh", train_set, path, config, resume=k > 0, progress=False,
                                   save_every=settings.recon_steps)
            scores, _ = evaluate({"mesh": model}, test_set, train_set, QUICK.eval_views, progress=False)
            ious.append(scores[name]["mesh_iou"])
            mean_shape = scores[name]["mean_shape_iou"]
        categories[name] = dict(steps=steps, voxel_iou=ious, mean_shape_iou=mean_shape,
                                train_cpu_seconds=history["cpu_seconds"], test_objects=len(test_set),
                                train_objects=len(train_set))
    mean = [float(np.mean([c["voxel_iou"][k] for c in categories.values()])) for k in range(len(steps))]
    return dict(categories=categories, steps=steps, mean_voxel_iou=mean, cpu_seconds=time.process_time() - start)
