"""Training, checkpoints, evaluation by voxel IoU, and the report (JSON, Markdown, bar chart)."""
import json
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data, losses, models, voxels

FORMAT = "tritonnmr-reconstruction-1"


@dataclass
class Config:
    """Training options; ``QUICK`` (CPU, minutes) and ``FULL`` (the paper's sizes) below."""
    iterations: int = 20000
    batch_size: int = 64
    lr: float = 1e-4
    width: int = 64                 # encoder channels: width, 2 width, 4 width
    dim: int = 512                  # image feature size
    lambda_smoothness: float = 1e-3
    seed: int = 0
    eval_views: list = field(default_factory=lambda: list(range(24)))
    backend: str = "auto"
    anti_aliasing: bool = True      # render training silhouettes at 2x and average (the paper's choice)

    def model_options(self):
        return {"width": self.width, "dim": self.dim}


QUICK = Config(iterations=400, batch_size=16, lr=1e-3, width=16, dim=128, eval_views=[0, 6, 12, 18])
FULL = Config()


def save_checkpoint(path, model, optimizer, iteration, config, history, class_ids):
    tmp = path + ".tmp"
    torch.save({"format": FORMAT, "model": model.kind, "config": asdict(config), "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(), "iteration": iteration, "history": history,
                "class_ids": class_ids}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path, kind=None, device="cpu"):
    """The checkpoint dict in ``path``, checked; ``kind`` ('mesh' or 'voxel') checks what it holds."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch.load raises many kinds on a file that is not a checkpoint
        raise ValueError(f"{path}: not a tritonnmr reconstruction checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tritonnmr reconstruction checkpoint (expected format {FORMAT})")
    if kind is not None and ckpt["model"] != kind:
        raise ValueError(f"{path} holds a {ckpt['model']} model, expected a {kind} model")
    return ckpt


def load_checkpoint(path, kind=None, device="cpu"):
    """-> (model, checkpoint dict). ``kind`` ('mesh' or 'voxel') checks what the file holds."""
    ckpt = read_checkpoint(path, kind, device)
    config = Config(**ckpt["config"])
    model = models.build(ckpt["model"], **config.model_options()).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return model, ckpt


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
    -> (model, history dict with 'loss' and 'iou_loss' lists and 'seconds')."""
    torch.manual_seed(config.seed)
    model = models.build(kind, **config.model_options()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    start, history = 0, {"loss": [], "iou_loss": [], "seconds": 0.0}
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
    t0, i = time.time(), start
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
                save_checkpoint(path, model, optimizer, i + 1, config, history, dataset.class_ids)
        i = config.iterations
    except KeyboardInterrupt:
        tqdm.write(f"interrupted at iteration {i}; saving {path}")
    finally:
        bar.close()
        history["seconds"] = history.get("seconds", 0.0) + time.time() - t0
        save_checkpoint(path, model, optimizer, i, config, history, dataset.class_ids)
    return model, history


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


def mean_shape(train_set, threshold=None):
    """The trivial baseline: the mean training occupancy, thresholded where training IoU is best."""
    mean = train_set.voxels.float().mean(0)
    candidates = [threshold] if threshold else np.round(np.arange(0.05, 0.95, 0.05), 2)
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


def report(categories, config, out_dir, device, commit, extra=None):
    """Write results.json, results.md and results.png (bar chart) to ``out_dir``; -> the JSON dict."""
    os.makedirs(out_dir, exist_ok=True)
    keys = [k for k in ("mesh_iou", "voxel_iou", "mean_shape_iou") if all(k in r for r in categories.values())]
    mean = {k: float(np.mean([r[k] for r in categories.values()])) for k in keys}
    result = {"config": config, "commit": commit, "device": device, "categories": categories, "mean": mean,
              **(extra or {})}
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    titles = {"mesh_iou": "mesh (ours)", "voxel_iou": "voxel (PTN-style)", "mean_shape_iou": "mean shape"}
    lines = ["| category | " + " | ".join(titles[k] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in list(categories.items()) + [("**mean**", mean)]:
        best = max(row[k] for k in keys)
        lines.append(f"| {name} | " + " | ".join((f"**{row[k]:.3f}**" if row[k] == best else f"{row[k]:.3f}")
                                                 for k in keys) + " |")
    if "mesh_iou" in keys and "voxel_iou" in keys:
        wins = sum(r["mesh_iou"] > r["voxel_iou"] for r in categories.values())
        lines.append(f"\nThe mesh model beats the voxel model in {wins} of {len(categories)} categories.")
    with open(os.path.join(out_dir, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    _chart(categories, keys, titles, os.path.join(out_dir, "results.png"))
    return result


def _chart(categories, keys, titles, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(categories)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 4))
    for n, k in enumerate(keys):
        ax.bar(x + (n - (len(keys) - 1) / 2) * 0.8 / len(keys), [categories[c][k] for c in names], 0.8 / len(keys),
               label=titles[k])
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("voxel IoU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
