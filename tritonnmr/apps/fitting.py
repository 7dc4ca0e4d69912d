"""The classic examples as library code: fit a shape, textures or a camera to a target image.

Each fit uses only the public API (what a user would write), records the loss, keeps a frame
every ``frame_every`` steps, and stops cleanly on Ctrl-C (``result.interrupted``), keeping what
it has; ``result.summary`` says in one line what was measured. The examples/ scripts and the
``tritonnmr fit`` command both call these functions, and :func:`optimize` (the Adam loop) is shared
with :mod:`tritonnmr.apps.editing`.
"""
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import Renderer, checks, defaults, get_points_from_angles
from ..camera import DEFAULT_DISTANCE
from .media import silhouette_iou, to_uint8

# The texture fit's lights and camera (the paper's example 3): flat white ambient light, so a
# texel's colour is the colour seen, and an orthographic camera. Pictures of its result use them too.
TEXTURE_VIEW = dict(perspective=False, light_intensity_ambient=1.0, light_intensity_directional=0.0)


@dataclass
class FitResult:
    metrics: dict
    frames: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    interrupted: bool = False
    vertices: torch.Tensor = None
    textures: object = None  # cubes (1, F, T, T, T, 3), or a UVMap (fit_texture_uv)
    eye: list = None
    path: list = None       # the camera fit's eye after each step, from the start: [[x, y, z], ...]
    summary: str = ""       # one line: what was measured, before -> after


def optimize(step, parameters, iterations, lr, frame, frame_every, progress, desc, betas=(0.9, 0.999),
             stop_below=None, after_step=None):
    """Adam on ``parameters`` (tensors or param groups) for ``iterations`` steps.

    ``step()`` returns the loss to minimise, ``frame()`` a picture (kept every ``frame_every`` steps
    and once at the end), ``after_step()`` is called after each update. Stops early when the loss
    falls below ``stop_below``; Ctrl-C stops it cleanly. -> (losses, frames, interrupted)."""
    optimizer = torch.optim.Adam(parameters, lr=lr, betas=betas)
    losses, frames, interrupted = [], [], False
    bar = tqdm(range(iterations), desc=desc, disable=not progress, leave=False)
    try:
        for i in bar:
            optimizer.zero_grad()
            loss = step()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if after_step is not None:
                after_step()
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
            if i % frame_every == 0:
                frames.append(frame())
            if stop_below is not None and losses[-1] < stop_below:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    frames.append(frame())
    return losses, frames, interrupted


def _renderer(image_size, backend, **kw):
    return Renderer(image_size=image_size, camera_mode="look_at", backend=backend, **kw)


def estimator(gradient="blurred_edge", sigma=defaults.SOFT_SIGMA, gamma=defaults.SOFT_GAMMA):
    """The Renderer keywords of a gradient estimator (tritonnmr.gradients), checked."""
    from ..gradients import options
    options(gradient, defaults.RGB_EPS, sigma, gamma)
    return dict(gradient=gradient, sigma=sigma, gamma=gamma)


def texture_renderer(image_size=256, backend="auto"):
    """The renderer the texture fit uses (and its pictures should): :data:`TEXTURE_VIEW`."""
    return _renderer(image_size, backend, **TEXTURE_VIEW)


def _pixels(image_size):
    h, w = checks.image_size(image_size)
    return h * w


def _steps(metrics):
    return f"{metrics['iterations']} steps, {metrics['seconds']:.0f} s"


