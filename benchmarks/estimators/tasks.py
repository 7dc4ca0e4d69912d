"""The paper's three fits (examples 2, 3 and 4) with each estimator, through :mod:`tritonnmr.apps.fitting`.

Every fit uses the example's optimiser and step size (Adam; shape lr 0.001, texture 0.1 with betas
(0.5, 0.999), camera 0.1), the same seed and step budget for every estimator, and measures on the
hard image (``fitting`` does): the loss is the estimator's own image, the metrics are not.
"""
import math
import time

import numpy as np
import torch

import tritonnmr as nr
from tritonnmr.camera import DEFAULT_DISTANCE
from tritonnmr.apps.fitting import fit_camera, fit_shape, fit_texture
from tritonnmr.apps.media import load_image, silhouette_iou

from . import BACKEND, CONVERGED, IOU_GOAL

TRUE_EYE = (DEFAULT_DISTANCE, 30.0, -15.0)  # where example4_ref.png was seen from: distance, elevation, azimuth
EXAMPLE4_START = (6.0, 10.0, -14.0)         # example 4's own starting eye
# the camera fit's starting eyes: (label, (distance, elevation, azimuth)), or example 4's own start
CAMERA_STARTS = (
    ("example 4's start (distance 18.4)", None),
    ("azimuth +30°", (DEFAULT_DISTANCE, 30.0, 15.0)),
    ("distance ×3, azimuth +45°", (3 * DEFAULT_DISTANCE, 30.0, 30.0)),
    ("azimuth −45°", (DEFAULT_DISTANCE, 30.0, -60.0)),
    ("elevation 60°, azimuth +30°", (DEFAULT_DISTANCE, 60.0, 15.0)),
    ("distance ×2", (2 * DEFAULT_DISTANCE, 30.0, -15.0)),
    ("azimuth +90°", (DEFAULT_DISTANCE, 30.0, 75.0)),
    ("elevation 0°, azimuth −75°", (DEFAULT_DISTANCE, 0.0, -90.0)),
    ("azimuth +150°", (DEFAULT_DISTANCE, 30.0, 135.0)),
)


def _silent(_message):
    """load_image's notice: the targets are resized to the run's sizes on purpose."""


def _teapot():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    return v[None], f[None]


def first_step_at(curve, goal):
    """The first step (index into ``curve``, 0 = before any step) at which ``curve`` reaches ``goal``, or None."""
    return next((i for i, x in enumerate(curve) if x >= goal), None)


def shape(estimator, settings):
    """Example 2 at ``settings.shape_size``: {'iou_curve' (before step 1, after each step), 'iou_final',
    'steps_to_goal', 'loss_curve', 'cpu_seconds'}."""
    v, f = _teapot()
    target = load_image(nr.data_path("example2_ref.png"), settings.shape_size, notice=_silent).mean(0)
    start = time.process_time()
    result = fit_shape(target, v, f, iterations=settings.shape_steps, lr=0.001, image_size=settings.shape_size,
                       backend=BACKEND, frame_every=1, progress=False, **estimator.keywords)
    cpu = time.process_time() - start
    # frame k (k < steps) is the hard silhouette after step k + 1, channel 0, as uint8 (round(255 x)): above
    # 128 is above one half, as silhouette_iou counts (the anti-aliased silhouette is often exactly 1/2: 128)
    after = [silhouette_iou(torch.from_numpy(frame[..., 0] > 128).float(), target)
             for frame in result.frames[:len(result.losses)]]
    curve = [result.metrics["iou_initial"]] + after
    return dict(iou_curve=curve, iou_initial=curve[0], iou_final=result.metrics["iou_final"],
                steps_to_goal=first_step_at(curve, IOU_GOAL), loss_curve=result.losses, cpu_seconds=cpu)


def camera_starts(settings):
    """[(label, eye (x, y, z))] of the camera fit's starts in this run."""
    starts = [(label, EXAMPLE4_START if angles is None else tuple(nr.get_points_from_angles(*angles)))
              for label, angles in CAMERA_STARTS]
    return starts[:settings.camera_starts] if settings.camera_starts else starts


def camera(estimator, settings):
    """Example 4 from every start of :func:`camera_starts`: {'starts': [{label, start, iou_initial,
    iou_final, eye, eye_error, converged, steps}], 'converged_fraction', 'median_eye_error', 'cpu_seconds'}.
    ``eye_error`` is relative to the true eye's distance; converged: below :data:`CONVERGED`."""
    v, f = _teapot()
    image = load_image(nr.data_path("example4_ref.png"), settings.camera_size, notice=_silent)
    target = (image.max(0).values > 0).float()
    true_eye = nr.get_points_from_angles(*TRUE_EYE)
    runs, start_cpu = [], time.process_time()
    for label, eye in camera_starts(settings):
        result = fit_camera(target, v, f, iterations=settings.camera_steps, lr=0.1, image_size=settings.camera_size,
                            backend=BACKEND, start=eye, true_eye=true_eye, frame_every=settings.camera_steps,
                            progress=False, **estimator.keywords)
        m = result.metrics
        error = m["eye_error_relative"]
        runs.append(dict(label=label, start=list(eye), iou_initial=m["iou_initial"], iou_final=m["iou_final"],
                         eye=m["eye"], eye_error=error if math.isfinite(error) else None,
                         converged=bool(math.isfinite(error) and error < CONVERGED), steps=m["iterations"],
                         loss_curve=result.losses))
    errors = [r["eye_error"] if r["eye_error"] is not None else math.inf for r in runs]
    return dict(starts=runs, converged_fraction=sum(r["converged"] for r in runs) / len(runs),
                median_eye_error=float(np.median(errors)), cpu_seconds=time.process_time() - start_cpu)


def texture(estimator, settings):
    """Example 3 at ``settings.texture_size`` (texture cubes 4³, seed 0): {'error_final' (squared RGB
    distance per teapot pixel over 8 views), 'error_interior_final', 'error_initial', 'error_edge_floor',
    'loss_curve', 'cpu_seconds'}."""
    v, f = _teapot()
    target = load_image(nr.data_path("example3_ref.png"), settings.texture_size, notice=_silent)
    start = time.process_time()
    result = fit_texture(target, v, f, iterations=settings.texture_steps, lr=0.1, image_size=settings.texture_size,
                         texture_size=4, backend=BACKEND, frame_every=settings.texture_steps, progress=False, seed=0,
                         **estimator.keywords)
    m = result.metrics
    return dict(error_initial=m["error_initial"], error_final=m["error_final"],
                error_interior_final=m["error_interior_final"], error_edge_floor=m["error_edge_floor"],
                loss_curve=result.losses, cpu_seconds=time.process_time() - start)
