"""Running the study: every task with every estimator, one thread, then the report."""
import os
import subprocess
import time
from dataclasses import asdict

import numba
import torch

from tritonnmr.bench.provenance import metadata
from tritonnmr.threads import set_threads

from . import estimators, report
from .cost import cost
from .quality import quality
from .reconstruction import reconstruction
from .tasks import camera, shape, texture

PER_ESTIMATOR = {"shape": shape, "camera": camera, "texture": texture}


def configuration_line(settings):
    """One line saying what was run: sizes, budgets, sigmas."""
    return (f"soft σ {', '.join(f'{s:g}' for s in settings.sigmas)}; shape {settings.shape_size}² × "
            f"{settings.shape_steps} steps; camera {settings.camera_size}² × {settings.camera_steps}; texture "
            f"{settings.texture_size}² × {settings.texture_steps}; reconstruction {'/'.join(settings.recon_categories)}"
            f" × {settings.recon_steps} steps (soft σ {', '.join(f'{s:g}' for s in settings.recon_sigmas)}); "
            f"quality {settings.quality_supersample}² spp; cost {'/'.join(str(s) for s in settings.cost_sizes)}²")


def changed_files():
    """The tracked files that differ from the commit in the checkout that runs (the results are of the
    commit only when this is empty), or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                              text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
    except OSError:
        return None
    return [line[3:] for line in done.stdout.splitlines()] if done.returncode == 0 else None


def cpu_model():
    """The CPU's model name (/proc/cpuinfo), or '' where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        return ""


def run(settings, out, work, progress=None):
    """Run ``settings.tasks`` and write the report into ``out`` (the reconstruction's data and
    checkpoints into ``work``). -> the paths written."""
    say = progress or (lambda message: None)
    set_threads(1)
    every = estimators(settings.sigmas)
    tasks, cpu = {}, {}
    for name in settings.tasks:
        start = time.process_time()
        if name in PER_ESTIMATOR:
            tasks[name] = {e.label: PER_ESTIMATOR[name](e, settings) for e in every}
        elif name == "reconstruction":
            tasks[name] = {e.label: reconstruction(e, settings, f"{work}/data", f"{work}/checkpoints")
                           for e in estimators(settings.recon_sigmas)}
        elif name == "quality":
            tasks[name] = quality(every, settings)
        else:
            tasks[name] = cost(every, settings)
        cpu[name] = time.process_time() - start
        say(f"{name}: {cpu[name]:.0f} s CPU")
    meta = dict(metadata(torch.device("cpu")), numba=numba.__version__, cpu=cpu_model(), cores=os.cpu_count(),
                changed_files=changed_files())
    results = dict(meta=meta, settings=asdict(settings), configuration=configuration_line(settings),
                   estimators=list(dict.fromkeys(e.label for e in every + estimators(settings.recon_sigmas))),
                   cpu_seconds=cpu, tasks=tasks)
    return report.write(results, out)
