"""Cost: forward + backward of each estimator on the CPU (numba, one thread), the benchmark's teapot
scene (``tritonnmr.bench``: look_at, elevation 30, azimuth 45, anti-aliasing on, so N² renders (2N)²
inside; the loss is the image's sum), process CPU time, the median of interleaved runs: every case of a
size runs once per round, so a busy machine slows every estimator alike.
"""
import statistics
import time

import torch

from tritonnmr import bench

from . import BACKEND


def cases(estimators, settings):
    """The timed cases: silhouettes at every size, textured RGB at ``cost_rgb_sizes``, for every
    estimator but the soft rows ``cost_skip`` names. -> [(estimator, bench.Case)]."""
    out = []
    for size in settings.cost_sizes:
        for mode in ("silhouettes", "rgb"):
            if mode == "rgb" and size not in settings.cost_rgb_sizes:
                continue
            for e in estimators:
                if e.gradient == "soft" and (size, e.sigma) in settings.cost_skip:
                    continue
                out.append((e, bench.Case("teapot", 2464, size, 1, mode, BACKEND, "forward+backward",
                                          gradient=e.gradient, sigma=e.keywords["sigma"])))
    return out


def cost(estimators, settings):
    """{'rows': [{estimator, image_size, mode, cpu_ms (median), runs}], 'skipped': [...], 'cpu_seconds'}."""
    start_cpu, rows = time.process_time(), []
    timed = cases(estimators, settings)
    device = torch.device("cpu")
    for size in settings.cost_sizes:
        group = [(e, c, bench.make_step(c, device)[0]) for e, c in timed if c.image_size == size]
        for _, _, step in group:  # warm-up: compiles, allocates
            step()
        times = [[] for _ in group]
        for _ in range(settings.cost_repeats):
            for k, (_, _, step) in enumerate(group):
                t = time.process_time()
                step()
                times[k].append((time.process_time() - t) * 1000)
        rows += [dict(estimator=e.label, gradient=e.gradient, sigma=e.sigma, image_size=size, mode=c.mode,
                      cpu_ms=statistics.median(t), runs=len(t)) for (e, c, _), t in zip(group, times)]
        del group
    skipped = [dict(image_size=s, sigma=sigma) for s, sigma in settings.cost_skip]
    return dict(rows=rows, skipped=skipped, cpu_seconds=time.process_time() - start_cpu)