def _fit_silhouette(silhouette, target, parameters, iterations, lr, frame_every, progress, desc,
                    stop_below=None, after_step=None, measured=None):
    """Shared by the silhouette fits: Adam on the squared silhouette difference, overlay frames
    (yellow: fitted, blue: target) and the silhouette metrics, measured on ``measured()`` (the hard
    silhouette, where the loss's ``silhouette()`` is a soft one). -> (metrics, frames, losses, interrupted)."""
    measured = measured or silhouette

    def step():
        return ((silhouette() - target) ** 2).sum()

    def frame():
        with torch.no_grad():
            s = measured()
        return to_uint8(torch.stack([s, s, target]))

    with torch.no_grad():
        initial = measured()
    start = time.time()
    losses, frames, interrupted = optimize(step, parameters, iterations, lr, frame, frame_every, progress, desc,
                                           stop_below=stop_below, after_step=after_step)
    with torch.no_grad():
        final = measured()
    metrics = dict(iterations=len(losses), loss_initial=((initial - target) ** 2).sum().item(),
                   loss_final=((final - target) ** 2).sum().item(), iou_initial=silhouette_iou(initial, target),
                   iou_final=silhouette_iou(final, target), seconds=time.time() - start)
    return metrics, frames, losses, interrupted


def fit_shape(target, vertices, faces, iterations=300, lr=0.001, image_size=256, backend="auto",
              azimuth=90.0, frame_every=10, progress=True, **gradient):
    """Deform ``vertices`` (1, V, 3) so the silhouette seen from ``azimuth`` matches ``target``
    (H, W) in [0, 1]; loss = sum of squared silhouette differences (the paper's example 2).
    ``gradient``, ``sigma``, ``gamma``: the estimator (:func:`estimator`); IoU is of the hard silhouette."""
    vertices = torch.nn.Parameter(vertices.clone())
    renderer, hard = _renderer(image_size, backend, **estimator(**gradient)), _renderer(image_size, backend)
    renderer.eye = hard.eye = get_points_from_angles(DEFAULT_DISTANCE, 0, azimuth)
    metrics, frames, losses, interrupted = _fit_silhouette(
        lambda: renderer(vertices, faces, mode="silhouettes")[0], target.to(vertices.device), [vertices],
        iterations, lr, frame_every, progress, "fit shape",
        measured=lambda: hard(vertices, faces, mode="silhouettes")[0])
    metrics.update(estimator(**gradient))
    summary = (f"silhouette IoU {metrics['iou_initial']:.3f} -> {metrics['iou_final']:.3f}; {_steps(metrics)}")
    return FitResult(metrics, frames, losses, interrupted, vertices=vertices.detach(), summary=summary)


def _view_errors(renderer, vertices, faces, textures, target, azimuths):
    """(error, interior error, edge floor), each averaged over the views at ``azimuths``:

    - error: the squared RGB distance to the target per mesh pixel, weighted by coverage alpha;
    - interior error: the same over the fully covered pixels only (alpha > 0.999);
    - edge floor: the error that remains where the colours are right: an edge pixel shows
      alpha * colour on the black background, so even a perfect texture leaves
      sum alpha (1 - alpha)^2 |target|^2 / sum alpha."""
    errors = []
    with torch.no_grad():
        for azimuth in azimuths:
            renderer.eye = get_points_from_angles(DEFAULT_DISTANCE, 0, azimuth)
            rgb, _, alpha = renderer(vertices, faces, textures)
            squared, a = ((rgb[0] - target) ** 2).sum(0), alpha[0]
            inside = a > 0.999
            errors.append(((squared * a).sum().item() / a.sum().item(),
                           squared[inside].mean().item() if bool(inside.any()) else float("nan"),
                           (a * (1 - a) ** 2 * (target ** 2).sum(0)).sum().item() / a.sum().item()))
    return tuple(float(x) for x in np.mean(errors, 0))


