"""The pictures the command line makes say what they show: `fit camera`'s fitted view is lit and
coloured as its target, the panels' labels fit inside them at any size, and `render` shows a
three-quarter view, with the mesh's UV texture under `--texture uv`."""
import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import tritonnmr as nr
from tritonnmr.apps.camera_picture import EXAMPLE4_GREY, camera_fit_frames
from tritonnmr.apps.cli import RENDER_AZIMUTH, main
from tritonnmr.apps.media import label, load_image, to_uint8

DISPLAY = nr.data_path("textured_display/model.obj")
EXAMPLE4_EYE = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, -15)  # where example4_ref.png was seen from
CAMERA_LABELS = [("the camera's path", "camera's path", "path"), "target", ("fitted camera's view", "fitted view"),
                 [(("red to yellow: steps", "red-yellow: steps", "steps"), (255, 216, 25)),
                  (("green: fitted camera", "green: fitted", "fitted"), (25, 204, 51)),
                  (("blue: true eye", "true eye"), (51, 102, 255))]]


def _teapot():
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    return v[None], f[None]


def _panels(frame, size, gap=2):
    """The three panels (scene, target, fitted view) of a camera_fit_frames frame."""
    return [frame[:, k * (size + gap):k * (size + gap) + size].astype(np.float64) for k in range(3)]


# -- fit camera: the fitted view beside the target -------------------------------------------------------

def test_fitted_view_at_the_true_camera_is_as_bright_as_example4_target():
    size = 64
    v, f = _teapot()
    target = load_image(nr.data_path("example4_ref.png"), size)
    path = [[6.0, 10.0, -14.0], list(EXAMPLE4_EYE)]  # a fit that ended at the true eye
    frame = camera_fit_frames(v, f, path, target, size, "torch", true_eye=EXAMPLE4_EYE, frames=1,
                              grey=EXAMPLE4_GREY)[0]
    _, shown_target, view = _panels(frame, size)
    both = (shown_target.max(-1) > 0) & (view.max(-1) > 0)
    both[:size // 4] = False  # the labels
    assert both.sum() > 300
    # the teapot's pixels: the same brightness (example 4 painted it tanh(1) grey), pixel by pixel
    assert abs(shown_target[both].mean() - view[both].mean()) < 1.5
    assert np.abs(shown_target - view)[both].mean() < 3
    # a white teapot, as the picture showed it before, is about 45/255 brighter
    white = _panels(camera_fit_frames(v, f, path, target, size, "torch", frames=1)[0], size)[2]
    assert white[both].mean() - shown_target[both].mean() > 35


# -- labels ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 48, 64, 128, 256, (48, 96)])
def test_label_text_stays_inside_its_panel(size):
    h, w = (size, size) if isinstance(size, int) else size
    black = np.zeros((h, w, 3), np.uint8)
    for text in CAMERA_LABELS + ["a_very_long_single_word_label", "several words that must wrap here"]:
        for bottom in (False, True):
            ink = label(black, text, bottom=bottom).max(-1) > 0
            assert ink.sum() > 10, (size, text)  # something is written
            # and none of it reaches the panel's edges, where it would be cut off
            assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any()), (size, text, bottom)


def test_label_takes_the_longest_wording_that_fits():
    at = {s: np.zeros((s, s, 3), np.uint8) for s in (64, 256)}
    wordings = ("fitted camera's view", "fitted view")
    # at 256 px the whole label fits; at 64 px ("fitted camera's vi" was cut off) the short one is written whole
    assert np.array_equal(label(at[256], wordings), label(at[256], "fitted camera's view"))
    assert np.array_equal(label(at[64], wordings), label(at[64], "fitted view"))
    assert not np.array_equal(label(at[64], wordings), label(at[64], "fitted camera's view"))


