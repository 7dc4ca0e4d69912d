"""Style transfer and DeepDream: losses by hand, short optimisations and the two commands (the feature
networks themselves are tests/test_features.py)."""
import argparse
import hashlib
import json
import os

import imageio.v3 as iio
import pytest
import torch
from hypothesis import given, settings, strategies as st

import tritonnmr as nr
from tritonnmr.apps.cli import main
from tritonnmr.apps.media import to_uint8
from tritonnmr.apps.editing import STYLES, FeatureNetwork, deep_dream, features, objectives, style_transfer


def test_gram_matrix_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 3.0]]).view(1, 2, 1, 2)  # two channels, two pixels
    assert objectives.gram(f)[0].tolist() == [[2.5, 3.0], [3.0, 4.5]]  # (F F^T) / 2


def test_style_loss_by_hand():
    f = {"a": torch.tensor([1.0, 1.0]).view(1, 1, 1, 2)}  # gram [[1]]
    target = {"a": torch.tensor([[[2.0]]])}
    assert objectives.style_loss(f, target).item() == pytest.approx((1 - 2) ** 2 / 4)
    assert objectives.style_loss(f, {"a": torch.tensor([[[1.0]]])}).item() == 0


def test_tv_and_content_by_hand():
    image = torch.tensor([[0.0, 1.0], [1.0, 1.0]]).view(1, 1, 2, 2)
    # vertical differences 1, 0 -> mean 0.5; horizontal 1, 0 -> mean 0.5
    assert objectives.tv_loss(image).item() == pytest.approx(1.0)
    v0 = torch.zeros(1, 2, 3)
    v1 = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]])
    assert objectives.content_loss(v1, v0).item() == pytest.approx(12.5)


def test_style_images_are_images():
    for make in STYLES.values():
        image = make(64)
        assert image.shape == (3, 64, 64) and image.min() >= 0 and image.max() <= 1 and image.std() > 0.1


@pytest.fixture(scope="module")
def small_mesh():
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
    return v[None] * 0.8, f[None]


@pytest.fixture(scope="module")
def extractor():
    return FeatureNetwork("vgg16", "random")


def test_style_transfer_lowers_the_style_loss(small_mesh, extractor):
    v, f = small_mesh
    result = style_transfer(v, f, STYLES["sunset"](64), extractor, layers=("relu1_2", "relu2_2"), iterations=12,
                            image_size=48, lr_textures=0.2, lr_vertices=0.01, progress=False)
    m = result.metrics
    assert m["loss_final"] < 0.8 * m["loss_initial"], m
    assert torch.isfinite(result.vertices).all() and result.vertices.shape == v.shape
    assert 0 < m["max_displacement"] < 0.3 and result.textures.min() >= 0 and result.textures.max() <= 1


def test_deep_dream_raises_the_activation(small_mesh, extractor):
    v, f = small_mesh
    result = deep_dream(v, f, extractor, layers=["relu3_3"], iterations=10, image_size=48, lr_textures=0.5,
                        progress=False)
    m = result.metrics
    assert m["layers"] == ["relu3_3"]
    assert -m["loss_final"] > 1.1 * -m["loss_initial"], m  # the loss is the negated activation
    assert torch.isfinite(result.vertices).all()


