"""Gradient quality: each estimator's vertex gradient of a silhouette loss against the gradient of the
true loss, the one on area coverage, estimated by central finite differences of a supersampled render.

- The loss is ``sum_p (S(p) - t(p))^2``, where ``t`` is the area coverage of a deformed copy of the mesh
  (:func:`deformed`), seen from the same camera.
- ``S`` is each estimator's own silhouette: hard for ``blurred_edge``, soft for ``soft``, antialiased for
  ``analytic``; no anti-aliasing pass, so the estimators are compared pixel for pixel.
- The true loss uses the area coverage instead: the hard silhouette rendered at K times the size
  (K² samples a pixel) and average-pooled. Its gradient is estimated by central differences with a step
  of ``quality_step_px`` pixels (measured at the origin's depth), and again at twice that step; the
  agreement of the two is the reference's own noise floor.
- Only vertices within :data:`BAND_PX` pixels of a partly covered pixel can change the coverage, so only
  those are differenced. The true gradient is zero elsewhere, which :func:`quality` checks on a few
  vertices outside that band. The cosine and the magnitude ratio are taken over every vertex, so an
  estimator's gradient away from the outline counts against it.
"""
import math
import time

import torch
import torch.nn.functional as F

import tritonnmr as nr
from tritonnmr.camera import DEFAULT_DISTANCE
from tritonnmr.defaults import VIEWING_ANGLE
from tritonnmr.apps.reconstruction.shapes import icosphere

from . import BACKEND

VIEWS = ((30.0, 45.0), (0.0, 90.0))  # (elevation, azimuth) of the cameras, at the default distance
BAND_PX = 2.0     # vertices this close (in pixels) to a partly covered pixel are differenced
BATCH = 8         # perturbed meshes rendered at once
OFF_BAND_CHECKS = 8  # coordinates outside the band whose finite difference must be zero


def _sphere(subdivisions):
    v, f = icosphere(subdivisions)
    return torch.as_tensor(v, dtype=torch.float32) * 0.8, torch.as_tensor(f, dtype=torch.int64)


def _teapot():
    return nr.load_obj(nr.data_path("teapot.obj"))


# name: (mesh (V, 3), (F, 3), image size, what it shows)
CASES = {
    "sphere-20": (lambda: _sphere(0), 32, "an icosahedron's 20 triangles at 32² (about 8 px a side; quick runs)"),
    "sphere-80": (lambda: _sphere(1), 64, "80 large triangles (about 8 px a side)"),
    "sphere-1280": (lambda: _sphere(3), 64, "1,280 triangles (about 2 px a side)"),
    "sphere-5120-small": (lambda: _sphere(4), 32, "5,120 triangles smaller than a pixel (about 0.5 px)"),
    "teapot": (_teapot, 64, "the teapot's 2,464 triangles, large to sub-pixel"),
}


def deformed(v):
    """The target mesh's vertices: ``v`` (V, 3) bent by a smooth field and moved a little (a few pixels)."""
    bend = 1 + 0.06 * torch.sin(3 * v[:, 0] + 1) * torch.cos(2 * v[:, 1])
    return v * bend[:, None] + torch.tensor([0.02, -0.015, 0.0])


def _renderer(size, eye, **kw):
    r = nr.Renderer(image_size=size, camera_mode="look_at", anti_aliasing=False, backend=BACKEND, **kw)
    r.eye = eye
    return r


def coverage(renderer, vertices, faces, k):
    """Area coverage (B, H, W) in float64 of meshes ``vertices`` (B, V, 3): the hard silhouette of
    ``renderer`` (K times the size) pooled K x K."""
    with torch.no_grad():
        s = renderer(vertices, faces.expand(len(vertices), -1, -1), mode="silhouettes")
    return F.avg_pool2d(s.double()[:, None], k)[:, 0]


def band(renderer, vertices, cover, size):
    """(V,) bool: the vertices within BAND_PX pixels of a pixel whose coverage is strictly between 0 and 1."""
    edge = ((cover > 1e-9) & (cover < 1 - 1e-9)).nonzero().double()  # (N, 2) rows, columns (row 0: the top)
    screen = renderer.transform(vertices[None])[0].double()
    px = torch.stack([(1 - screen[:, 1]) / 2 * size - 0.5, (screen[:, 0] + 1) / 2 * size - 0.5], 1)
    if not len(edge):
        return torch.zeros(len(vertices), dtype=torch.bool)
    return torch.cdist(px, edge).min(1).values <= BAND_PX


