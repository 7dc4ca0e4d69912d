"""Training a mesh generator or the voxel baseline from silhouettes, checkpointing as it goes; on one
process or, with a :class:`.distributed.Context` of several ranks, with DistributedDataParallel.

Several ranks take the steps one process takes on the whole batch: every rank draws the same global
batch from one seeded generator and computes its slice (rank r of N: objects r B/N ... (r + 1) B/N);
DDP averages the gradients, BatchNorm normalises by the statistics of the whole batch
(:mod:`.batchnorm`), and the logged losses are averaged over the ranks. Rank 0 alone reads and writes
the checkpoint (sending what it read to the others), so a run resumes at any number of ranks.
"""
import inspect
import os
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import batchnorm, data, distributed, losses, models
from .checkpoints import read_checkpoint, save_checkpoint
from .config import QUICK

# per step: the loss, its silhouette IoU part, the mean soft IoU, and the norm of the gradient (over all
# the parameters, as the optimizer gets it: averaged over the ranks)
HISTORY = ("loss", "iou_loss", "iou", "grad_norm")


def silhouettes(model, vertices_or_occupancy, eyes, renderer):
    """Silhouettes (B, 64, 64) of the model's output seen from ``eyes`` (B, 3)."""
    if model.kind == "mesh":
        renderer.eye = eyes
        faces = model.faces[None].expand(len(eyes), -1, -1)
        return renderer(vertices_or_occupancy, faces, mode="silhouettes")
    return models.project_voxels(vertices_or_occupancy, eyes)


def training_loss(model, batch, renderer, pairs, config, device, network=None):
    """The training loss of one batch (images_a, images_b, views_a, views_b) -> (loss, IoU part, mean soft IoU).

    ``config.cross_views`` (the paper's): the model predicts from both views and each prediction is
    rendered into both, the IoU part being the mean of the four IoU losses. Otherwise it predicts from
    view a and is rendered into both, the IoU part being the sum of the two. Mesh models add
    ``lambda_smoothness`` x the mean smoothness loss of the predicted meshes. ``network``: what to call
    for the forward pass (the model wrapped in DistributedDataParallel; default ``model``)."""
    network = network or model
    images_a, images_b, views_a, views_b = (x.to(device) for x in batch)
    if config.cross_views:
        out = network(torch.cat([images_a, images_b]))  # [from a, from b]
        shapes, views = torch.cat([out, out]), torch.cat([views_a, views_b, views_b, views_a])
        target = torch.cat([images_a[:, 3], images_b[:, 3], images_b[:, 3], images_a[:, 3]])
        terms = 1
    else:
        out = network(images_a)
        shapes, views = torch.cat([out, out]), torch.cat([views_a, views_b])
        target = torch.cat([images_a[:, 3], images_b[:, 3]])
        terms = 2
    mean_loss = losses.iou_loss(silhouettes(model, shapes, data.viewpoints(views, device), renderer), target)
    iou = mean_loss * terms
    loss = iou
    if model.kind == "mesh" and config.lambda_smoothness:
        loss = loss + config.lambda_smoothness * losses.smoothness_loss(out, pairs).mean()
    return loss, iou, 1 - mean_loss.detach()


def warm_up(model, batch_size, config, device):
    """One forward and backward pass of a training step of ``batch_size`` objects through ``model``
    (in eval mode, so no statistics move; gradients cleared after): compiles the renderer's kernels for
    the shapes training uses, without changing the model."""
    renderer = data.camera(backend=config.backend, anti_aliasing=config.anti_aliasing, **config.renderer_options())
    pairs = losses.face_pairs(model.faces) if model.kind == "mesh" else None
    index = torch.zeros(batch_size, dtype=torch.long)
    blank = torch.zeros(batch_size, 4, data.IMAGE_SIZE, data.IMAGE_SIZE)
    was_training = model.training
    model.eval()
    training_loss(model, (blank, blank, index, index + 1), renderer, pairs, config, device)[0].backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)


def _data_parallel(model, device):
    """``model`` in DistributedDataParallel. Its buffers (BatchNorm's running statistics, the same on every
    rank since :mod:`.batchnorm` uses the global batch's) are not re-sent before each forward pass;
    torch 2.13 names that option ``forward_sync_buffers``, older versions ``broadcast_buffers``."""
    options = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers" if "forward_sync_buffers" in options else "broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)


def soft_ious(history):
    """The mean soft silhouette IoU of every step in ``history`` (for checkpoints written before it was
    logged: from their two-view ``iou_loss``, 2 (1 - IoU))."""
    if len(history.get("iou", [])) == len(history["iou_loss"]):
        return list(history["iou"])
    return [1 - value / 2 for value in history["iou_loss"]]


def _resume_point(path, kind, config, resume):
    """What rank 0 resumes from: None (a new run) or the checkpoint dict, read on the CPU; or the
    error reading it raised, as ('error', message), for every rank to raise."""
    if not (resume and os.path.isfile(path)):
        return None
    try:
        ckpt = read_checkpoint(path, kind, "cpu")
    except (FileNotFoundError, ValueError) as e:
        return ("error", str(e))
    if ckpt["config"]["width"] != config.width or ckpt["config"]["dim"] != config.dim:
        return ("error", f"{path} holds a model of another size (width {ckpt['config']['width']}, "
                         f"dim {ckpt['config']['dim']}); pass --restart to train a new one")
    return ckpt


