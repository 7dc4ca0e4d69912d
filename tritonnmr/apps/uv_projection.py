"""Texture coordinates for a mesh that has none: a cylindrical or spherical projection.

Both wrap one image once around the vertical (y) axis through the centre of the mesh's bounding
box. The angle around the axis is the azimuth of :func:`tritonnmr.get_points_from_angles`,
``theta = atan2(x, -z)``, and ``u = 0.5 + theta / 2 pi``: the side a camera at azimuth 0 sees is the
middle of the image, and u grows to the right on the screen of a camera looking at that side from
outside, so the image is not mirrored on the surface. The seam (u = 0 = 1) is at the back
(azimuth 180 degrees).

- ``cylindrical``: v = height, (y - y_min) / (y_max - y_min). A horizontal slice of the mesh is one
  row of the image, so what an orthographic camera at elevation 0 sees at some height is one row:
  the natural map for turntable views. Horizontal faces (a lid's top) get a single row.
- ``spherical``: v = 0.5 + latitude / pi, the latitude of the vertex seen from the centre. Tops and
  bottoms get their own rows near v = 1 and v = 0, at the cost of squeezing the sides.

A face whose corners straddle the seam would get one corner near u = 1 and another near u = 0 and
so be painted with the whole width of the image backwards; :func:`unwrap_seam` moves such corners to
u + 1, so the face spans the seam the short way, and the sampler's REPEAT wrap reads u > 1 from the
image's left edge. A vertex on the axis has no angle; it takes the mean angle of its face's other
corners.
"""
import math

import torch

PROJECTIONS = ("cylindrical", "spherical")


def projected_uvs(vertices, faces, projection="cylindrical"):
    """vertices (V, 3) float, faces (F, 3) int -> uvs (F, 3, 2) float32, per face corner, for a
    :class:`tritonnmr.UVMap` with wrap 'REPEAT' (u may exceed 1 at the seam, see :func:`unwrap_seam`).

    ``projection``: 'cylindrical' or 'spherical' (see the module's docstring)."""
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}")
    if not torch.is_tensor(vertices) or not vertices.is_floating_point() or vertices.dim() != 2 \
            or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be a float tensor of shape (V, 3), got "
                         f"{tuple(vertices.shape) if torch.is_tensor(vertices) else type(vertices).__name__}")
    if not torch.is_tensor(faces) or faces.is_floating_point() or faces.dim() != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be an integer tensor of shape (F, 3), got "
                         f"{tuple(faces.shape) if torch.is_tensor(faces) else type(faces).__name__}")
    if vertices.shape[0] == 0 or not bool(torch.isfinite(vertices).all()):
        raise ValueError("vertices must be finite and not empty")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[0]):
        raise ValueError(f"faces must index the {vertices.shape[0]} vertices")
    v = vertices.detach().double()
    lo, hi = v.min(0).values, v.max(0).values
    d = v - (lo + hi) / 2
    radius = torch.hypot(d[:, 0], d[:, 2])
    on_axis = radius <= 1e-9 * max(float((hi - lo).max()), 1e-30)
    u = 0.5 + torch.atan2(d[:, 0], -d[:, 2]) / (2 * math.pi)
    if projection == "cylindrical":
        span = float(hi[1] - lo[1])
        height = (v[:, 1] - lo[1]) / span if span > 0 else torch.full_like(u, 0.5)
    else:
        height = 0.5 + torch.atan2(d[:, 1], radius) / math.pi
    f = faces.long()
    uvs = torch.stack([u[f], height[f]], -1)  # (F, 3, 2)
    uvs = unwrap_seam(uvs, on_axis[f])
    return uvs.float()


def unwrap_seam(uvs, undefined=None):
    """uvs (F, 3, 2) with u in [0, 1) -> uvs where every face spans less than half the image in u.

    A face whose u values spread over more than 0.5 crosses the seam: its corners with u < 0.5 move
    to u + 1. ``undefined`` (F, 3) bool marks corners without an angle (on the axis): they take the
    mean u of the face's other corners (after unwrapping), or 0.5 if the face has none."""
    uvs = uvs.clone()
    u = uvs[..., 0]
    known = torch.ones_like(u, dtype=torch.bool) if undefined is None else ~undefined
    big = torch.full_like(u, float("inf"))
    spread = torch.where(known, u, -big).max(1).values - torch.where(known, u, big).min(1).values
    crosses = (spread > 0.5)[:, None] & known & (u < 0.5)
    u = torch.where(crosses, u + 1, u)
    count = known.sum(1, keepdim=True)
    mean = torch.where(known, u, torch.zeros_like(u)).sum(1, keepdim=True) / count.clamp(min=1)
    mean = torch.where(count > 0, mean, torch.full_like(mean, 0.5))
    uvs[..., 0] = torch.where(known, u, mean.expand_as(u))
    return uvs


__all__ = ["PROJECTIONS", "projected_uvs", "unwrap_seam"]
