"""Style transfer and DeepDream: losses by hand, VGG-16 weight loading, and short optimisations."""
import json
import os

import imageio.v3 as iio
import pytest
import torch

import tritonnmr as nr
from tritonnmr.cli import main
from tritonnmr.media import to_uint8
from tritonnmr.editing import STYLES, VGG16Features, deep_dream, objectives, style_transfer
from tritonnmr.editing.features import LAYER_NAMES


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


def test_weights_load_from_a_torchvision_style_file(tmp_path):
    random = VGG16Features(None, seed=1, notice=lambda m: None)
    state = {f"features.{k}": v * 0 + i for i, (k, v) in enumerate(random.features.state_dict().items())}
    state["classifier.0.weight"] = torch.zeros(4096, 25088 // 64)  # other keys are ignored
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    loaded = VGG16Features(str(path), notice=lambda m: pytest.fail("no notice expected"))
    assert loaded.pretrained and torch.equal(loaded.features[28].bias, state["features.28.bias"])
    assert LAYER_NAMES[28] == "conv5_3" and LAYER_NAMES[0] == "conv1_1"


def test_wrong_weight_files_are_refused(tmp_path):
    random = VGG16Features(None, notice=lambda m: None)
    state = {f"features.{k}": v for k, v in random.features.state_dict().items()}
    state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"features.0.weight has shape \(64, 3, 5, 5\), VGG-16 needs \(64, 3, 3, 3\)"):
        VGG16Features(str(tmp_path / "bad.pth"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="missing features.0.weight"):
        VGG16Features(str(tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(ValueError, match="junk.pth: not a PyTorch state_dict"):
        VGG16Features(str(tmp_path / "junk.pth"))
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        VGG16Features(str(tmp_path / "none.pth"))


def test_fallback_says_so_once():
    said = []
    VGG16Features(None, notice=said.append)
    assert len(said) == 1 and "random" in said[0]


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
    return VGG16Features(None, notice=lambda m: None)


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
    result = deep_dream(v, f, extractor, layer="relu3_3", iterations=10, image_size=48, lr_textures=0.5,
                        progress=False)
    m = result.metrics
    assert -m["loss_final"] > 1.1 * -m["loss_initial"], m  # the loss is the negated activation
    assert torch.isfinite(result.vertices).all()


def test_cli_style_writes_a_textured_mesh_closer_to_the_style(tmp_path, capsys):
    out = str(tmp_path / "style")
    assert main(["style", "--mesh", nr.data_path("tetrahedron.obj"), "--iterations", "6", "--image-size", "32",
                 "--lr-textures", "0.3", "--out", out]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["pretrained"] is False and m["style"] == "mosaic" and m["iterations"] == 6
    assert m["loss_final"] < m["loss_initial"]  # the style loss on the four fixed views fell
    said = capsys.readouterr().out
    assert f"style loss (Gram matrices of rgb, relu1_2, relu2_2; 4 fixed views) {m['loss_initial']:.4g} -> " in said
    assert "preview.png" in said and "style_mosaic.png" in said
    # the style picture written is the generated mosaic, and preview.png is result.gif's first frame
    assert (iio.imread(os.path.join(out, "style_mosaic.png")) == to_uint8(STYLES["mosaic"]())).all()
    first = iio.imread(os.path.join(out, "result.gif"), index=0)[..., :3].astype(int)
    assert abs(first - iio.imread(os.path.join(out, "preview.png")).astype(int)).mean() < 3
    v, f, t = nr.load_obj(os.path.join(out, "result.obj"), load_texture=True, texture_size=4)
    assert f.shape == (4, 3) and t.shape == (4, 4, 4, 4, 3)
    assert t.std() > 0.01  # painted: the textures start a uniform grey


def test_cli_dream_raises_the_activation(tmp_path, capsys):
    out = str(tmp_path / "dream")
    assert main(["dream", "--layer", "relu2_2", "--mesh", nr.data_path("tetrahedron.obj"), "--iterations", "4",
                 "--image-size", "32", "--lr-textures", "0.5", "--out", out]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["layer"] == "relu2_2" and m["activation_final"] > m["activation_initial"] > 0
    assert (f"mean squared activation of relu2_2 (4 fixed views) {m['activation_initial']:.4g} -> "
            f"{m['activation_final']:.4g} (+") in capsys.readouterr().out
    for name in ("before.gif", "result.gif", "optimization.gif", "preview.png", "result.obj"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name


def test_cli_bad_input(tmp_path, capsys):
    assert main(["style", "--style", str(tmp_path / "none.png"), "--out", str(tmp_path / "o")]) == 2
    assert "image not found" in capsys.readouterr().err
    assert main(["dream", "--layer", "fc7", "--out", str(tmp_path / "o")]) == 2
    assert "argument --layer: not a VGG-16 layer: 'fc7'" in capsys.readouterr().err
    assert main(["dream", "--weights", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o")]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before the output folder is made
