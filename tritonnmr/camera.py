"""Cameras: world -> camera -> screen. Points are (B, N, 3) float tensors throughout.

look_at and look give camera coordinates (x right, y up, z forward = depth); perspective divides by
depth; projection applies an OpenCV-style pinhole camera with distortion and maps pixels to NDC.
Screen space: x in [-1, 1] spans the image's width, y in [-1, 1] its height, z is the depth.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F

from . import checks, defaults

DEFAULT_VIEWING_ANGLE = defaults.VIEWING_ANGLE
# distance of neural_renderer's default eye (0, 0, -(1 / tan(30 deg) + 1)) from the origin: at it, the
# normalised mesh ([-1, 1]^3) fills the default 30-degree view; the examples and turntables use it
DEFAULT_DISTANCE = 1.0 / math.tan(math.radians(DEFAULT_VIEWING_ANGLE)) + 1.0
# when the view direction is parallel to ``up`` (a camera straight above or below the origin), the up
# vector falls back to +z looking down and -z looking up (for the default up = +y): the limits of the
# azimuth-0 views as the elevation approaches +90 and -90 degrees
FALLBACK_UP = (0.0, 0.0, 1.0)
UP = (0.0, 1.0, 0.0)  # look_at's and look's up vector


def apply_matrix(points: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """m p for points (B, N, 3) and m (B|1, 3, 3), as three products and a sum per row (not a matrix
    product: a 3 x 3 one per point is too small for it, and MKL runs it on its own threads, which wait
    for a busy core on a shared machine)."""
    return (points[..., None, :] * m[:, None, :, :]).sum(-1)


def _rotate(vertices, eye, x_axis, y_axis, z_axis):
    r = torch.stack([x_axis, y_axis, z_axis], dim=1)  # (B, 3, 3), rows are the camera axes
    return apply_matrix(vertices - eye[:, None, :], r)


def look_at_axes(eye: torch.Tensor, at: torch.Tensor, up: torch.Tensor):
    """The camera axes (each (B, 3)) of look_at cameras, from batched tensors eye, at, up (B or 1, 3):
    z = unit(at - eye), x = unit(up x z), y = z x x. Where ``up`` is parallel to z, a fallback up
    vector is used: FALLBACK_UP made orthogonal to up (another axis if it is parallel too), pointing
    away from the view direction. ``eye == at`` has no direction and raises ValueError."""
    forward = at - eye
    length = forward.norm(dim=-1)
    checks.fail_if((length <= 1e-7 * (1 + eye.norm(dim=-1))).any(),
                   "eye and at must differ (look: camera_direction must be non-zero): a camera needs a direction")
    z_axis = forward / length[:, None]
    up = up.expand_as(z_axis)
    side = torch.cross(up, z_axis, dim=-1)
    parallel = side.norm(dim=-1, keepdim=True) <= 1e-6 * up.norm(dim=-1, keepdim=True)
    x_axis = F.normalize(torch.where(parallel, torch.cross(_fallback_up(up, z_axis), z_axis, dim=-1), side),
                         dim=-1, eps=1e-12)
    y_axis = torch.cross(z_axis, x_axis, dim=-1)
    return x_axis, y_axis, z_axis


def _fallback_up(up, z_axis):
    """(B, 3) up vectors orthogonal to ``up``: FALLBACK_UP (or +y if up is along it) without its
    component along up, signed to point against the view direction's component along up."""
    unit = F.normalize(up, dim=-1, eps=1e-12)
    base = checks.on_device(FALLBACK_UP, unit).expand_as(unit)
    base = torch.where((unit * base).sum(-1, keepdim=True).abs() > 0.99, checks.on_device(UP, unit), base)
    ortho = F.normalize(base - (base * unit).sum(-1, keepdim=True) * unit, dim=-1, eps=1e-12)
    looking_up = (z_axis * unit).sum(-1, keepdim=True) > 0
    return torch.where(looking_up, -ortho, ortho)

