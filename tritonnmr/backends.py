"""Backend choice: "torch" (the reference in reference.py) or "triton" (kernels/), one set of ops.

Both backends expose the same functions (rasterize_fragments, depth_backward, edge_backward,
sample_textures[_backward], interpolate[_backward]) with the same arguments and results.
"""
import os
import warnings

import torch

from . import checks, reference

BACKENDS = ("auto", "torch", "triton")
_warned = False


def interpreter_enabled():
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_available():
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(backend, device):
    """The backend name that runs for tensors on ``device``: "torch" or "triton".

    "auto" picks "triton" for CUDA tensors (when triton imports) and "torch" otherwise.
    "triton" with CPU tensors needs TRITON_INTERPRET=1 set before triton is imported (slow: for
    tests), and says so once in a warning.
    """
    global _warned
    checks.choice("backend", backend, BACKENDS)
    device = torch.device(device)
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_available() else "torch"
    if backend == "triton":
        if not triton_available():
            raise ValueError("backend='triton' needs the triton package (pip install triton)")
        if device.type != "cuda":
            if not interpreter_enabled():
                raise ValueError(f"backend='triton' needs CUDA tensors, got tensors on {device}; use "
                                 "backend='torch' on the CPU, or set TRITON_INTERPRET=1 before importing "
                                 "triton to run the kernels in Triton's (slow) interpreter")
            if not _warned:
                warnings.warn("backend='triton' on CPU tensors runs in Triton's interpreter: "
                              "correct but slow, meant for tests", RuntimeWarning, stacklevel=3)
                _warned = True
    return backend


def ops(backend, device):
    """The module implementing the ops for ``backend`` on ``device``."""
    if resolve(backend, device) == "triton":
        from . import kernels
        return kernels
    return reference
