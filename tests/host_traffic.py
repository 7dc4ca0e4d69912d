"""Count what host code makes a GPU wait for: device-to-host reads and tensors built from host data.

On a GPU every read of a device value (``.item()``, ``bool(t)``, ``.tolist()``, ``nonzero``, boolean
indexing, ``repeat_interleave`` without ``output_size``, ...) drains the queue, and every tensor made
from Python data (``torch.tensor``, ``new_tensor``, ``as_tensor``) is a host-to-device copy. The host
code is the same on the CPU, so these are counted here on CPU tensors: an operation counts when the
first frame outside torch that asked for it is tritonnmr's own code (reads that Triton's interpreter
makes to run a kernel, or that a test makes, are not counted).
"""
import contextlib
import os
import sys
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import tritonnmr

_PACKAGE = os.path.dirname(tritonnmr.__file__) + os.sep
_TORCH = os.path.dirname(torch.__file__) + os.sep
_HERE = os.path.abspath(__file__)

# aten ops that read device data back to the host (their output size or value depends on it)
_READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique_consecutive", "_unique2", "unique_dim"}
_BUILT = {"lift_fresh", "lift_fresh_copy"}


def _site():
    """'file:line' of the tritonnmr frame that asked for the current op, or None when the first frame
    outside torch (and this module) is someone else's."""
    frame = sys._getframe(2)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not (name.startswith(_TORCH) or name == _HERE or "<" in name):
            if name.startswith(_PACKAGE):
                return f"{os.path.relpath(name, _PACKAGE)}:{frame.f_lineno}"
            return None
        frame = frame.f_back
    return None


@dataclass
class Traffic:
    reads: list = field(default_factory=list)   # sites of device-to-host reads
    built: list = field(default_factory=list)   # sites of tensors built from host data

    def __str__(self):
        return f"{len(self.reads)} reads {sorted(self.reads)}, {len(self.built)} host-built {sorted(self.built)}"


class _Mode(TorchDispatchMode):
    def __init__(self, traffic):
        super().__init__()
        self.traffic = traffic

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        read = name in _READS
        if name == "index" and any(torch.is_tensor(i) and i.dtype == torch.bool for i in args[1] if i is not None):
            read = True  # boolean-mask indexing: the result's size is the mask's count
        if name == "index_put" and any(torch.is_tensor(i) and i.dtype == torch.bool for i in args[1] if i is not None):
            read = True
        if name == "repeat_interleave" and func.overloadpacket is torch.ops.aten.repeat_interleave \
                and kwargs.get("output_size") is None and len(args) < 3:
            read = True
        if read or name in _BUILT:
            site = _site()
            if site:
                (self.traffic.reads if read else self.traffic.built).append(site)
        return func(*args, **kwargs)


@contextlib.contextmanager
def count():
    """``with count() as traffic: ...``; then ``traffic.reads`` / ``traffic.built`` list the sites."""
    traffic = Traffic()
    patched = {}

    def wrap(method):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, **kwargs):
            site = _site()
            if site:
                traffic.reads.append(site)
            return original(self, *args, **kwargs)
        patched[method] = original
        setattr(torch.Tensor, method, counted)

    for method in ("tolist", "cpu", "numpy"):
        wrap(method)
    try:
        with _Mode(traffic):
            yield traffic
    finally:
        for method, original in patched.items():
            setattr(torch.Tensor, method, original)