def test_cli_style_writes_a_textured_mesh_closer_to_the_style(tmp_path, capsys):
    out = str(tmp_path / "style")
    assert main(["style", "--mesh", nr.data_path("tetrahedron.obj"), "--iterations", "6", "--image-size", "32",
                 "--lr-textures", "0.3", "--out", out]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["style"] == "mosaic" and m["iterations"] == 6
    assert m["loss_final"] < m["loss_initial"]  # the style loss on the four fixed views fell
    said = capsys.readouterr()
    packaged = features.package_weights()
    if packaged:  # bash install.sh installs it: the pretrained network by default, its file recorded
        assert (m["network"], m["weights"], m["pretrained"]) == ("efficientnet-lite0", "pretrained", True)
        assert m["weights_file"] == os.path.abspath(packaged)
        with open(packaged, "rb") as fh:
            assert m["weights_sha256"] == hashlib.sha256(fh.read()).hexdigest()
        assert m["layers"] == ["stem", "stage2", "stage3", "stage4", "stage5"]
    else:  # the fallback of before
        assert (m["network"], m["pretrained"], m["weights_file"]) == ("vgg16", False, None)
    assert said.err.count("features: ") == 1 and f"features: {m['network']} with " in said.err
    assert f"style loss (Gram matrices of {', '.join(m['layers'])}; 4 fixed views) {m['loss_initial']:.4g} -> " \
        in said.out
    assert "preview.png" in said.out and "style_mosaic.png" in said.out
    # the style picture written is the generated mosaic, and preview.png is result.gif's first frame
    assert (iio.imread(os.path.join(out, "style_mosaic.png")) == to_uint8(STYLES["mosaic"]())).all()
    first = iio.imread(os.path.join(out, "result.gif"), index=0)[..., :3].astype(int)
    assert abs(first - iio.imread(os.path.join(out, "preview.png")).astype(int)).mean() < 3
    v, f, t = nr.load_obj(os.path.join(out, "result.obj"), load_texture=True, texture_size=4)
    assert f.shape == (4, 3) and t.shape == (4, 4, 4, 4, 3)
    assert t.std() > 0.01  # painted: the textures start a uniform grey


def test_cli_style_random_vgg_fallback(tmp_path, capsys):
    out = str(tmp_path / "style")
    assert main(["style", "--network", "vgg16", "--weights", "random", "--style", "stripes", "--mesh",
                 nr.data_path("tetrahedron.obj"), "--iterations", "3", "--image-size", "32", "--out", out]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert (m["network"], m["weights"], m["weights_sha256"]) == ("vgg16", "random", None)
    assert m["layers"] == ["rgb", "relu1_2", "relu2_2"] and m["style"] == "stripes"
    assert "features: vgg16 with seeded random filters" in capsys.readouterr().err


def test_cli_dream_raises_the_activation(tmp_path, capsys):
    out = str(tmp_path / "dream")
    assert main(["dream", "--weights", "random", "--layers", "stage2", "stage3", "--mesh",
                 nr.data_path("tetrahedron.obj"), "--iterations", "4", "--image-size", "32", "--lr-textures", "0.5",
                 "--out", out]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["layers"] == ["stage2", "stage3"] and m["network"] == "efficientnet-lite0"
    assert m["activation_final"] > m["activation_initial"] > 0
    assert (f"mean squared activation of stage2 + stage3 (4 fixed views) {m['activation_initial']:.4g} -> "
            f"{m['activation_final']:.4g} (+") in capsys.readouterr().out
    for name in ("before.gif", "result.gif", "optimization.gif", "preview.png", "result.obj"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name


def test_cli_bad_input(tmp_path, capsys, monkeypatch):
    def refused(argv, message):
        assert main(argv + ["--out", str(tmp_path / "o")]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("tritonnmr"), err  # one line (after the features' notice)
    refused(["style", "--style", str(tmp_path / "none.png")], "image not found")
    refused(["dream", "--layer", "fc7"],
            "error: argument --layers/--layer: 'fc7' is not a layer of efficientnet-lite0 or vgg16")
    refused(["dream", "--weights", "random", "--layers", "relu4_3"],
            "error: --layers: 'relu4_3' is not a layer of efficientnet-lite0; choose from stem, stage1")
    refused(["style", "--network", "vgg16", "--weights", "random", "--layers", "rgb", "stage2"],
            "--layers: 'stage2' is not a layer of vgg16")
    refused(["dream", "--weights", "random", "--layers", "rgb"], "'rgb' is not a layer")  # a style pseudo-layer
    refused(["dream", "--weights", str(tmp_path / "w.pth")], "weights file not found")
    refused(["style", "--network", "resnet"], "argument --network: invalid choice: 'resnet'")
    monkeypatch.setattr(features, "hub_weights", lambda: None)
    refused(["dream", "--network", "vgg16", "--weights", "pretrained"],
            "weights='pretrained': no pretrained vgg16 file on this machine")
    refused(["style", "--image-size", "16"], "must be at least 32 pixels each way")
    assert not (tmp_path / "o").exists()  # refused before the output folder is made


@settings(max_examples=50, deadline=None)
@given(text=st.one_of(st.text(max_size=12), st.sampled_from(["rgb", "stage3", "head", "relu4_3", "pool5", "Stage3"])))
def test_layer_option_accepts_layer_names_and_refuses_the_rest_in_words(text):
    from tritonnmr.apps.editing.commands import layer_name
    from tritonnmr.apps.editing.features import NETWORKS
    known = text == "rgb" or any(text in net.names for net in NETWORKS.values())
    try:
        assert layer_name(text) == text and known
    except argparse.ArgumentTypeError as e:
        assert not known and "is not a layer of efficientnet-lite0 or vgg16" in str(e)
