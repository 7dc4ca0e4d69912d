"""The three gradient estimators side by side (issue 23): ``python -m benchmarks.estimators [--quick]``.

Every estimator (``blurred_edge``, ``soft`` at several sigmas, ``analytic``) runs the same tasks with
the same optimiser, seeds and budget, on the numba backend, one thread:

1. ``shape``: example 2 (the teapot's silhouette from azimuth 90): the hard silhouette's IoU after
   every step, the final IoU and the steps to reach :data:`IOU_GOAL` (:mod:`.tasks`);
2. ``camera``: example 4 from several starting eyes, some whose silhouettes barely overlap the
   target's: the final eye error and the fraction of starts that converge (:mod:`.tasks`);
3. ``texture``: example 3: the final colour error (:mod:`.tasks`);
4. ``reconstruction``: the mesh model trained from silhouettes, one model per category (car, chair,
   airplane, table), voxel IoU at the same step budget (:mod:`.reconstruction`);
5. ``quality``: each estimator's vertex gradient of a silhouette loss against finite differences of
   the true (area-coverage) loss from a heavily supersampled render (:mod:`.quality`);
6. ``cost``: forward + backward process CPU time at 64², 256² and 1024² (:mod:`.cost`).

Results (:mod:`.report`): ``results.json``, ``results.md`` and ``results.png`` (commit, device,
date and configuration in each) under ``benchmarks/results/estimators-<date>/``.
"""
from dataclasses import dataclass
from typing import Optional

from tritonnmr import defaults

BACKEND = "numba"   # the CPU backend every measurement runs on (one thread)
IOU_GOAL = 0.95     # the shape fit's "steps to reach" threshold (hard silhouette IoU)
CONVERGED = 0.05    # a camera fit converged when its eye is this fraction of the true distance from it
CATEGORIES = ("car", "chair", "airplane", "table")  # the reconstruction's categories


@dataclass(frozen=True)
class Estimator:
    """One estimator setting: ``gradient`` and, for "soft", ``sigma`` (gamma stays the default)."""
    gradient: str
    sigma: Optional[float] = None

    @property
    def label(self) -> str:
        return f"soft σ={self.sigma:g}" if self.gradient == "soft" else self.gradient

    @property
    def keywords(self) -> dict:
        """The fit functions' and the Renderer's keywords (gradient, sigma, gamma)."""
        return dict(gradient=self.gradient, sigma=self.sigma or defaults.SOFT_SIGMA, gamma=defaults.SOFT_GAMMA)


def estimators(sigmas) -> list:
    """blurred_edge, soft at each of ``sigmas``, analytic."""
    return [Estimator("blurred_edge")] + [Estimator("soft", s) for s in sigmas] + [Estimator("analytic")]


@dataclass(frozen=True)
class Settings:
    """Sizes and budgets of a run; :data:`FULL` (about an hour of CPU) and :data:`QUICK` (a minute or two)."""
    sigmas: tuple = (1e-5, 3e-5, 1e-4, 1e-3)
    shape_size: int = 128
    shape_steps: int = 300
    camera_size: int = 64
    camera_steps: int = 300
    camera_starts: Optional[int] = None   # the first N of tasks.CAMERA_STARTS (None: all)
    texture_size: int = 64
    texture_steps: int = 300
    recon_sigmas: tuple = (1e-5, 1e-4)    # soft at 1e-3 costs 23x the blurred edge's step: left out
    recon_categories: tuple = CATEGORIES
    recon_objects: int = 100              # training objects per category (and a quarter as many test objects)
    recon_steps: int = 400                # the quick configuration's budget
    recon_rounds: int = 2                 # voxel IoU measured after each of this many equal rounds of steps
    quality_cases: tuple = ("sphere-80", "sphere-1280", "sphere-5120-small", "teapot")
    quality_supersample: int = 8          # the true coverage: this many samples a side per pixel (64 a pixel)
    quality_step_px: float = 0.25         # the finite differences' step, in pixels at the origin's depth
    cost_sizes: tuple = (64, 256, 1024)
    cost_rgb_sizes: tuple = (64, 256)
    cost_repeats: int = 5
    cost_skip: tuple = ((1024, 1e-3),)    # (size, sigma) soft rows not timed: 1e8 pairs, ~8 GB
    tasks: tuple = ("shape", "camera", "texture", "reconstruction", "quality", "cost")


FULL = Settings()
QUICK = Settings(sigmas=(1e-5, 1e-4), shape_size=64, shape_steps=40, camera_steps=40, camera_starts=3,
                 texture_size=32, texture_steps=20, recon_sigmas=(1e-4,), recon_categories=("car", "chair"),
                 recon_objects=4, recon_steps=10, recon_rounds=2, quality_cases=("sphere-20", "sphere-80"),
                 quality_supersample=6, cost_sizes=(32, 64), cost_rgb_sizes=(32,), cost_repeats=2, cost_skip=())

__all__ = ["BACKEND", "CATEGORIES", "CONVERGED", "Estimator", "FULL", "IOU_GOAL", "QUICK", "Settings", "estimators"]