def _fit_colours(target, vertices, faces, parameters, textures, iterations, lr, image_size, backend, frame_every,
                 progress, seed, desc, final=None, gradient=None):
    """Shared by the texture fits (the paper's example 3): Adam (betas 0.5, 0.999) on ``parameters``
    so that renderings of ``textures()`` from a random azimuth each step match ``target`` (3, H, W)
    under :data:`TEXTURE_VIEW`; the colour errors of :func:`_view_errors` before and after (after on
    ``final()`` when given: what is kept). -> (metrics, frames, losses, interrupted)."""
    target = target.to(vertices.device)
    g = torch.Generator().manual_seed(seed)
    renderer = texture_renderer(image_size, backend)  # the pictures and errors: the hard image
    fitted = _renderer(image_size, backend, **TEXTURE_VIEW, **estimator(**(gradient or {})))
    views = list(np.linspace(0, 360, 8, endpoint=False))

    def step():
        fitted.eye = get_points_from_angles(DEFAULT_DISTANCE, 0, float(torch.rand(1, generator=g)) * 360)
        rgb, _, _ = fitted(vertices, faces, textures())
        return ((rgb[0] - target) ** 2).sum()

    def frame():
        renderer.eye = get_points_from_angles(DEFAULT_DISTANCE, 0, 0)
        with torch.no_grad():
            return to_uint8(renderer(vertices, faces, textures())[0][0])

    with torch.no_grad():
        error_initial, interior_initial, floor = _view_errors(renderer, vertices, faces, textures(), target, views)
    start = time.time()
    losses, frames, interrupted = optimize(step, parameters, iterations, lr, frame, frame_every, progress, desc,
                                           betas=(0.5, 0.999))
    seconds = time.time() - start
    with torch.no_grad():
        error_final, interior_final, _ = _view_errors(renderer, vertices, faces, (final or textures)(), target,
                                                      views)
    metrics = dict(iterations=len(losses), loss_initial=losses[0] if losses else None,
                   loss_final=losses[-1] if losses else None, error_initial=error_initial,
                   error_final=error_final, error_reduction=1 - error_final / error_initial,
                   error_interior_initial=interior_initial, error_interior_final=interior_final,
                   error_edge_floor=floor, seconds=seconds)
    return metrics, frames, losses, interrupted


def _colour_summary(metrics):
    return (f"colour error (squared RGB distance per teapot pixel, 8 views) {metrics['error_initial']:.4g} -> "
            f"{metrics['error_final']:.4g} ({-100 * metrics['error_reduction']:+.1f}%); {_steps(metrics)}")


def fit_texture(target, vertices, faces, iterations=300, lr=0.1, image_size=256, texture_size=4,
                backend="auto", frame_every=10, progress=True, seed=0, **gradient):
    """Paint per-face texture cubes (1, F, T, T, T, 3) = tanh(parameters), from 0, so renderings from
    random azimuths match ``target`` (3, H, W) (the paper's example 3; :data:`TEXTURE_VIEW`: flat
    ambient light, orthographic camera). The error reported is the squared RGB distance per mesh
    pixel (channels in [0, 1], so 0 to 3), averaged over 8 fixed azimuths."""
    raw = torch.nn.Parameter(torch.zeros(1, faces.shape[1], *(texture_size,) * 3, 3, device=vertices.device))
    metrics, frames, losses, interrupted = _fit_colours(
        target, vertices, faces, [raw], lambda: torch.tanh(raw), iterations, lr, image_size, backend,
        frame_every, progress, seed, "fit texture", gradient=gradient)
    metrics.update(estimator(**gradient))
    return FitResult(metrics, frames, losses, interrupted, textures=torch.tanh(raw).detach(),
                     summary=_colour_summary(metrics))