def test_camera_picture_labels_fit_at_64_px():
    size = 64
    v, f = _teapot()
    target = load_image(nr.data_path("example4_ref.png"), size)
    frame = camera_fit_frames(v, f, [[6.0, 10.0, -14.0], list(EXAMPLE4_EYE)], target, size, "torch",
                              true_eye=EXAMPLE4_EYE, frames=1)[0]
    for panel in _panels(frame, size):
        written = (panel.max(-1) > 0)[:, -1]  # the right edge: the rendered teapot and the labels keep off it
        assert not written.any()


# -- render: the three-quarter view, and --texture uv ------------------------------------------------------

def _render(tmp_path, name, *extra, size=32, mesh=DISPLAY):
    out = str(tmp_path / name)
    assert main(["render", mesh, "--out", out, "--image-size", str(size), "--frames", "4", "--backend", "torch",
                 *extra]) == 0
    return iio.imread(os.path.join(out, "render.png")).astype(np.int16), _gif(os.path.join(out, "turntable.gif"))


def _gif(path):
    return iio.imread(path, index=None)[..., :3].astype(np.int16)


def _library(textures, azimuth=RENDER_AZIMUTH, size=32, mesh=DISPLAY):
    """The mesh rendered through the library API, as render's defaults see it from ``azimuth``."""
    v, f, t = nr.load_obj(mesh, load_texture=True, device="cpu", **textures)
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend="torch")
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, azimuth)
    with torch.no_grad():
        rgb = r(v[None], f[None], t if textures.get("texture_format") == "uv" else t[None])[0][0]
    return to_uint8(rgb).astype(np.int16)


def test_render_png_is_the_three_quarter_view_the_turntable_starts_at(tmp_path):
    png, gif = _render(tmp_path, "cubes", "--texture-size", "2")
    assert np.abs(png - _library(dict(texture_size=2))).max() <= 1  # azimuth 315 (-45), elevation 30
    assert np.abs(gif[0] - png).mean() < 2  # the turntable's first frame (palette rounding aside)
    # the display model from 0 degrees is edge-on: its screen shows from the three-quarter view
    edge_on = _library(dict(texture_size=2), azimuth=0.0)
    assert (png.max(-1) > 0).sum() > 1.4 * (edge_on.max(-1) > 0).sum()


def test_render_texture_uv_samples_the_texture_images(tmp_path, capsys):
    uv, _ = _render(tmp_path, "uv", "--texture", "uv", size=64)
    cubes, _ = _render(tmp_path, "cubes", size=64)
    assert capsys.readouterr().err == ""
    assert np.abs(uv - _library(dict(texture_format="uv"), size=64)).max() <= 1  # the library's UV rendering
    screen = np.abs(uv - cubes).max(-1) > 40  # the logo, sharp, where cubes of 4 blur it away
    assert screen.sum() > 40


def test_render_texture_uv_of_meshes_without_a_uv_texture(tmp_path, capsys):
    teapot = nr.data_path("teapot.obj")
    plain_uv, _ = _render(tmp_path, "plain_uv", "--texture", "uv", mesh=teapot)
    plain_cubes, _ = _render(tmp_path, "plain_cubes", mesh=teapot)
    assert np.array_equal(plain_uv, plain_cubes) and capsys.readouterr().err == ""  # white, as with cubes
    coloured = tmp_path / "coloured.obj"  # vertex colours only: drawn with cubes, and said so
    with open(nr.data_path("tetrahedron.obj")) as fh:
        lines = [line.rstrip("\n") + (" 1 0.1 0.1" if line.startswith("v ") else "") for line in fh]
    coloured.write_text("\n".join(lines) + "\n")
    uv, _ = _render(tmp_path, "coloured_uv", "--texture", "uv", mesh=str(coloured))
    err = capsys.readouterr().err
    cubes, _ = _render(tmp_path, "coloured_cubes", mesh=str(coloured))
    assert np.array_equal(uv, cubes) and (uv[..., 0] > uv[..., 1] + 40).sum() > 20
    assert err.count("\n") == 1 and "vertex colours only" in err and "--texture uv" in err
