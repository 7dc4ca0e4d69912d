"""First-use compilation, announced: the CPU kernels (numba) and the GPU kernels (Triton) are compiled
the first time a process needs them and cached on disk for later processes. A command calls
:func:`prepare` before its progress bar starts: when the cache is cold it prints one line on stderr
(what is compiled, about how long it takes, that it is cached for next time), compiles what the
command needs by rendering a tiny scene the way the command will, and ends the line with the time it
took; so the bar's rate counts only the command's own steps. With a warm cache it prints nothing.

Whether the cache is cold is read from the caches' own indexes, without compiling anything: numba's
index file of each kernel (empty, missing or stale once its source changed), and Triton's cache folder
(no entry named after one of our kernels yet).
"""
import importlib
import os
import pkgutil
import re
import sys
import time

# Measured on this project's 2-core machine (Intel Xeon, shared; numba 0.68, an empty NUMBA_CACHE_DIR):
# compile_kernels took 36-37 s cold; with the cache warm, prepare() reads the indexes in 0.5 s and compiles nothing
NUMBA_COMPILE_SECONDS = "about 40 s"
# Triton's first compile on an H100 (triton 3.x): a few seconds per kernel, about a minute for all.
TRITON_COMPILE_SECONDS = "about a minute"


def numba_kernels():
    """Every cached numba kernel of the CPU backend (imports the backend's modules)."""
    from numba.core.registry import CPUDispatcher

    from ..backends import numba as package
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found += [obj for obj in vars(module).values()
                  if isinstance(obj, CPUDispatcher) and getattr(obj, "_cache", None) is not None
                  and obj.__module__ == module.__name__]
    return found


# kernels of the library's VertexColorShader, which no command uses: not compiled up front
NOT_IN_COMMANDS = ("interpolate", "interpolate_backward")


def _entry_kernels(kernels):
    """The kernels Python calls: not those only other kernels call (numba compiles those into their
    callers and caches nothing of their own), told by a call of their name in another kernel's source."""
    import inspect
    sources = {k: inspect.getsource(k.py_func) for k in kernels}
    called = {name for k in kernels for name in re.findall(r"\b(\w+)\(", sources[k].split(":", 1)[-1])}
    return [k for k in kernels if k.__name__ not in called and k.__name__ not in NOT_IN_COMMANDS]


def numba_cold():
    """Names of the CPU kernels with nothing usable in numba's on-disk cache (cheap: reads the indexes)."""
    cold = []
    for kernel in _entry_kernels(numba_kernels()):
        try:
            index = kernel._cache._cache_file._load_index()
        except Exception:  # an unreadable index: numba will compile
            index = {}
        if not index:
            cold.append(kernel.__name__)
    return cold


def _triton_kernel_names():
    import triton

    from ..backends import triton as package
    names = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        names |= {obj.__name__ for obj in vars(module).values()
                  if isinstance(obj, triton.runtime.jit.JITFunction) and obj.__module__ == module.__name__}
    return names


def triton_cold():
    """Names of our Triton kernels with no entry in Triton's cache folder (TRITON_CACHE_DIR or ~/.triton/cache)."""
    folder = os.environ.get("TRITON_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".triton", "cache")
    seen = set()
    if os.path.isdir(folder):
        for entry in os.scandir(folder):
            if entry.is_dir():
                seen |= {os.path.splitext(name)[0] for name in os.listdir(entry.path) if name.endswith(".json")}
    return sorted(_triton_kernel_names() - seen)


def _tiny_scene(device):
    import torch
    v = torch.tensor([[[-0.5, -0.5, -0.4], [0.5, -0.5, -0.4], [0.0, 0.5, -0.4], [0.0, 0.0, 0.5]]], device=device)
    f = torch.tensor([[[0, 1, 2], [0, 1, 3], [1, 2, 3], [2, 0, 3]]], dtype=torch.int32, device=device)
    return v, f


def compile_kernels(backend, device):
    """Render a 4-face scene at 8 x 8 every way the commands do (silhouettes, depth, colours from texture
    cubes and from a UV image; anti-aliased or not; every gradient estimator; forward and
    backward), which compiles every kernel once, into the caches."""
    import torch

    import tritonnmr as nr
    from ..gradients import ESTIMATORS
    v, f = _tiny_scene(device)
    uvs = torch.rand(1, 4, 3, 2, generator=torch.Generator().manual_seed(0)).to(device)
    for gradient in ESTIMATORS:
        for aa in (True, False):
            r = nr.Renderer(image_size=8, camera_mode="look_at", backend=backend, gradient=gradient,
                            anti_aliasing=aa)
            vertices = v.clone().requires_grad_(True)
            cubes = torch.full((1, 4, 2, 2, 2, 3), 0.5, device=device, requires_grad=True)
            image = torch.full((1, 4, 4, 3), 0.5, device=device, requires_grad=True)
            loss = r(vertices, f, mode="silhouettes").sum() + r(vertices, f, mode="depth").sum()
            for textures in (cubes, (uvs, image)):
                rgb, depth, alpha = r(vertices, f, textures)
                loss = loss + rgb.sum() + alpha.sum()
            loss.backward()


def prepare(backend, device, stream=None):
    """Compile, announced in one line on ``stream`` (stderr), the backend's kernels when its cache is
    cold; nothing when it is warm. -> seconds spent compiling (0 when warm)."""
    import torch

    from .. import backends
    device = torch.device(device)
    name = backends.resolve(backend, device)
    if name == "numba":
        cold, what, typical = numba_cold(), "the CPU kernels (numba)", NUMBA_COMPILE_SECONDS
    elif name == "triton" and device.type == "cuda":
        cold, what, typical = triton_cold(), "the GPU kernels (Triton)", TRITON_COMPILE_SECONDS
    else:
        return 0.0
    if not cold:
        return 0.0
    stream = stream or sys.stderr
    print(f"tritonnmr: compiling {what} once, usually {typical}; cached for next time ...", end="", file=stream,
          flush=True)
    start = time.time()
    compile_kernels(backend, device)
    seconds = time.time() - start
    print(f" done in {seconds:.0f} s", file=stream, flush=True)
    return seconds