def look_at(vertices: torch.Tensor, eye, at=(0, 0, 0), up=UP) -> torch.Tensor:
    """Camera coordinates of ``vertices`` (B, V, 3) for a camera at ``eye`` looking at ``at``.

    eye, at, up: (3,) or (B, 3), lists or tensors. z = unit(at - eye), x = unit(up x z), y = z x x.
    Returns (B, V, 3) on the vertices' device.
    """
    vertices = checks.vertices(vertices)
    return look_at_camera(vertices, *_camera_vectors(vertices, eye=eye, at=at, up=up))


def _camera_vectors(vertices, **vectors):
    return [checks.vector3(name, value, vertices, vertices.shape[0]) for name, value in vectors.items()]


def look_at_camera(vertices: torch.Tensor, eye: torch.Tensor, at: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """:func:`look_at` for checked inputs: vertices (B, V, 3), eye, at and up (B or 1, 3) tensors."""
    x_axis, y_axis, z_axis = look_at_axes(eye, at, up)
    return _rotate(vertices, eye.expand_as(z_axis), x_axis, y_axis, z_axis)


def look(vertices: torch.Tensor, eye, direction=UP, up=UP) -> torch.Tensor:
    """Camera coordinates for a camera at ``eye`` looking along ``direction`` ((3,) or (B, 3)):
    the look_at camera whose ``at`` is ``eye + direction``."""
    vertices = checks.vertices(vertices)
    eye, direction, up = _camera_vectors(vertices, eye=eye, direction=direction, up=up)
    return look_at_camera(vertices, eye, eye + direction, up)


def perspective(vertices: torch.Tensor, angle: float = DEFAULT_VIEWING_ANGLE) -> torch.Tensor:
    """Perspective division: x and y divided by ``z * tan(angle)`` (angle in degrees, half the field
    of view, in (0, 90)); z kept."""
    vertices = checks.vertices(vertices)
    return divide(vertices, viewing_angle(angle))


def viewing_angle(angle: float) -> float:
    """The half-angle of a perspective view, in degrees: a finite number in (0, 90)."""
    angle = checks.number("viewing_angle", angle, low=0, allow_low=False)
    if angle >= 90:
        raise ValueError(f"viewing_angle must be below 90 degrees (it is half the field of view), got {angle}")
    return angle


def divide(points: torch.Tensor, angle: float) -> torch.Tensor:
    """:func:`perspective` without the checks (points (B, N, 3), ``angle`` from :func:`viewing_angle`)."""
    width = math.tan(math.radians(angle))
    z = points[..., 2]
    return torch.stack([points[..., 0] / (z * width), points[..., 1] / (z * width), z], dim=-1)


def fit_aspect(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Screen points whose NDC spans a square view -> NDC of an (height, width) image with square
    pixels: the square view spans the shorter side, the longer side sees more."""
    short = min(height, width)
    if height == width:
        return points
    scale = points.new_tensor([short / width, short / height, 1.0])
    return points * scale


def orig_size_pair(orig_size, name: str = "orig_size") -> Tuple[float, float]:
    """orig_size as (height, width): an int (square) or a pair of positive numbers."""
    if isinstance(orig_size, (tuple, list)) and len(orig_size) == 2:
        return tuple(checks.number(name, v, low=0, allow_low=False) for v in orig_size)
    s = checks.number(name, orig_size, low=0, allow_low=False)
    return s, s


def projection(vertices: torch.Tensor, K, R, t, dist_coeffs=None, orig_size=defaults.ORIG_SIZE,
               eps: float = 1e-9) -> torch.Tensor:
    """Pinhole projection with radial (k1, k2, k3) and tangential (p1, p2) distortion.

    K, R: (B, 3, 3) or (3, 3); t: (B, 1, 3), (B, 3) or (3,); dist_coeffs: (B, 5) or (5,) as
    (k1, k2, p1, p2, k3); orig_size: the size in pixels of the image K refers to, an int or
    (height, width). Returns (B, V, 3): u, v in NDC, z the depth in camera space.
    """
    vertices = checks.vertices(vertices)
    K, R, t, dist = camera_matrices(vertices, K, R, t, dist_coeffs)
    return pinhole(to_camera(vertices, R, t), K, dist, orig_size_pair(orig_size), eps)


def camera_matrices(vertices: torch.Tensor, K, R, t, dist_coeffs):
    """Validated K (B|1, 3, 3), R (B|1, 3, 3), t (B|1, 1, 3), dist (B|1, 5) on the vertices' device."""
    B = vertices.shape[0]

    def matrix(name, value, shape):
        if value is None:
            raise ValueError(f"{name} is required for camera_mode='projection'")
        try:
            m = value.to(vertices) if torch.is_tensor(value) else torch.as_tensor(value, dtype=vertices.dtype,
                                                                                  device=vertices.device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a tensor or array of numbers, got {type(value).__name__}") from None
        if shape == (1, 3) and m.dim() == 1 and m.numel() == 3:  # t as (3,)
            m = m.reshape(1, 1, 3)
        if m.dim() == len(shape):
            m = m[None]
        if shape == (1, 3) and m.dim() == 2 and m.shape[-1] == 3:  # t as (1, 3) or (B, 3)
            m = m[:, None]
        if m.dim() != len(shape) + 1 or tuple(m.shape[1:]) != shape:
            raise ValueError(f"{name} must have shape {shape[-1:] if shape == (1, 3) else shape} or "
                             f"(B, {', '.join(map(str, shape))}), got {tuple(value.shape) if torch.is_tensor(value) else tuple(m.shape)}")
        if m.shape[0] not in (1, B):
            raise ValueError(f"{name} has batch size {m.shape[0]} but the vertices have {B}")
        return checks.finite(name, m)

    K = matrix("K", K, (3, 3))
    R = matrix("R", R, (3, 3))
    t = matrix("t", t, (1, 3))
    dist = torch.zeros(1, 5, dtype=vertices.dtype, device=vertices.device) if dist_coeffs is None \
        else matrix("dist_coeffs", dist_coeffs, (5,))
    return K, R, t, dist


def to_camera(points: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """R p + t for points (B, N, 3), R (B|1, 3, 3), t (B|1, 1, 3)."""
    return apply_matrix(points, R) + t


def pinhole(points: torch.Tensor, K: torch.Tensor, dist: torch.Tensor, orig_size, eps: float = 1e-9) -> torch.Tensor:
    """Camera-space points (B, N, 3) -> NDC (u, v) and depth z: divide by z, distort, apply K, then
    ``v = height - v`` and both mapped from [0, size] to [-1, 1]. orig_size is (height, width)."""
    height, width = orig_size
    x, y, z = points.unbind(-1)
    safe = torch.where(z.abs() < eps, torch.full_like(z, eps), z)  # z = 0 has no image; keep it finite
    x_, y_ = x / safe, y / safe
    k1, k2, p1, p2, k3 = (dist[:, i:i + 1] for i in range(5))
    # far outside any picture the polynomial would overflow (0 * inf = NaN even with zero coefficients)
    r2 = (x_ * x_ + y_ * y_).clamp(max=1e6)
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    x__ = x_ * radial + 2 * p1 * x_ * y_ + p2 * (r2 + 2 * x_ * x_)
    y__ = y_ * radial + p1 * (r2 + 2 * y_ * y_) + 2 * p2 * x_ * y_
    uv1 = apply_matrix(torch.stack([x__, y__, torch.ones_like(z)], -1), K)  # K (x, y, 1)
    u, v = uv1[..., 0], height - uv1[..., 1]
    u = 2 * (u - width / 2.0) / width
    v = 2 * (v - height / 2.0) / height
    return torch.stack([u, v, z], dim=-1)


def get_points_from_angles(distance, elevation, azimuth, degrees: bool = True):
    """Eye position ``(d cos e sin a, d sin e, -d cos e cos a)`` for a camera orbiting the origin.

    Scalars give a tuple of three floats (usable as ``Renderer.eye``); tensors give (..., 3).
    """
    if any(torch.is_tensor(x) for x in (distance, elevation, azimuth)):
        ref = next(x for x in (distance, elevation, azimuth) if torch.is_tensor(x))
        distance, elevation, azimuth = (torch.as_tensor(x, dtype=torch.float32, device=ref.device)
                                        for x in (distance, elevation, azimuth))
        if degrees:
            elevation, azimuth = torch.deg2rad(elevation), torch.deg2rad(azimuth)
        return torch.stack(torch.broadcast_tensors(
            distance * torch.cos(elevation) * torch.sin(azimuth),
            distance * torch.sin(elevation),
            -distance * torch.cos(elevation) * torch.cos(azimuth)), dim=-1)
    if degrees:
        elevation, azimuth = math.radians(elevation), math.radians(azimuth)
    return (distance * math.cos(elevation) * math.sin(azimuth),
            distance * math.sin(elevation),
            -distance * math.cos(elevation) * math.cos(azimuth))


# ----------------------------------------------------------------------------------------------
# Cameras as objects: one per mode, so the renderer calls them without switching on the mode
# ----------------------------------------------------------------------------------------------
MODES = ("look_at", "look", "projection", "none")


class Camera:
    """The camera of one render: ``to_view`` takes world points (B, N, 3) to camera space (x right, y up,
    z depth), ``project`` takes camera-space points to the screen (x, y in NDC, z depth) of a (height,
    width) image; ``clips``: whether faces are clipped at the near plane first (perspective views).
    This base class is ``camera_mode="none"``: vertices already in screen space."""

    clips = False

    def to_view(self, points: torch.Tensor) -> torch.Tensor:
        return points

    def project(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return points


class LookAt(Camera):
    """``look_at`` (``at`` the target) and ``look`` (``at = eye + direction``): eye, at, up (B or 1, 3)
    tensors; ``angle`` the perspective half-angle in degrees, or None for an orthographic view. The
    square view spans the shorter side of a non-square image (square pixels)."""

    def __init__(self, eye: torch.Tensor, at: torch.Tensor, up: torch.Tensor, angle: float = None):
        self.eye, self.at, self.up, self.angle = eye, at, up, angle
        self.clips = angle is not None

    def to_view(self, points):
        return look_at_camera(points, self.eye, self.at, self.up)

    def project(self, points, height, width):
        if self.angle is not None:
            points = divide(points, self.angle)
        return fit_aspect(points, height, width)


class Pinhole(Camera):
    """``projection``: R p + t, then the pinhole with distortion (K, dist) for an image of
    ``orig_size`` (height, width) pixels; always clips (a perspective view)."""

    clips = True

    def __init__(self, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, dist: torch.Tensor, orig_size):
        self.K, self.R, self.t, self.dist, self.orig_size = K, R, t, dist, orig_size

    def to_view(self, points):
        return to_camera(points, self.R, self.t)

    def project(self, points, height, width):
        return pinhole(points, self.K, self.dist, self.orig_size)


def make(mode: str, vertices: torch.Tensor, *, eye=None, direction=None, perspective=True,
         angle=DEFAULT_VIEWING_ANGLE, K=None, R=None, t=None, dist_coeffs=None, orig_size=defaults.ORIG_SIZE) -> Camera:
    """The checked :class:`Camera` of ``mode`` (one of MODES) for ``vertices`` (B, V, 3): the one place
    that reads a camera mode. eye / direction: (3,) or (B, 3); K, R, t, dist_coeffs as for
    :func:`projection`."""
    checks.choice("camera_mode", mode, MODES)
    batch = vertices.shape[0]
    if mode in ("look_at", "look"):
        eye = checks.vector3("eye", eye, vertices, batch)
        at = torch.zeros_like(eye) if mode == "look_at" else \
            eye + checks.vector3("camera_direction", direction, vertices, batch)
        return LookAt(eye, at, checks.on_device((UP,), eye), viewing_angle(angle) if perspective else None)
    if mode == "projection":
        if K is None or R is None or t is None:
            raise ValueError("camera_mode='projection' needs K, R and t (pass them to the Renderer or to render), "
                             "or use camera_mode='look_at'")
        return Pinhole(*camera_matrices(vertices, K, R, t, dist_coeffs), orig_size_pair(orig_size))
    return Camera()
