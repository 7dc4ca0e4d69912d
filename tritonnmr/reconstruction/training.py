"""Training a mesh generator or the voxel baseline from silhouettes, checkpointing as it goes."""
import os
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data, losses, models
from .checkpoints import read_checkpoint, save_checkpoint
from .config import QUICK


def silhouettes(model, vertices_or_occupancy, eyes, renderer):
    """Silhouettes (B, 64, 64) of the model's output seen from ``eyes`` (B, 3)."""
    if model.kind == "mesh":
        renderer.eye = eyes
        faces = model.faces[None].expand(len(eyes), -1, -1)
        return renderer(vertices_or_occupancy, faces, mode="silhouettes")
    return models.project_voxels(vertices_or_occupancy, eyes)


def training_loss(model, batch, renderer, pairs, config, device):
    """Silhouette IoU loss at both views of each object (+ smoothness for meshes) -> (loss, iou part)."""
    images_a, images_b, views_a, views_b = (x.to(device) for x in batch)
    out = model(images_a)
    eyes = data.viewpoints(torch.cat([views_a, views_b]), device)
    sil = silhouettes(model, torch.cat([out, out]), eyes, renderer)
    target = torch.cat([images_a[:, 3], images_b[:, 3]])
    iou = losses.iou_loss(sil, target) * 2
    loss = iou
    if model.kind == "mesh" and config.lambda_smoothness:
        loss = loss + config.lambda_smoothness * losses.smoothness_loss(out, pairs).mean()
    return loss, iou


def train(kind, dataset, path, config=QUICK, device="cpu", resume=True, progress=True, save_every=100):
    """Train a 'mesh' or 'voxel' model on ``dataset`` (a :class:`data.Dataset`), checkpointing to
    ``path`` (and resuming from it when it exists and ``resume``). Ctrl-C saves and stops.
    -> (model, history dict with 'loss' and 'iou_loss' lists (one value per step), 'seconds' (wall
    time) and 'cpu_seconds' (this process's CPU time: what the steps cost on a shared machine)).
    ``iou_loss`` is 2 (1 - mean soft IoU) over the two views: :func:`mean_iou` turns it into an IoU."""
    torch.manual_seed(config.seed)
    model = models.build(kind, **config.model_options()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    start, history = 0, {"loss": [], "iou_loss": [], "seconds": 0.0, "cpu_seconds": 0.0}
    if resume and os.path.isfile(path):
        ckpt = read_checkpoint(path, kind, device)
        if ckpt["config"]["width"] != config.width or ckpt["config"]["dim"] != config.dim:
            raise ValueError(f"{path} holds a model of another size (width {ckpt['config']['width']}, "
                             f"dim {ckpt['config']['dim']}); pass --restart to train a new one")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start, history = ckpt["iteration"], ckpt["history"]
    renderer = data.camera(backend=config.backend, anti_aliasing=config.anti_aliasing)
    pairs = losses.face_pairs(model.faces) if kind == "mesh" else None
    generator = torch.Generator().manual_seed(config.seed + start)
    model.train()
    bar = tqdm(range(start, config.iterations), desc=f"train {kind}", initial=start, total=config.iterations,
               disable=not progress)
    t0, c0, i = time.time(), time.process_time(), start
    wall0, cpu0 = history.get("seconds", 0.0), history.get("cpu_seconds", 0.0)

    def clock():  # the times so far, in every checkpoint: a resumed run counts the steps it kept
        history["seconds"] = wall0 + time.time() - t0
        history["cpu_seconds"] = cpu0 + time.process_time() - c0

    try:
        for i in bar:
            optimizer.zero_grad()
            loss, iou = training_loss(model, dataset.sample(config.batch_size, generator), renderer, pairs, config,
                                      device)
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
            history["iou_loss"].append(iou.item())
            bar.set_postfix(loss=f"{np.mean(history['loss'][-20:]):.4f}")
            if (i + 1) % save_every == 0:
                clock()
                save_checkpoint(path, model, optimizer, i + 1, config, history, dataset.class_ids)
        i = config.iterations
    except KeyboardInterrupt:
        tqdm.write(f"interrupted at iteration {i}; saving {path}")
    finally:
        bar.close()
        clock()
        save_checkpoint(path, model, optimizer, i, config, history, dataset.class_ids)
    return model, history


def mean_iou(iou_losses):
    """The mean soft silhouette IoU over training steps, from their ``iou_loss`` values."""
    return 1 - float(np.mean(iou_losses)) / 2
