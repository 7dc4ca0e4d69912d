"""The tritonnmr command line: each subcommand at small size, errors, and example 2's quality bar."""
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

import tritonnmr as nr
from tritonnmr.cli import main


def _metrics(out):
    with open(os.path.join(out, "metrics.json")) as fh:
        return json.load(fh)


def test_render_writes_png_and_gif(tmp_path):
    out = str(tmp_path / "r")
    assert main(["render", "--out", out, "--image-size", "32", "--frames", "3", "--backend", "torch"]) == 0
    png = iio.imread(os.path.join(out, "render.png"))
    gif = iio.imread(os.path.join(out, "turntable.gif"), index=None)
    assert png.shape == (32, 32, 3) and png.max() > 50  # the teapot is there
    assert gif.shape[0] == 3


def test_render_textured_obj(tmp_path):
    out = str(tmp_path / "r")
    mesh = nr.data_path("textured_display/model.obj")
    assert main(["render", mesh, "--out", out, "--image-size", "32", "--frames", "2", "--texture-size", "2"]) == 0
    png = iio.imread(os.path.join(out, "render.png"))
    assert png.std() > 5


@pytest.mark.parametrize("what", ["shape", "texture", "camera"])
def test_fit_writes_outputs_and_lowers_the_loss(tmp_path, what):
    out = str(tmp_path / what)
    code = main(["fit", what, "--out", out, "--image-size", "32", "--iterations", "12", "--frame-every", "4"])
    assert code == 0
    m = _metrics(out)
    for key in ("iterations", "loss_initial", "loss_final", "seconds"):
        assert key in m
    assert m["iterations"] == 12 or what == "camera"
    assert m["loss_final"] < m["loss_initial"]
    assert os.path.getsize(os.path.join(out, "optimization.gif")) > 0
    assert os.path.getsize(os.path.join(out, "result.gif")) > 0
    if what == "shape":
        v, f = nr.load_obj(os.path.join(out, "result.obj"), normalization=False)
        assert f.shape == (2464, 3)
    if what == "camera":
        assert len(m["eye"]) == 3 and "eye_error_relative" in m


def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys):
    assert main(["fit", "shape", "--target", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tritonnmr: error: image not found") and err.count("\n") == 1
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    assert main(["fit", "shape", "--target", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["render", str(tmp_path / "nope.obj"), "--out", str(tmp_path / "o")]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["render", "--out", str(blocker / "sub")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err


def test_target_of_another_size_is_resized_with_a_notice(tmp_path, capsys):
    target = tmp_path / "t.png"
    iio.imwrite(target, np.zeros((40, 40, 3), dtype=np.uint8))
    out = str(tmp_path / "o")
    assert main(["fit", "shape", "--target", str(target), "--out", out, "--image-size", "16",
                 "--iterations", "2"]) == 0
    assert "resized t.png from 40x40 to 16x16" in capsys.readouterr().err


@pytest.mark.slow
def test_example_2_reaches_the_quality_bar(tmp_path):
    """fit shape on example2_ref.png: IoU from about 0.38 to at least 0.9 (at 128 px to keep CI short)."""
    out = str(tmp_path / "shape")
    assert main(["fit", "shape", "--out", out, "--image-size", "128", "--iterations", "300"]) == 0
    m = _metrics(out)
    assert m["iou_initial"] < 0.45
    assert m["iou_final"] >= 0.9