def triangle_size_px(renderer, vertices, faces, size):
    """The median triangle's size in pixels: sqrt(2 x its projected area)."""
    s = renderer.transform(vertices[None])[0][:, :2] * size / 2
    a, b, c = s[faces[:, 0]], s[faces[:, 1]], s[faces[:, 2]]
    area = ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]).abs() / 2
    return float(torch.sqrt(2 * area).median())


def finite_differences(big, vertices, faces, target, k, coords, step):
    """Central differences of the true loss sum (coverage - target)^2 along the flat coordinates
    ``coords`` of ``vertices`` (V, 3) with world step ``step`` -> (len(coords),) float64."""
    grads = []
    for start in range(0, len(coords), BATCH):
        chunk = coords[start:start + BATCH]
        batch = vertices[None].repeat(2 * len(chunk), 1, 1).reshape(2 * len(chunk), -1)
        rows = torch.arange(len(chunk))
        batch[2 * rows, chunk] += step
        batch[2 * rows + 1, chunk] -= step
        loss = ((coverage(big, batch.reshape(2 * len(chunk), -1, 3), faces[None], k) - target) ** 2).sum((1, 2))
        grads.append((loss[0::2] - loss[1::2]) / (2 * step))
    return torch.cat(grads) if grads else torch.zeros(0, dtype=torch.float64)


def estimator_gradient(estimator, size, eye, vertices, faces, target):
    """The estimator's gradient (V * 3,) float64 of sum (S - target)^2, S its silhouette at ``size``."""
    r = _renderer(size, eye, **estimator.keywords)
    v = vertices[None].clone().requires_grad_(True)
    ((r(v, faces[None], mode="silhouettes")[0].double() - target) ** 2).sum().backward()
    return v.grad[0].reshape(-1).double()


def _compare(g, true):
    norm, true_norm = float(g.norm()), float(true.norm())
    cosine = float(g @ true) / (norm * true_norm) if norm and true_norm else 0.0
    return dict(cosine=cosine, magnitude=norm / true_norm if true_norm else math.nan)


def quality(estimators, settings):
    """Every case of ``settings.quality_cases`` from every view of :data:`VIEWS`: {'views': [{case,
    elevation, azimuth, image_size, triangle_px, band_vertices, reference: {cosine, magnitude} (the
    step against twice the step), off_band_max (the largest |finite difference| outside the band, to
    compare with the band's), estimators: {label: {cosine, magnitude}}}], 'cpu_seconds'}."""
    k, start_cpu, rows = settings.quality_supersample, time.process_time(), []
    ndc = DEFAULT_DISTANCE * math.tan(math.radians(VIEWING_ANGLE))  # world units per NDC unit at the origin
    for name in settings.quality_cases:
        build, size, what = CASES[name]
        vertices, faces = build()
        target_vertices = deformed(vertices)
        step = settings.quality_step_px * 2 / size * ndc  # a pixel is 2 / size NDC units
        for elevation, azimuth in VIEWS:
            eye = nr.get_points_from_angles(DEFAULT_DISTANCE, elevation, azimuth)
            small, big = _renderer(size, eye), _renderer(size * k, eye)
            target = coverage(big, target_vertices[None], faces[None], k)[0]
            cover = coverage(big, vertices[None], faces[None], k)[0]
            near = band(small, vertices, cover, size)
            coords = (near.nonzero()[:, 0, None] * 3 + torch.arange(3)).reshape(-1)
            true, wide = (torch.zeros(vertices.numel(), dtype=torch.float64) for _ in range(2))
            true[coords] = finite_differences(big, vertices, faces, target, k, coords, step)
            wide[coords] = finite_differences(big, vertices, faces, target, k, coords, 2 * step)
            outside = (~near).nonzero()[:, 0]
            picked = outside[torch.randperm(len(outside), generator=torch.Generator().manual_seed(0))[:OFF_BAND_CHECKS]]
            off = finite_differences(big, vertices, faces, target, k, picked * 3, step)
            rows.append(dict(case=name, what=what, elevation=elevation, azimuth=azimuth, image_size=size,
                             supersample=k, triangle_px=triangle_size_px(small, vertices, faces, size),
                             band_vertices=int(near.sum()), vertices=len(vertices),
                             reference=_compare(wide, true),
                             off_band_max=float(off.abs().max()) if len(off) else 0.0,
                             band_max=float(true.abs().max()),
                             estimators={e.label: _compare(estimator_gradient(e, size, eye, vertices, faces, target),
                                                           true) for e in estimators}))
    return dict(views=rows, cpu_seconds=time.process_time() - start_cpu)
