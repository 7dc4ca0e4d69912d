"""The CPU backend's reused result buffers: a block is handed out again only once nothing can read it."""
import gc
import resource
import threading

import numpy as np
import pytest
import torch

pytest.importorskip("numba")
from tritonnmr.backends.numba import buffers  # noqa: E402

BIG = (256, 256, 4)  # 1 MiB of float32: pooled


def _address(a):
    return a.__array_interface__["data"][0]


def test_small_arrays_are_plain_numpy():
    a = buffers.empty((10, 3), np.float32)
    assert a.shape == (10, 3) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable


def test_a_block_comes_back_only_when_every_view_and_tensor_is_gone():
    buffers.release()
    a = buffers.empty(BIG, np.float32)
    address = _address(a)
    a.fill(7.0)
    view = a[1:].reshape(-1)[5:]  # numpy views of views
    tensor = torch.from_numpy(a[3])[2:]  # a tensor of a view, sliced
    del a
    gc.collect()
    others = [buffers.empty(BIG, np.float32) for _ in range(3)]
    assert address not in {_address(o) for o in others}
    for o in others:
        o.fill(-1.0)
    assert (view == 7.0).all() and (tensor == 7.0).all()  # still ours
    del view
    gc.collect()
    taken = [buffers.empty(BIG, np.float32) for _ in range(2)]
    assert address not in {_address(t) for t in taken}  # the tensor still holds it
    del tensor, others, taken
    gc.collect()
    taken = [buffers.empty(BIG, np.float32) for _ in range(6)]
    assert address in {_address(t) for t in taken}


def test_reuse_needs_no_new_pages_and_sizes_share_classes():
    buffers.release()
    sizes = [(512, 512, 3), (512, 512, 3), (500, 512, 3)]  # the last is a little smaller: same class
    assert len({buffers.size_class(int(np.prod(s)) * 4) for s in sizes}) == 1
    held = buffers.empty(sizes[0], np.float32)
    held.fill(1.0)
    del held
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for s in sizes:
        a = buffers.empty(s, np.float32)
        a.fill(2.0)  # 3 MiB written: 768 new pages if it were fresh memory
        del a
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults < 100


@pytest.mark.parametrize("nbytes", [1, 7, 8, 9, 15, 16, 17, 1000, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 5])
def test_size_classes_hold_the_request_and_waste_at_most_an_eighth(nbytes):
    size = buffers.size_class(nbytes)
    assert nbytes <= size <= nbytes + nbytes / 8 + 1


def test_idle_blocks_are_bounded_and_released(monkeypatch):
    buffers.release()
    monkeypatch.setattr(buffers, "IDLE_LIMIT_BYTES", 3 << 20)
    arrays = [buffers.empty(BIG, np.float32) for _ in range(6)]  # 6 MiB
    del arrays
    gc.collect()
    assert buffers.idle_bytes() <= 3 << 20
    buffers.release()
    assert buffers.idle_bytes() == 0


def test_zeros_and_full_clear_a_reused_block():
    buffers.release()
    a = buffers.empty(BIG, np.float32)
    a.fill(5.0)
    del a
    assert not buffers.zeros(BIG, np.float32).any()
    assert (buffers.full(BIG, -1, np.int64) == -1).all()


def test_threads_never_share_a_block():
    """Arrays taken and dropped from several threads at once: each thread's array keeps its values."""
    buffers.release()
    errors = []

    def worker(k):
        for i in range(50):
            a = buffers.empty(BIG, np.float32)
            a.fill(k * 1000 + i)
            if not (a == k * 1000 + i).all():
                errors.append((k, i))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
