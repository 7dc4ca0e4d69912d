"""VGG-16 (Simonyan and Zisserman, 2015), the network of the paper's style transfer, in plain
PyTorch and numbered as torchvision numbers it (``features.0`` is conv1_1, ``features.28`` conv5_3;
``classifier.0/3/6`` the three linear layers), so torchvision's ``vgg16`` state_dict loads strictly.

No VGG-16 weights ship with any package we can install: users bring torchvision's file
(``vgg16-397923af.pth``). Layer names for :meth:`VGG16.extract`: conv{b}_{i}, relu{b}_{i}, pool{b}.
"""
import torch
from torch import nn

# (block, convolutions, channels)
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics the pretrained weights expect
STD = (0.229, 0.224, 0.225)
POOLED = 7  # torchvision pools the last block to 7 x 7 before the classifier
HIDDEN = 4096
CLASSES = 1000


def _layers():
    """[(name, module)] in torchvision's order."""
    layers, channels = [], 3
    for block, count, width in BLOCKS:
        for i in range(1, count + 1):
            layers += [(f"conv{block}_{i}", nn.Conv2d(channels, width, 3, padding=1)), (f"relu{block}_{i}", nn.ReLU())]
            channels = width
        layers.append((f"pool{block}", nn.MaxPool2d(2, 2)))
    return layers


LAYER_NAMES = [name for name, _ in _layers()]


def classifier():
    """torchvision's VGG-16 classifier (indices 0, 3, 6 hold the weights; dropout is idle in eval)."""
    width = BLOCKS[-1][-1] * POOLED * POOLED
    return nn.Sequential(nn.Linear(width, HIDDEN), nn.ReLU(), nn.Dropout(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Dropout(), nn.Linear(HIDDEN, CLASSES))


class VGG16(nn.Module):
    """VGG-16: images (B, 3, H, W) in [0, 1] -> features, or ImageNet logits (B, 1000) when it has
    a classifier (``with_classifier``; a torchvision file holds one)."""

    names = LAYER_NAMES

    def __init__(self, with_classifier=False):
        super().__init__()
        self.features = nn.Sequential(*[m for _, m in _layers()])
        self.classifier = classifier() if with_classifier else None
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def extract(self, images, layers):
        """-> {name: activation} for ``layers`` (names from ``LAYER_NAMES``); stops after the last one."""
        last = max(self.names.index(name) for name in layers)
        x = (images - self.mean) / self.std
        out = {}
        for name, module in zip(self.names[:last + 1], self.features):
            x = module(x)
            if name in layers:
                out[name] = x
        return out

    def logits(self, images):
        """ImageNet class scores (B, 1000), before the softmax; only with a classifier."""
        if self.classifier is None:
            raise ValueError("logits: this VGG-16 has no classifier (its weights file holds features.* only)")
        x = self.extract(images, ["pool5"])["pool5"]
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, POOLED), 1))


__all__ = ["BLOCKS", "LAYER_NAMES", "VGG16", "classifier"]
