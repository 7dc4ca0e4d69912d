"""The backend contract: which ops a backend provides, and which backend runs for which tensors.

A backend is a module defining every op of :data:`OPS` with exactly the parameter names of the
reference (``tritonnmr/backends/torch.py``, the oracle); docs/backend-contract.md gives the conventions.

| backend  | module                     | runs on                                                   |
|----------|----------------------------|-----------------------------------------------------------|
| "torch"  | tritonnmr.backends.torch   | any device: the readable PyTorch reference                |
| "triton" | tritonnmr.backends.triton  | CUDA tensors (CPU tensors in Triton's interpreter, tests) |
| "numba"  | tritonnmr.backends.numba   | CPU tensors: the fast CPU path (needs numba)              |

"auto" picks "triton" for CUDA tensors, "numba" for CPU tensors when numba imports, else "torch".
Shaders may add ops of their own with :func:`register_op`.
"""
import functools
import importlib
import os
import warnings
from typing import NamedTuple

# torch under another name: importing the submodule backends.torch sets this package's attribute ``torch``
import torch as _torch

from .. import checks

BACKENDS = ("auto", "torch", "triton", "numba")
MODULES = {name: f"tritonnmr.backends.{name}" for name in ("torch", "triton", "numba")}


class Op(NamedTuple):
    name: str
    arguments: str
    returns: str


OPS = (
    Op("rasterize_fragments", "faces (B,F,3,3), height, width, near, far",
       "face_index (B,H,W) int64, weights (B,H,W,3), depth (B,H,W)"),
    Op("perspective_barycentrics", "faces, face_index, weights, depth", "bary (B,H,W,3)"),
    Op("depth_backward", "faces, face_index, weights, depth, grad_depth (B,H,W)", "grad_faces (B,F,3,3)"),
    Op("edge_backward", "faces, face_index, image (B,H,W,C), grad_image (B,H,W,C), eps", "grad_faces (B,F,3,3)"),
    Op("sample_cubes", "face_index, bary (B,H,W,3), textures (B,F,T,T,T,C), eps", "(B,H,W,C)"),
    Op("sample_cubes_backward", "face_index, bary, grad (B,H,W,C), textures, eps", "(B,F,T,T,T,C)"),
    Op("interpolate", "face_index, bary, attributes (B,F,3,C)", "(B,H,W,C)"),
    Op("interpolate_backward", "face_index, bary, grad (B,H,W,C), attributes", "(B,F,3,C)"),
    Op("sample_uv", "face_index, bary, uvs (B,F,3,2), texels (N,C), material (B,F) int64, table (M,3) int64, wrap",
       "(B,H,W,C)"),
    Op("sample_uv_backward", "face_index, bary, grad (B,H,W,C), uvs, texels, material, table, wrap",
       "grad_uvs (B,F,3,2), grad_texels (N,C)"),
    Op("antialias_pairs", "faces (B,F,3,3), face_index (B,H,W), depth (B,H,W), silhouette (B,F,3) bool",
       "alpha (B,H,W,2), edge (B,H,W,2) int64"),
    Op("antialias", "image (B,H,W,C), alpha (B,H,W,2)", "(B,H,W,C)"),
    Op("antialias_backward", "faces, image, alpha, edge, grad (B,H,W,C)", "grad_image (B,H,W,C), grad_faces (B,F,3,3)"),
)
# Every shading op X is X(face_index, bary, *attributes, *extra) and X_backward(face_index, bary, grad,
# *attributes, *extra) -> the attributes' gradients in their order: shading.run_op drives them all. The
# built-in ones also have X_bary_backward (same arguments) -> (B,H,W,3), the gradient to bary, for
# estimators whose barycentrics depend on the faces (soft); it is pixel-local, and every backend shares
# the reference's.
OPS += (
    Op("interpolate_bary_backward", "face_index, bary, grad, attributes", "(B,H,W,3)"),
    Op("sample_cubes_bary_backward", "face_index, bary, grad, textures, eps", "(B,H,W,3)"),
    Op("sample_uv_bary_backward", "face_index, bary, grad, uvs, texels, material, table, wrap", "(B,H,W,3)"),
    # the soft rasterizer (gradient="soft"; backends/torch_soft.py gives the formulas)
    Op("soft_fragments", "faces (B,F,3,3), height, width, near, far, radius",
       "pixel (N,) int64, face (N,) int64 flat b F + f, d2 (N,), depth (N,), bary (N,3): the (pixel, face) pairs, "
       "pixel-major, faces ascending"),
    Op("soft_fragments_backward", "faces, height, width, pixel, face, grad_d2 (N,), grad_depth (N,), grad_bary (N,3)",
       "grad_faces (B,F,3,3)"),
    Op("soft_blend", "pixel, d2, depth, colours (N,C), background (C,), num_pixels, sigma, gamma, eps, near, far",
       "rgb (P,C), alpha (P,)"),
    Op("soft_blend_backward", "pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far, "
       "grad_rgb (P,C), grad_alpha (P,)", "grad_d2 (N,), grad_depth (N,), grad_colours (N,C)"),
)

