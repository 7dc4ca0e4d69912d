"""A VGG-16 feature extractor in plain PyTorch, with pretrained weights from a local file or a
seeded random fallback.

The layers are numbered as torchvision numbers them (``features.0`` is conv1_1, ``features.28``
conv5_3), so torchvision's ``vgg16`` state_dict loads as it is. Nothing is downloaded: weights come
from ``weights=PATH`` or, when present, torch's hub cache (``vgg16-*.pth``). Without either, the same
network gets seeded He-initialised random filters: their Gram matrices still describe colours and
textures at several scales (random convolutional features are known to synthesise textures), but the
features carry no notion of objects, so DeepDream amplifies patterns rather than eyes and dog faces.
"""
import glob
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F

from .. import checks

# (block, convolutions, channels)
_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics the pretrained weights expect
STD = (0.229, 0.224, 0.225)


def _layers():
    """[(name, module)] in torchvision's order: conv{b}_{i}, relu{b}_{i}, pool{b}."""
    layers, channels = [], 3
    for block, count, width in _BLOCKS:
        for i in range(1, count + 1):
            layers += [(f"conv{block}_{i}", nn.Conv2d(channels, width, 3, padding=1)), (f"relu{block}_{i}", nn.ReLU())]
            channels = width
        layers.append((f"pool{block}", nn.MaxPool2d(2, 2)))
    return layers


LAYER_NAMES = [name for name, _ in _layers()]


def hub_weights():
    """A VGG-16 file already in torch's hub cache, or None."""
    found = sorted(glob.glob(os.path.join(torch.hub.get_dir(), "checkpoints", "vgg16-*.pth")))
    return found[0] if found else None


class VGG16Features(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> {layer name: activation} for the requested layers.

    weights: a path to a torchvision VGG-16 state_dict, 'auto' (the hub cache if present, else
    random), or None (random). ``pretrained`` tells which one it got."""

    def __init__(self, weights="auto", seed=0, notice=None):
        super().__init__()
        self.features = nn.Sequential(*[m for _, m in _layers()])
        self.names = LAYER_NAMES
        notice = notice or (lambda m: print(m, file=sys.stderr))
        path = hub_weights() if weights == "auto" else weights
        if path:
            self.load(path)
            self.pretrained = True
        else:
            g = torch.Generator().manual_seed(seed)
            for m in self.features:
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * 9
                    m.weight.data = torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5
                    m.bias.data.zero_()
            self.pretrained = False
            notice("note: no VGG-16 weights (--weights PATH or torch's hub cache); using random "
                   "convolutional features, which still capture colour and texture")
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def load(self, path):
        """Load torchvision-layout weights (``features.N.weight`` / ``.bias``; others are ignored)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch.load raises many kinds on a file that is not a state_dict
            raise ValueError(f"{path}: not a PyTorch state_dict ({type(e).__name__})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a VGG-16 state_dict (a dict of tensors)")
        own = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"{path}: not a torchvision VGG-16 state_dict: missing {', '.join(missing[:3])}"
                             + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
        for k, v in own.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, VGG-16 needs {tuple(v.shape)}")
        self.features.load_state_dict({k[len("features."):]: state[k] for k in own})

    def forward(self, images, layers):
        """-> {name: activation} for ``layers`` (names from ``LAYER_NAMES``); stops after the last one."""
        unknown = [name for name in layers if name not in self.names]
        if unknown:
            raise ValueError(f"layers: unknown VGG-16 layer {unknown[0]!r}; choose from {', '.join(self.names)}")
        last = max(self.names.index(name) for name in layers)
        x = (images - self.mean) / self.std
        out = {}
        for name, module in zip(self.names[:last + 1], self.features):
            x = module(x)
            if name in layers:
                out[name] = x
        return out


def resize(images, size):
    """Bilinear resize of (B, 3, H, W) images to ``size``, an int S (S x S) or (height, width)
    (the extractor works at any size >= 32)."""
    return F.interpolate(images, size=checks.image_size(size, "size"), mode="bilinear", align_corners=False)