def train(kind, dataset, path, config=QUICK, device="cpu", resume=True, progress=True, save_every=100,
          context=distributed.ALONE):
    """Train a 'mesh' or 'voxel' model on ``dataset`` (a :class:`data.Dataset`), checkpointing to
    ``path`` every ``save_every`` steps (and resuming from it when it exists and ``resume``). Ctrl-C
    saves and stops.

    ``context``: the ranks training together (default: this process alone); ``config.batch_size`` is
    the global batch, split evenly over them. Only rank 0 writes ``path`` and shows progress. When
    another rank is lost, rank 0 saves what it has and every surviving rank raises
    :class:`.distributed.PeerLost`.

    -> (model, history dict with per-step lists 'loss', 'iou_loss' (the loss's IoU part), 'iou' (the
    mean soft silhouette IoU over the rendered views) and 'grad_norm' (of all parameters' gradient),
    'seconds' (wall time) and 'cpu_seconds' (this process's CPU time: what the steps cost on a shared
    machine), and 'interrupted' (Ctrl-C stopped the steps; the checkpoint holds those done))."""
    part, device = context.part(config.batch_size), torch.device(device)
    torch.manual_seed(config.seed)
    model = models.build(kind, **config.model_options()).to(device)
    if context.distributed:
        batchnorm.globalize(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    start, history = 0, {key: [] for key in HISTORY}
    history.update(seconds=0.0, cpu_seconds=0.0)
    ckpt = context.broadcast(_resume_point(path, kind, config, resume) if context.is_main else None,
                             f"receiving the checkpoint {path} from rank 0")
    generator = torch.Generator()
    if isinstance(ckpt, tuple):
        raise ValueError(ckpt[1])
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start, history = ckpt["iteration"], ckpt["history"]
        history["iou"] = soft_ious(history)
        history.setdefault("grad_norm", [float("nan")] * start)  # not logged before
    if ckpt is not None and "sampler" in ckpt:
        generator.set_state(ckpt["sampler"])  # the batches continue as if the run had not stopped
    else:
        generator.manual_seed(config.seed + start)
    renderer = data.camera(backend=config.backend, anti_aliasing=config.anti_aliasing, **config.renderer_options())
    pairs = losses.face_pairs(model.faces) if kind == "mesh" else None
    network = model
    if context.distributed:
        context.warm(lambda: warm_up(model, part.stop - part.start, config, device))
        network = context.collective("setting up DistributedDataParallel", lambda: _data_parallel(model, device))
    model.train()
    bar = tqdm(range(start, config.iterations), desc=f"train {kind}", initial=start, total=config.iterations,
               disable=not (progress and context.is_main))
    t0, c0 = time.time(), time.process_time()
    wall0, cpu0 = history.get("seconds", 0.0), history.get("cpu_seconds", 0.0)
    done, sampler, lost, i, interrupted = start, generator.get_state(), None, start, False

    def save():  # the steps done so far, their times and the batches still to come: a resume continues exactly
        history["seconds"] = wall0 + time.time() - t0
        history["cpu_seconds"] = cpu0 + time.process_time() - c0
        for key in HISTORY:
            del history[key][done:]
        if context.is_main:
            save_checkpoint(path, model, optimizer, done, config, history, dataset.class_ids, sampler)

    try:
        for i in bar:
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate(i)
            objects, views_a, views_b = dataset.draw(config.batch_size, generator)
            batch = dataset.batch(objects[part], views_a[part], views_b[part])
            optimizer.zero_grad()
            loss, iou_loss, iou = training_loss(model, batch, renderer, pairs, config, device, network)
            loss.backward()
            logged = torch.cat([context.average(torch.stack([loss.detach(), iou_loss.detach(), iou]),
                                                f"averaging step {i}'s loss"),
                                torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])[None]])
            optimizer.step()
            done, sampler = i + 1, generator.get_state()
            for key, value in zip(HISTORY, logged.tolist()):
                history[key].append(value)
            bar.set_postfix(loss=f"{np.mean(history['loss'][-20:]):.4f}")
            if done % save_every == 0:
                save()
    except KeyboardInterrupt:
        interrupted = True
        if context.is_main:
            tqdm.write(f"interrupted at iteration {done}; saving {path}")
    except torch.cuda.OutOfMemoryError as e:
        raise ValueError(f"out of memory at training step {i} ({distributed.reason(e)}); use a smaller --batch-size "
                         "or more ranks") from None
    except Exception as e:
        if not (context.distributed and distributed.is_peer_failure(e)):
            raise
        lost = e
    finally:
        bar.close()
        save()
    if lost is not None:
        kept = f"saved {path} at step {done}" if context.is_main else "rank 0 keeps the last checkpoint"
        why = lost.cause if isinstance(lost, distributed.PeerLost) else distributed.reason(lost)
        raise distributed.PeerLost(f"{context.label()}: lost contact with the other ranks at training step {i} "
                                   f"({why}); {kept}: run the same command again to resume, with any number of "
                                   "ranks", why) from None
    history["interrupted"] = interrupted  # after the last save: not a part of the checkpoint
    return model, history


def mean_iou(history, steps):
    """The mean soft silhouette IoU over the training steps ``steps`` (a slice) of ``history``."""
    return float(np.mean(soft_ious(history)[steps]))
