"""Checkpoints: a model, its optimizer, the step reached, the config and the loss history in one file."""
import os
from dataclasses import asdict

import torch

from . import models
from .config import Config

FORMAT = "tritonnmr-reconstruction-1"


def save_checkpoint(path, model, optimizer, iteration, config, history, class_ids, sampler=None):
    """Write ``path`` (through a temporary file, so a crash never leaves half a checkpoint). ``sampler``:
    the state of the generator that draws the batches (a ByteTensor), so a resumed run draws the batches
    an uninterrupted one would have."""
    tmp = path + ".tmp"
    state = {"format": FORMAT, "model": model.kind, "config": asdict(config), "state_dict": model.state_dict(),
             "optimizer": optimizer.state_dict(), "iteration": iteration, "history": history, "class_ids": class_ids}
    if sampler is not None:
        state["sampler"] = sampler
    torch.save(state, tmp)
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