_extra_ops = {}  # name -> {backend: function}, from register_op


def interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available(name: str) -> bool:
    """Whether backend ``name``'s module imports here (triton or numba may be missing)."""
    try:
        importlib.import_module(MODULES[name])
    except ImportError:
        return False
    return True


def resolve(backend: str, device) -> str:
    """The backend that runs for tensors on ``device``: "torch", "triton" or "numba".

    "triton" with CPU tensors needs TRITON_INTERPRET=1 set before triton is imported (slow: for
    tests) and says so once in a warning; "numba" needs CPU tensors.
    """
    checks.choice("backend", backend, BACKENDS)
    device = _torch.device(device)
    if backend == "auto":
        if device.type == "cuda" and available("triton"):
            return "triton"
        if device.type == "cpu" and available("numba"):
            return "numba"
        return "torch"
    if backend == "numba":
        if device.type != "cpu":
            raise ValueError(f"backend='numba' runs on CPU tensors, got tensors on {device}; use "
                             "backend='triton' or 'auto' on a GPU")
        if not available("numba"):
            raise ValueError("backend='numba' needs the numba package (pip install numba)")
    if backend == "triton":
        if not available("triton"):
            raise ValueError("backend='triton' needs the triton package (pip install triton)")
        if device.type != "cuda":
            if not interpreter_enabled():
                raise ValueError(f"backend='triton' needs CUDA tensors, got tensors on {device}; use "
                                 "backend='auto' on the CPU, or set TRITON_INTERPRET=1 before importing "
                                 "triton to run the kernels in Triton's (slow) interpreter")
            _warn_interpreter()
    return backend


@functools.lru_cache(maxsize=None)
def _warn_interpreter():
    """Say once per process that the Triton kernels run in the interpreter."""
    warnings.warn("backend='triton' on CPU tensors runs in Triton's interpreter: correct but slow, meant for "
                  "tests", RuntimeWarning, stacklevel=4)


def module(name: str):
    """The module implementing backend ``name`` ("torch", "triton" or "numba")."""
    return importlib.import_module(MODULES[name])


def ops_for(backend: str, device):
    """The backend module that runs for ``backend`` ("auto", ...) on tensors on ``device``."""
    return module(resolve(backend, device))


def op(name: str, backend: str, device):
    """The function implementing op ``name`` (a contract op or a registered one) for ``device``."""
    which = resolve(backend, device)
    if name in _extra_ops:
        table = _extra_ops[name]
        return table.get(which) or table["torch"]
    return getattr(module(which), name)


def has_op(name: str) -> bool:
    """Whether ``name`` is a contract op or a registered one."""
    return name in _extra_ops or name in {o.name for o in OPS}


def register_op(name: str, reference, triton=None, numba=None) -> None:
    """Add an op for a shader of your own: ``reference`` (plain torch) runs wherever no faster
    version is given; ``triton`` / ``numba`` are optional versions with the same signature."""
    if name in {o.name for o in OPS}:
        raise ValueError(f"op {name!r} is part of the backend contract and cannot be replaced")
    _extra_ops[name] = {k: v for k, v in (("torch", reference), ("triton", triton), ("numba", numba)) if v}
