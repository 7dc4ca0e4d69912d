"""A picture of a fitted camera (``tritonnmr fit camera``'s result.gif), rendered with the renderer.

Each frame has three panels of the fit's size: the scene seen from outside, turning about it (the
mesh in white, the camera's path as small dots from red at the start to yellow at the end, the
fitted camera as a green pyramid whose apex is its eye and which opens toward what it looks at, and,
when known, the true eye as a blue dot); the target; and the mesh as the fitted camera sees it,
painted the target's grey where that is known (example 4's) so that a right fit looks right.
"""
import math

import numpy as np
import torch

from .. import Renderer, get_points_from_angles
from .fitting import eye_angles
from .media import label, side_by_side, to_uint8

RED, YELLOW, GREEN, BLUE = (0.9, 0.15, 0.1), (1.0, 0.85, 0.1), (0.1, 0.8, 0.2), (0.2, 0.4, 1.0)
# The teapot's grey in example 4's target (example4_ref.png): neural_renderer's example 4 made it by
# rendering torch.tanh(textures) with textures of ones, under the default lights (ambient 0.5,
# directional 0.5 from above). Fitting target = a + b * (directional light) over its pixels gives
# a = b = 0.381 = 0.5 tanh(1), 0.3/255 RMS: a white teapot is 1 / tanh(1) = 1.31 times brighter.
EXAMPLE4_GREY = math.tanh(1.0)
# The scene panel's legend (three lines at the bottom) is left out of panels shorter than this: below
# it the legend and the title would overlap (and neither could be read)
LEGEND_MIN_HEIGHT = 48
_OCTAHEDRON_V = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32)
_OCTAHEDRON_F = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])


def _dot(centre, radius):
    """A small octahedron: vertices (6, 3), faces (8, 3)."""
    return _OCTAHEDRON_V * radius + np.asarray(centre, np.float32), _OCTAHEDRON_F


def _pyramid(eye, size):
    """A camera icon: apex at ``eye``, a square base ``size`` * 1.5 further toward the origin."""
    eye = np.asarray(eye, np.float64)
    forward = -eye / np.linalg.norm(eye)
    up = np.array([0.0, 1.0, 0.0])
    right = np.cross(up, forward)
    right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-6 else np.array([1.0, 0.0, 0.0])
    up = np.cross(forward, right)
    base = eye + 1.5 * size * forward
    corners = [base + size * (sx * right + sy * up) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    v = np.array([eye] + corners, np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 3, 2], [1, 4, 3]])
    return v, f


def _along(path, spacing):
    """Indices of points of ``path`` (N, 3) about ``spacing`` apart along it, the first included."""
    keep, travelled = [0], 0.0
    for k in range(1, len(path)):
        travelled += float(np.linalg.norm(path[k] - path[k - 1]))
        if travelled >= spacing:
            keep.append(k)
            travelled = 0.0
    return keep


def _scene(vertices, faces, path, true_eye, radius):
    """The mesh plus markers as one mesh with a colour per face: (V, 3), (F, 3), colours (F, 3).

    Dots mark the path about every 6% of ``radius`` along it, coloured by step (red at the start,
    yellow at the end); those further than ``radius`` from the origin are left out (off the picture)."""
    parts = [(vertices.detach().cpu().numpy().astype(np.float32), faces.cpu().numpy(), (1.0, 1.0, 1.0))]
    path = np.asarray(path, np.float64)
    for k in _along(path, 0.06 * radius):
        if np.linalg.norm(path[k]) < radius:
            t = k / max(1, len(path) - 1)
            parts.append((*_dot(path[k], 0.02 * radius), tuple((1 - t) * a + t * b for a, b in zip(RED, YELLOW))))
    if true_eye is not None:
        parts.append((*_dot(true_eye, 0.035 * radius), BLUE))
    parts.append((*_pyramid(path[-1], 0.06 * radius), GREEN))
    vs, fs, cs, offset = [], [], [], 0
    for v, f, colour in parts:
        vs.append(v)
        fs.append(f + offset)
        cs.append(np.tile(np.asarray(colour, np.float32), (len(f), 1)))
        offset += len(v)
    return (torch.from_numpy(np.concatenate(vs)), torch.from_numpy(np.concatenate(fs)),
            torch.from_numpy(np.concatenate(cs)))


@torch.no_grad()
def camera_fit_frames(vertices, faces, path, target, image_size=256, backend="auto", true_eye=None, frames=36,
                      elevation=25.0, grey=1.0):
    """uint8 frames (H, 3 W + gaps, 3) showing a camera fit (see the module's docstring).

    vertices (1, V, 3), faces (1, F, 3): the mesh; path: the eye [x, y, z] from the start to the
    fitted one (``FitResult.path``); target (3, H, W) in [0, 1]; image_size an int or (H, W);
    grey: the mesh's colour in the fitted view, under the renderer's default lights: the target's,
    where known (:data:`EXAMPLE4_GREY` for example 4's), so that where the fit is right both panels
    match, brightness included.
    The scene is seen from ``frames`` azimuths at ``elevation``, from far enough to hold the fitted
    and true eyes (parts of the path further out leave the picture)."""
    device = vertices.device
    eye = [float(c) for c in path[-1]]
    reach = max(math.dist(eye, (0, 0, 0)), math.dist(true_eye, (0, 0, 0)) if true_eye is not None else 0.0)
    radius = 1.1 * max(reach, 1.0)
    v, f, colours = _scene(vertices[0], faces[0], [list(map(float, p)) for p in path], true_eye, radius)
    v, f = v[None].to(device), f[None].to(device)
    textures = colours.view(1, -1, 1, 1, 1, 3).to(device)

    fitted = Renderer(image_size=image_size, camera_mode="look_at", backend=backend)
    fitted.eye = eye
    painted = torch.full((1, faces.shape[1], 1, 1, 1, 3), float(grey), device=device)
    view = to_uint8(fitted(vertices, faces, painted)[0][0])
    right = side_by_side(label(to_uint8(target[:3]), "target"), label(view, ("fitted camera's view", "fitted view",
                                                                             "fitted")))

    viewing_angle = 30.0
    outside = Renderer(image_size=image_size, camera_mode="look_at", viewing_angle=viewing_angle, backend=backend,
                       far=1000.0)
    distance = radius / math.sin(math.radians(viewing_angle))
    legend = [(("red to yellow: steps", "red-yellow: steps", "steps"), _rgb(YELLOW)),
              (("green: fitted camera", "green: fitted", "fitted"), _rgb(GREEN))]
    legend += [(("blue: true eye", "true eye"), _rgb(BLUE))] if true_eye is not None else []
    out = []
    for azimuth in np.linspace(0, 360, frames, endpoint=False):
        outside.eye = get_points_from_angles(distance, elevation, float(azimuth) + eye_angles(eye)[2] + 60.0)
        scene = to_uint8(outside(v, f, textures)[0][0])
        scene = label(scene, ("the camera's path", "camera's path", "path"))
        scene = label(scene, legend, bottom=True) if scene.shape[0] >= LEGEND_MIN_HEIGHT else scene
        out.append(side_by_side(scene, right))
    return out


def _rgb(colour):
    return tuple(int(255 * c) for c in colour)
