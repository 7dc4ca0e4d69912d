"""Timing a case: medians of several runs (CUDA-synchronised wall time and process CPU time), the
speed-up over the torch reference measured in the same run, peak memory on CUDA."""
import os
import statistics
import threading
import time
from dataclasses import asdict

import torch

from .cases import make_step


class PeakRSS:
    """Samples the process's resident set size in a thread; ``peak`` is the growth over the start."""

    def __enter__(self):
        self.base = self.peak_rss = self._rss()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop:
            self.peak_rss = max(self.peak_rss, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()
        self.peak = self.peak_rss - self.base


def run_case(case, device, repeats=5, warmup=1):
    """{"median_ms", "ms_per_1k_faces", "peak_mb", ...} for one case."""
    step, num_faces = make_step(case, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times, cpu_times = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append((time.perf_counter() - t) * 1000)
        cpu_times.append((time.process_time() - c) * 1000)
    # peak memory where it can be measured exactly (CUDA's allocator); a CPU process's resident set
    # grows and shrinks with the allocator's caching and says little about one render
    peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20 if device.type == "cuda" else None
    median = statistics.median(times)
    return dict(asdict(case), faces=num_faces, median_ms=median, ms_per_1k_faces=median / (num_faces / 1000),
                peak_mb=peak, repeats=repeats, cpu_ms=statistics.median(cpu_times), device_type=device.type)


def _timing(row):
    """The time a speed-up compares: process CPU time on the CPU (a busy machine inflates wall time
    far more), CUDA-synchronised wall time on a GPU."""
    return row["cpu_ms"] if row.get("device_type") == "cpu" and row.get("cpu_ms") else row["median_ms"]


def add_speedups(rows):
    """Speed-up of each row over the torch backend's row for the same case, measured in this run."""
    key = lambda r: (r["mesh"], r["faces"], r["image_size"], r["batch"], r["mode"], r["passes"],  # noqa: E731
                     r.get("stage", "render"), r.get("gradient", "blurred_edge"), r.get("sigma"))
    ref = {key(r): _timing(r) for r in rows if r["backend"] == "torch"}
    for r in rows:
        base = ref.get(key(r))
        r["speedup_vs_torch"] = base / _timing(r) if base else None
    return rows
