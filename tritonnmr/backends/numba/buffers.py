"""Result buffers of the CPU backend, reused from step to step instead of fresh from the OS.

A training step allocates the same image- and face-sized arrays every time (the z-buffer's maps, the
barycentrics, the shaded image, their gradients: about 25 MB for one 512 x 512 render; the blurred
edge's crossing lists, face boxes, the faces' gradients: a few MB for a batch of meshes). Fresh
memory from ``np.empty`` is mapped by the kernel one 4 KiB page at a time on first touch, and
``np.zeros`` adds a pass that clears it: on our 2-core virtual machines the page faults alone took a
fifth of a teapot step's CPU time (2,900 faults, 9 ms of system time in 46 ms), paid inside the
parallel passes, where the two threads then wait on each other's faults.

``empty(shape, dtype)`` hands out a numpy array over a block that an earlier array of the same size
class gave back: already mapped, warm in the cache. The array is the root of everything made from
it (numpy views of it, ``torch.from_numpy`` tensors, reshapes of those all keep it alive), and its
block returns to the pool when the last of them is gone (a ``weakref.finalize`` on the root). So a
block is never handed out twice while anything can still read it.

What stays idle in the pool is bounded by IDLE_LIMIT_BYTES; a block that would go beyond it is freed.
Arrays under POOL_MIN_BYTES come from ``np.empty``: malloc keeps such small blocks mapped itself.
``release()`` frees every idle block (e.g. after rendering at a size that will not come back).
"""
import math
import os
import threading
import weakref

import numpy as np

POOL_MIN_BYTES = 1 << 18  # 256 KiB: malloc reuses smaller blocks without going back to the OS
IDLE_LIMIT_BYTES = 1 << 30  # idle blocks kept for reuse, in all
CLASS_BITS = 3  # 2^3 size classes per power of two: a block is at most 1/8 larger than asked


def size_class(nbytes):
    """The block size for ``nbytes``: the next multiple of 2^(k - CLASS_BITS) at or above it, where
    2^k <= nbytes < 2^(k + 1)."""
    step = 1 << max(nbytes.bit_length() - 1 - CLASS_BITS, 0)
    return -(-nbytes // step) * step


class _Pool:
    def __init__(self):
        self.idle = {}  # block size -> [bytearray]
        self.idle_bytes = 0
        self.lock = threading.RLock()  # re-entrant: a finalizer may run while this thread holds it

    def take(self, size):
        with self.lock:
            blocks = self.idle.get(size)
            if blocks:
                self.idle_bytes -= size
                return blocks.pop()
        return bytearray(size)

    def give_back(self, block):
        with self.lock:
            if self.idle_bytes + len(block) <= IDLE_LIMIT_BYTES:
                self.idle.setdefault(len(block), []).append(block)
                self.idle_bytes += len(block)

    def release(self):
        with self.lock:
            self.idle.clear()
            self.idle_bytes = 0


_pool = _Pool()
if hasattr(os, "register_at_fork"):  # a lock held by another thread at fork would never be released
    os.register_at_fork(after_in_child=lambda: setattr(_pool, "lock", threading.RLock()))


def empty(shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, on a reused block when large."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:
        return np.empty(shape, dtype)
    block = _pool.take(size_class(nbytes))
    root = np.frombuffer(block, dtype, count)
    weakref.finalize(root, _pool.give_back, block).atexit = False
    return root.reshape(shape)


def zeros(shape, dtype):
    """:func:`empty`, cleared."""
    out = empty(shape, dtype)
    out.fill(0)
    return out


def full(shape, value, dtype):
    """:func:`empty`, filled with ``value``."""
    out = empty(shape, dtype)
    out.fill(value)
    return out


def release():
    """Free the idle blocks (the arrays still in use keep theirs until they are gone)."""
    _pool.release()


def idle_bytes():
    """Bytes held by idle blocks."""
    return _pool.idle_bytes
