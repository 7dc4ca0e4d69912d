"""Cameras worked out by hand: look, projection with distortion, and what fill_back shows behind."""
import math

import pytest
import torch

import tritonnmr as nr


def test_look_puts_a_point_along_the_direction_at_the_centre_at_its_distance():
    eye = torch.tensor([0.3, -0.2, 1.0])
    direction = torch.tensor([1.0, 2.0, -2.0])  # length 3
    point = eye + 2.0 * direction  # 6 units in front of the eye
    off = point + torch.tensor([0.0, 0.0, 1.0]).cross(direction, dim=0)  # off to one side
    v = torch.stack([point, off])[None]
    cam = nr.look(v, eye, direction)
    assert torch.allclose(cam[0, 0], torch.tensor([0.0, 0.0, 6.0]), atol=1e-5)
    assert abs(cam[0, 1, 2].item() - 6.0) < 1e-5 and cam[0, 1, :2].norm() > 0.5
    screen = nr.perspective(cam, 30)
    assert torch.allclose(screen[0, 0], torch.tensor([0.0, 0.0, 6.0]), atol=1e-5)
    # the same camera as look_at at eye + direction
    assert torch.allclose(nr.look_at(v, eye, eye + direction), cam, atol=1e-5)


def test_projection_with_distortion_by_hand():
    # f = 100, centre (64, 48), image 96 high and 128 wide, R = I, t = (0, 0, 1)
    K = torch.tensor([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])
    R = torch.eye(3)
    t = torch.tensor([0.0, 0.0, 1.0])
    k1, k2, p1, p2, k3 = 0.1, -0.05, 0.01, 0.02, 0.003
    point = torch.tensor([[[0.3, 0.1, 1.0]]])  # camera space (0.3, 0.1, 2): x' = 0.15, y' = 0.05
    out = nr.projection(point, K, R, t, torch.tensor([k1, k2, p1, p2, k3]), orig_size=(96, 128))
    x, y = 0.15, 0.05
    r2 = x * x + y * y  # 0.025
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u, v = 100 * xd + 64, 96 - (100 * yd + 48)
    expected = [2 * (u - 64) / 128, 2 * (v - 48) / 96, 2.0]
    assert out[0, 0].tolist() == pytest.approx(expected, abs=1e-5)
    # no distortion: the principal point maps to the image centre
    centre = nr.projection(torch.tensor([[[0.0, 0.0, 4.0]]]), K, R, t, None, orig_size=(96, 128))
    assert centre[0, 0].tolist() == pytest.approx([0.0, 0.0, 5.0], abs=1e-6)


def test_fill_back_shows_the_same_texture_point_from_behind():
    # a triangle in the plane z = 0; the cube is red only at cell (1, 0, 0): near vertex 0
    v = torch.tensor([[[-0.8, -0.6, 0.0], [0.8, -0.6, 0.0], [0.0, 0.8, 0.0]]])
    f = torch.tensor([[[0, 1, 2]]])
    tex = torch.zeros(1, 1, 2, 2, 2, 3)
    tex[0, 0, 1, 0, 0, 0] = 1.0
    r = nr.Renderer(image_size=32, anti_aliasing=False, camera_mode="look_at", perspective=False,
                    light_intensity_ambient=1.0, light_intensity_directional=0.0, backend="torch")

    def redness_near(eye, corner):
        r.eye = eye
        rgb, _, alpha = r(v, f, tex)
        screen = r.transform(v)[0, corner, :2]  # where the corner lands, NDC
        col = int((screen[0].item() + 1) / 2 * 32)
        row = int((1 - screen[1].item()) / 2 * 32)
        col, row = min(max(col, 0), 31), min(max(row, 0), 31)
        # a pixel a little inside the triangle from that corner
        centre = r.transform(v)[0, :, :2].mean(0)
        c2 = int((0.8 * screen[0] + 0.2 * centre[0] + 1) / 2 * 32)
        r2 = int((1 - (0.8 * screen[1] + 0.2 * centre[1])) / 2 * 32)
        assert alpha[0, r2, c2] == 1
        return rgb[0, 0, r2, c2].item()

    front = [0.0, 0.0, -3.0]   # looking along +z: counter-clockwise, the face itself
    behind = [0.0, 0.0, 3.0]   # looking along -z: clockwise, only fill_back's reversed face shows
    for eye in (front, behind):
        assert redness_near(eye, 0) > 0.5
        assert redness_near(eye, 1) < 0.3 and redness_near(eye, 2) < 0.3
    r.fill_back = False
    r.eye = behind
    assert r(v, f, tex)[2].sum() == 0  # without fill_back the back side is not drawn


def test_perspective_viewing_angle_scales_the_image():
    v = torch.tensor([[[1.0, 0.5, 4.0]]])
    for angle in (15.0, 30.0, 60.0):
        s = nr.perspective(v, angle)
        k = 1 / (4.0 * math.tan(math.radians(angle)))
        assert s[0, 0].tolist() == pytest.approx([1.0 * k, 0.5 * k, 4.0], rel=1e-6)
    for bad in (0, 180, float("nan"), -5):
        with pytest.raises(ValueError, match="viewing_angle"):
            nr.perspective(v, bad)
