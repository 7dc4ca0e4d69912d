"""Cameras: world -> camera -> screen. Vertices are (B, V, 3) float tensors throughout.

look_at and look give camera coordinates (x right, y up, z forward = depth); perspective divides
by depth; projection applies an OpenCV-style pinhole camera with distortion and maps pixels to NDC.
"""
import math

import torch
import torch.nn.functional as F

from . import checks

DEFAULT_VIEWING_ANGLE = 30.0
# distance of neural_renderer's default eye (0, 0, -(1 / tan(30 deg) + 1)) from the origin: at it, the
# normalised mesh ([-1, 1]^3) fills the default 30-degree view; the examples and turntables use it
DEFAULT_DISTANCE = 1.0 / math.tan(math.radians(DEFAULT_VIEWING_ANGLE)) + 1.0


def _as_tensor(value, like, name):
    """A float tensor on ``like``'s device from a list, array or tensor."""
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device) if not torch.is_tensor(value) \
        else value.to(device=like.device, dtype=like.dtype)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _batched_vector(value, like, name):
    """(3,) or (B, 3) -> (B or 1, 3)."""
    t = _as_tensor(value, like, name)
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (B, 3), got {tuple(t.shape)}")
    return t


def _rotate(vertices, eye, x_axis, y_axis, z_axis):
    r = torch.stack([x_axis, y_axis, z_axis], dim=1)  # (B, 3, 3), rows are the camera axes
    return torch.matmul(vertices - eye[:, None, :], r.transpose(1, 2))


def look_at_axes(eye, at, up):
    """The camera axes (each (B, 3)) of look_at cameras, from batched tensors eye, at, up (B or 1, 3):
    z = unit(at - eye), x = unit(up x z), y = z x x."""
    z_axis = F.normalize(at - eye, eps=1e-5)
    x_axis = F.normalize(torch.cross(up.expand_as(z_axis), z_axis, dim=-1), eps=1e-5)
    y_axis = F.normalize(torch.cross(z_axis, x_axis, dim=-1), eps=1e-5)
    return x_axis, y_axis, z_axis


def look_at(vertices, eye, at=(0, 0, 0), up=(0, 1, 0)):
    """Camera coordinates of ``vertices`` (B, V, 3) for a camera at ``eye`` looking at ``at``.

    eye, at, up: (3,) or (B, 3), lists or tensors. z = unit(at - eye), x = unit(up x z), y = z x x.
    Returns (B, V, 3) on the vertices' device.
    """
    vertices = checks.vertices(vertices)
    eye = _batched_vector(eye, vertices, "eye")
    at = _batched_vector(at, vertices, "at")
    up = _batched_vector(up, vertices, "up")
    x_axis, y_axis, z_axis = look_at_axes(eye, at, up)
    return _rotate(vertices, eye.expand_as(z_axis), x_axis, y_axis, z_axis)


def look(vertices, eye, direction=(0, 1, 0), up=(0, 1, 0)):
    """Camera coordinates for a camera at ``eye`` looking along ``direction`` ((3,) or (B, 3))."""
    vertices = checks.vertices(vertices)
    eye = _batched_vector(eye, vertices, "eye")
    direction = _batched_vector(direction, vertices, "direction")
    up = _batched_vector(up, vertices, "up")
    z_axis = F.normalize(direction, eps=1e-5).expand(max(eye.shape[0], direction.shape[0]), 3)
    x_axis = F.normalize(torch.cross(up.expand_as(z_axis), z_axis, dim=-1), eps=1e-5)
    y_axis = F.normalize(torch.cross(z_axis, x_axis, dim=-1), eps=1e-5)
    return _rotate(vertices, eye.expand_as(z_axis), x_axis, y_axis, z_axis)


def perspective(vertices, angle=30.0):
    """Perspective division: x and y divided by ``z * tan(angle)`` (angle in degrees); z kept."""
    vertices = checks.vertices(vertices)
    width = math.tan(math.radians(angle))
    z = vertices[..., 2]
    return torch.stack([vertices[..., 0] / (z * width), vertices[..., 1] / (z * width), z], dim=-1)


def projection(vertices, K, R, t, dist_coeffs, orig_size, eps=1e-9):
    """Pinhole projection with radial (k1, k2, k3) and tangential (p1, p2) distortion.

    K, R: (B, 3, 3); t: (B, 1, 3) or (B, 3); dist_coeffs: (B, 5) as (k1, k2, p1, p2, k3);
    orig_size: the width of the image K refers to, in pixels. Returns (B, V, 3): u, v in NDC,
    z the depth in camera space.
    """
    vertices = checks.vertices(vertices)
    for name, value in (("K", K), ("R", R), ("t", t)):
        if value is None:
            raise ValueError(f"{name} is required for camera_mode='projection'")
    K = _as_tensor(K, vertices, "K")
    R = _as_tensor(R, vertices, "R")
    t = _as_tensor(t, vertices, "t")
    K, R = (m[None] if m.dim() == 2 else m for m in (K, R))
    if K.shape[-2:] != (3, 3) or R.shape[-2:] != (3, 3):
        raise ValueError(f"K and R must have shape (B, 3, 3), got {tuple(K.shape)} and {tuple(R.shape)}")
    t = t.reshape(t.shape[0] if t.dim() > 1 else 1, 1, 3)
    dist = torch.zeros(1, 5, dtype=vertices.dtype, device=vertices.device) if dist_coeffs is None \
        else _as_tensor(dist_coeffs, vertices, "dist_coeffs").reshape(-1, 5)
    v = torch.matmul(vertices, R.transpose(1, 2)) + t
    x, y, z = v.unbind(-1)
    x_, y_ = x / (z + eps), y / (z + eps)
    k1, k2, p1, p2, k3 = (dist[:, i:i + 1] for i in range(5))
    r2 = x_ * x_ + y_ * y_
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    x__ = x_ * radial + 2 * p1 * x_ * y_ + p2 * (r2 + 2 * x_ * x_)
    y__ = y_ * radial + p1 * (r2 + 2 * y_ * y_) + 2 * p2 * x_ * y_
    uv1 = torch.matmul(torch.stack([x__, y__, torch.ones_like(z)], -1), K.transpose(1, 2))
    u, v = uv1[..., 0], orig_size - uv1[..., 1]
    u = 2 * (u - orig_size / 2.0) / orig_size
    v = 2 * (v - orig_size / 2.0) / orig_size
    return torch.stack([u, v, z], dim=-1)


def get_points_from_angles(distance, elevation, azimuth, degrees=True):
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
