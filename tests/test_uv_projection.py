"""Generated texture coordinates: the cylindrical and spherical projections, the seam, the axis,
and the orientation of the image on the surface."""
import math

import pytest
import torch

import tritonnmr as nr
from tritonnmr.apps.uv_projection import projected_uvs, unwrap_seam


def _ring(angles_deg, heights, radius=1.0):
    """Vertices at the given azimuths (degrees, the azimuth of get_points_from_angles) and heights."""
    a = torch.tensor(angles_deg, dtype=torch.float64).deg2rad()
    return torch.stack([radius * torch.sin(a), torch.tensor(heights, dtype=torch.float64),
                        -radius * torch.cos(a)], 1).float()


def test_cylindrical_u_is_the_azimuth_and_v_the_height():
    # a box around the axis, so its bounding-box centre is the origin: corners at azimuths 45 + 90k
    v = _ring([45, 135, -135, -45, 45, 135, -135, -45], [-1, -1, -1, -1, 1, 1, 1, 1])
    faces = torch.tensor([[0, 1, 5], [2, 3, 6]])
    uvs = projected_uvs(v, faces)
    expected_u = [[0.625, 0.875, 0.875], [0.125, 0.375, 0.125]]  # 0.5 + azimuth / 360
    assert torch.allclose(uvs[..., 0], torch.tensor(expected_u), atol=1e-6)
    assert uvs[..., 1].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]


def test_spherical_v_is_the_latitude():
    v = torch.tensor([[0.0, 0.0, -1.0], [1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    uvs = projected_uvs(v, torch.tensor([[0, 1, 3], [0, 2, 3]]), "spherical")
    # vertex 1: latitude 45 degrees -> v = 0.5 + 0.25; vertex 2: -45 -> 0.25; on the equator: 0.5
    assert uvs[0, :, 1].tolist() == pytest.approx([0.5, 0.75, 0.5])
    assert uvs[1, :, 1].tolist() == pytest.approx([0.5, 0.25, 0.5])


def test_a_face_across_the_seam_spans_it_the_short_way():
    # azimuths 170 and -170 are 20 degrees apart across the back (u = 0.972 and 0.028); vertex 4 only
    # centres the bounding box on the axis
    v = _ring([170, -170, 175, 0, 180], [0, 0, 1, -1, 0])
    uvs = projected_uvs(v, torch.tensor([[0, 1, 2], [3, 2, 0]]))
    assert uvs[0, :, 0].tolist() == pytest.approx([0.5 + 170 / 360, 1.5 - 170 / 360, 0.5 + 175 / 360], abs=1e-6)
    # a face on one side of the seam keeps u in [0, 1]
    assert uvs[1, :, 0].tolist() == pytest.approx([0.5, 0.5 + 175 / 360, 0.5 + 170 / 360], abs=1e-6)


def test_unwrap_seam_moves_only_the_low_corners_and_fills_corners_on_the_axis():
    uvs = torch.tensor([[[0.9, 0.0], [0.05, 0.0], [0.95, 1.0]],
                        [[0.2, 0.0], [0.3, 0.0], [0.4, 1.0]],
                        [[0.95, 0.0], [0.5, 0.0], [0.15, 1.0]]])
    undefined = torch.tensor([[False, False, False], [False, False, False], [False, True, False]])
    out = unwrap_seam(uvs, undefined)
    assert out[0, :, 0].tolist() == pytest.approx([0.9, 1.05, 0.95])
    assert out[1, :, 0].tolist() == pytest.approx([0.2, 0.3, 0.4])  # no seam: unchanged
    # face 2: its known corners 0.95 and 0.15 cross the seam (0.15 -> 1.15); the axis corner takes their mean
    assert out[2, :, 0].tolist() == pytest.approx([0.95, 1.05, 1.15])
    assert torch.equal(out[..., 1], uvs[..., 1])


def test_a_vertex_on_the_axis_takes_its_face_s_angle():
    v = torch.tensor([[0.0, 1.0, 0.0], [math.sin(0.2), 0.0, -math.cos(0.2)], [math.sin(0.4), 0.0, -math.cos(0.4)],
                      [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    uvs = projected_uvs(v, torch.tensor([[0, 1, 2]]))
    u1, u2 = 0.5 + 0.2 / (2 * math.pi), 0.5 + 0.4 / (2 * math.pi)
    assert uvs[0, :, 0].tolist() == pytest.approx([(u1 + u2) / 2, u1, u2], abs=1e-6)


def test_the_image_reads_left_to_right_on_the_surface():
    """A horizontal ramp (red = u) painted on the teapot: from any azimuth, the side facing the camera
    gets redder to the right of the picture, so text on the image is not mirrored."""
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    uvs = projected_uvs(v, f)
    w = 64
    ramp = torch.zeros(1, w, 3)
    ramp[0, :, 0] = (torch.arange(w) + 0.5) / w
    uv = nr.UVMap(uvs, torch.zeros(f.shape[0], dtype=torch.int64), [ramp], "CLAMP_TO_EDGE")
    r = nr.Renderer(image_size=32, camera_mode="look_at", backend="torch", anti_aliasing=False,
                    light_intensity_ambient=1.0, light_intensity_directional=0.0)
    for azimuth in (0, 90, -90):
        r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 0, azimuth)
        rgb = r(v[None], f[None], uv)[0][0]
        red = rgb[0, 18, 11:21]  # the body's middle, away from spout and handle
        assert bool((red[1:] > red[:-1]).all()), (azimuth, red)
        assert float(red.mean()) == pytest.approx(0.5 + azimuth / 360, abs=0.05)


@pytest.mark.parametrize("vertices, faces, projection, message", [
    (torch.zeros(3, 2), torch.zeros(1, 3, dtype=torch.int64), "cylindrical", "vertices"),
    (torch.zeros(3, 3), torch.zeros(1, 3), "cylindrical", "faces"),
    (torch.zeros(3, 3), torch.tensor([[0, 1, 3]]), "cylindrical", "faces"),
    (torch.zeros(3, 3), torch.zeros(1, 3, dtype=torch.int64), "planar", "projection"),
    (torch.full((3, 3), float("nan")), torch.zeros(1, 3, dtype=torch.int64), "cylindrical", "vertices"),
])
def test_bad_input_names_the_argument(vertices, faces, projection, message):
    with pytest.raises(ValueError, match=message):
        projected_uvs(vertices, faces, projection)
