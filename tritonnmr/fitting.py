"""The classic examples as library code: fit a shape, textures or a camera to a target image.

Each fit uses only the public API (what a user would write), records the loss, keeps a frame
every ``frame_every`` steps, and stops cleanly on Ctrl-C (``result.interrupted``), keeping what
it has. The examples/ scripts and the ``tritonnmr fit`` command both call these functions.
"""
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from . import Renderer, get_points_from_angles
from .media import silhouette_iou, to_uint8

DISTANCE = 2.732  # the examples' camera distance: the default look_at eye's


@dataclass
class FitResult:
    metrics: dict
    frames: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    interrupted: bool = False
    vertices: torch.Tensor = None
    textures: torch.Tensor = None
    eye: list = None


def _optimize(step, parameters, iterations, lr, frame, frame_every, progress, desc, betas=(0.9, 0.999),
              stop_below=None):
    """Adam on ``parameters``; ``step()`` returns the loss, ``frame()`` a picture. -> (losses, frames, interrupted)."""
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


def _fit_silhouette(silhouette, target, parameters, iterations, lr, frame_every, progress, desc,
                    stop_below=None):
    """Shared by the silhouette fits: Adam on the squared silhouette difference, overlay frames
    (yellow: fitted, blue: target) and the silhouette metrics. -> (metrics, frames, losses, interrupted)."""
    def step():
        return ((silhouette() - target) ** 2).sum()

    def frame():
        with torch.no_grad():
            s = silhouette()
        return to_uint8(torch.stack([s, s, target]))

    with torch.no_grad():
        initial = silhouette()
    start = time.time()
    losses, frames, interrupted = _optimize(step, parameters, iterations, lr, frame, frame_every, progress, desc,
                                            stop_below=stop_below)
    with torch.no_grad():
        final = silhouette()
    metrics = dict(iterations=len(losses), loss_initial=losses[0] if losses else None,
                   loss_final=((final - target) ** 2).sum().item(), iou_initial=silhouette_iou(initial, target),
                   iou_final=silhouette_iou(final, target), seconds=time.time() - start)
    return metrics, frames, losses, interrupted


def fit_shape(target, vertices, faces, iterations=300, lr=0.001, image_size=256, backend="auto",
              azimuth=90.0, frame_every=10, progress=True):
    """Deform ``vertices`` (1, V, 3) so the silhouette seen from ``azimuth`` matches ``target``
    (S, S) in [0, 1]; loss = sum of squared silhouette differences (the paper's example 2)."""
    vertices = torch.nn.Parameter(vertices.clone())
    renderer = _renderer(image_size, backend)
    renderer.eye = get_points_from_angles(DISTANCE, 0, azimuth)
    metrics, frames, losses, interrupted = _fit_silhouette(
        lambda: renderer(vertices, faces, mode="silhouettes")[0], target.to(vertices.device), [vertices],
        iterations, lr, frame_every, progress, "fit shape")
    return FitResult(metrics, frames, losses, interrupted, vertices=vertices.detach())


def _view_error(renderer, vertices, faces, textures, target, azimuths):
    """Mean squared colour error over the pixels the mesh covers, averaged over fixed views."""
    errors = []
    with torch.no_grad():
        for azimuth in azimuths:
            renderer.eye = get_points_from_angles(DISTANCE, 0, azimuth)
            rgb, _, alpha = renderer(vertices, faces, textures)
            errors.append((((rgb[0] - target) ** 2).sum(0) * alpha[0]).sum().item() / alpha[0].sum().item())
    return float(np.mean(errors))


def fit_texture(target, vertices, faces, iterations=300, lr=0.1, image_size=256, texture_size=4,
                backend="auto", frame_every=10, progress=True, seed=0):
    """Paint per-face texture cubes so renderings from random azimuths match ``target`` (3, S, S)
    (the paper's example 3; flat ambient light, orthographic camera). The error reported is the
    mean squared colour error on the mesh's pixels over 8 fixed azimuths."""
    device = vertices.device
    target = target.to(device)
    g = torch.Generator().manual_seed(seed)
    raw = torch.nn.Parameter(torch.zeros(1, faces.shape[1], *(texture_size,) * 3, 3, device=device))
    renderer = _renderer(image_size, backend, perspective=False, light_intensity_ambient=1.0,
                         light_intensity_directional=0.0)
    views = list(np.linspace(0, 360, 8, endpoint=False))

    def step():
        renderer.eye = get_points_from_angles(DISTANCE, 0, float(torch.rand(1, generator=g)) * 360)
        rgb, _, _ = renderer(vertices, faces, torch.tanh(raw))
        return ((rgb[0] - target) ** 2).sum()

    def frame():
        renderer.eye = get_points_from_angles(DISTANCE, 0, 0)
        with torch.no_grad():
            return to_uint8(renderer(vertices, faces, torch.tanh(raw))[0][0])

    error_initial = _view_error(renderer, vertices, faces, torch.tanh(raw), target, views)
    start = time.time()
    losses, frames, interrupted = _optimize(step, [raw], iterations, lr, frame, frame_every, progress,
                                            "fit texture", betas=(0.5, 0.999))
    error_final = _view_error(renderer, vertices, faces, torch.tanh(raw), target, views)
    metrics = dict(iterations=len(losses), loss_initial=losses[0] if losses else None,
                   loss_final=losses[-1] if losses else None, error_initial=error_initial,
                   error_final=error_final, error_reduction=1 - error_final / error_initial,
                   seconds=time.time() - start)
    return FitResult(metrics, frames, losses, interrupted, textures=torch.tanh(raw).detach())


def fit_camera(target, vertices, faces, iterations=300, lr=0.1, image_size=256, backend="auto",
               start=(6.0, 10.0, -14.0), true_eye=None, frame_every=10, progress=True):
    """Move the camera (its eye, looking at the origin) until the silhouette matches ``target``
    (S, S) (the paper's example 4). With ``true_eye`` the metrics give the error in distance.
    The fit stops early once the loss is below 70 pixels' worth at 256 px (scaled to the size)."""
    eye = torch.nn.Parameter(torch.tensor(start, dtype=torch.float32, device=vertices.device))
    renderer = _renderer(image_size, backend)
    renderer.eye = eye
    metrics, frames, losses, interrupted = _fit_silhouette(
        lambda: renderer(vertices, faces, mode="silhouettes")[0], target.to(vertices.device), [eye],
        iterations, lr, frame_every, progress, "fit camera", stop_below=70 * (image_size / 256) ** 2)
    metrics["eye"] = eye.detach().cpu().tolist()
    if true_eye is not None:
        true_eye = torch.tensor(true_eye, dtype=torch.float32)
        metrics["eye_error_relative"] = (eye.detach().cpu() - true_eye).norm().item() / true_eye.norm().item()
    return FitResult(metrics, frames, losses, interrupted, eye=metrics["eye"])