def fit_texture_uv(target, vertices, faces, iterations=300, lr=0.1, image_size=256, uv_size=128,
                   projection="cylindrical", backend="auto", frame_every=10, progress=True, seed=0, **gradient):
    """Paint one UV texture image (uv_size x uv_size, RGB) for the whole mesh, as :func:`fit_texture`
    paints cubes: the same target, views, light, loss and Adam, the image = tanh(parameters) from 0.

    The mesh's uvs come from :func:`tritonnmr.apps.uv_projection.projected_uvs` (``projection``
    'cylindrical' or 'spherical', around the vertical axis; REPEAT wrap across the seam).
    ``uv_size``: an int S (S x S texels) or (height, width). ``result.textures`` is a
    :class:`tritonnmr.UVMap` whose one image is the fitted one clipped to [0, 1] (what
    :func:`tritonnmr.save_obj` writes); the final error is measured on it."""
    from .uv_projection import projected_uvs
    from ..uvmap import UVMap
    if vertices.shape[0] != 1 or faces.shape[0] != 1:
        raise ValueError(f"vertices and faces must hold one mesh (batch 1), got {vertices.shape[0]} and "
                         f"{faces.shape[0]}")
    h, w = checks.image_size(uv_size, "uv_size")
    uvs = projected_uvs(vertices[0], faces[0], projection).to(vertices.device)
    raw = torch.nn.Parameter(torch.zeros(1, h, w, 3, device=vertices.device))

    def painted():
        return uvs[None], torch.tanh(raw)

    def kept():
        return uvs[None], torch.tanh(raw).clamp(0, 1)

    metrics, frames, losses, interrupted = _fit_colours(
        target, vertices, faces, [raw], painted, iterations, lr, image_size, backend, frame_every, progress,
        seed, "fit texture (uv)", final=kept, gradient=gradient)
    metrics.update(uv_size=[h, w], projection=projection, **estimator(**gradient))
    uv_map = UVMap(uvs, torch.zeros(uvs.shape[0], dtype=torch.int64, device=uvs.device),
                   [kept()[1][0].detach()], "REPEAT")
    return FitResult(metrics, frames, losses, interrupted, textures=uv_map, summary=_colour_summary(metrics))


def eye_angles(eye):
    """(distance, elevation, azimuth) in degrees of an eye (x, y, z): the inverse of get_points_from_angles."""
    x, y, z = (float(c) for c in eye)
    distance = math.sqrt(x * x + y * y + z * z)
    return distance, math.degrees(math.asin(y / distance)) if distance else 0.0, math.degrees(math.atan2(x, -z))


def fit_camera(target, vertices, faces, iterations=300, lr=0.1, image_size=256, backend="auto",
               start=(6.0, 10.0, -14.0), true_eye=None, frame_every=10, progress=True, **gradient):
    """Move the camera (its eye, looking at the origin) until the silhouette matches ``target``
    (H, W) (the paper's example 4). With ``true_eye`` the metrics give the error in distance.
    The fit stops early once the loss is below 70 pixels' worth at 256 x 256 (scaled to the size).
    ``result.path`` holds the eye from the start and after every step."""
    eye = torch.nn.Parameter(torch.tensor(start, dtype=torch.float32, device=vertices.device))
    renderer, hard = _renderer(image_size, backend, **estimator(**gradient)), _renderer(image_size, backend)
    renderer.eye = hard.eye = eye
    path = [list(map(float, start))]
    metrics, frames, losses, interrupted = _fit_silhouette(
        lambda: renderer(vertices, faces, mode="silhouettes")[0], target.to(vertices.device), [eye],
        iterations, lr, frame_every, progress, "fit camera", stop_below=70 * _pixels(image_size) / 256 ** 2,
        after_step=lambda: path.append(eye.detach().cpu().tolist()),
        measured=lambda: hard(vertices, faces, mode="silhouettes")[0])
    metrics.update(estimator(**gradient))
    metrics["eye"] = eye.detach().cpu().tolist()
    distance, elevation, azimuth = eye_angles(metrics["eye"])
    summary = (f"silhouette IoU {metrics['iou_initial']:.3f} -> {metrics['iou_final']:.3f}; eye at distance "
               f"{distance:.3f}, elevation {elevation:.1f} deg, azimuth {azimuth:.1f} deg")
    if true_eye is not None:
        true_eye = torch.tensor(true_eye, dtype=torch.float32)
        metrics["eye_error_relative"] = (eye.detach().cpu() - true_eye).norm().item() / true_eye.norm().item()
        summary += f" ({100 * metrics['eye_error_relative']:.1f}% of its distance from the true eye)"
    return FitResult(metrics, frames, losses, interrupted, eye=metrics["eye"], path=path,
                     summary=f"{summary}; {_steps(metrics)}")
