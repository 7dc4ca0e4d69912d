"""Measurement: ``tritonnmr bench``, the GPU work model, peers, and the strategies the kernels are
compared with. Installed (``tritonnmr bench`` is part of the product), but nothing in the core library
imports it.

- ``cases``: what a benchmark case renders, and the function that runs it;
- ``timing``: medians of runs, speed-ups over the torch reference in the same run;
- ``report``: table, plot, JSON;
- ``zbuffers``: the face-parallel and pixel-loop forward z-buffers (Triton kernels) beside the binned one;
- ``workmodel``: the GPU work model (``tritonnmr bench --work``), counted from the kernels' own plans;
- ``retune``: times the tuning table's candidates on a GPU;
- ``peers``: Mitsuba 3, PyTorch3D, nvdiffrast on the same scenes;
- ``provenance``: device, versions, commit and date of a result.
"""
from ..threads import set_threads
from .cases import (CPU_PEERS, EYE, GPU_PEERS, PEERS, SOFT_SIGMAS, Case, case_mesh, cpu_backends, grid, make_step,
                    peer_cases, select_gradient, select_raster, uv_sphere)
from .report import backend_label, plot, to_markdown, write, write_work_model
from .timing import PeakRSS, add_speedups, run_case

__all__ = ["Case", "CPU_PEERS", "EYE", "GPU_PEERS", "PEERS", "PeakRSS", "SOFT_SIGMAS", "add_speedups", "backend_label",
           "case_mesh", "cpu_backends", "grid", "make_step", "peer_cases", "plot", "run_case", "select_gradient",
           "select_raster", "set_threads", "to_markdown", "uv_sphere", "write", "write_work_model"]
