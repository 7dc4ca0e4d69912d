"""The numba decorators every kernel of the CPU backend uses, and its thread pool.

``jit``: compiled once per argument types and cached on disk (``cache=True``: the machine code is
reused by later processes, so the compile cost is paid once per clean checkout); IEEE arithmetic
(``error_model="numpy"``: a float division by zero gives inf or NaN instead of raising; no fastmath,
so float32 expressions are evaluated exactly as written, in the reference's order: ``fastmath=False``
is given explicitly, because numba lets a function that sets none inherit its caller's, and a walk's
``reassoc`` would otherwise reach the helpers it calls, and reach them or not depending on which caller
compiled them first); ``nogil=True``, so compiled code runs without holding the GIL. numba keys its
disk cache on each kernel module's source, not on these flags: after changing them, clear the cache
(``__pycache__/*.nbi``, ``*.nbc``).

``run_jobs`` spreads a kernel's independent jobs over Python threads (each runs compiled, GIL-free
code). Every job writes only its own outputs and visits its inputs in a fixed order, so results do
not depend on the number of threads, nor on which thread ran which job. The jobs are cut into
pieces that the threads claim one at a time, the calling thread among them, and nobody spins while
waiting: when another process keeps a core busy, the threads that do get a core take the pieces the
others cannot, so a step with T threads on a shared machine is not slower than one thread by more
than about the piece a descheduled thread holds (at 2 threads the first pieces are a quarter and three
sixteenths of a pass, the last ones a thirty-second; see piece_bounds). Plain threads instead of
numba's ``parallel=True``: numba's default OpenMP layer (GNU libgomp) kills a forked child process
that starts a parallel region ("fork() called from a process already using GNU OpenMP"), which would
break ``multiprocessing`` and DataLoader workers that render after the parent has; and the parallel
compiler passes add seconds of first-use compile time.

Importing this module raises ImportError when numba is missing (the backend is then unavailable).
"""
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba.np.ufunc import parallel as _numba_parallel

jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)

# For helpers of a hot loop that only index and slice the arrays they are given (they allocate
# nothing): compiled without numba's reference counting, which would otherwise count every array
# argument and view in and out with an atomic add on each call (a quarter of the blurred edge's
# time: its crossings make millions of calls)
jit_view = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False, _nrt=False)

# The same, for float sums whose order does not decide anything discrete (a walk's summed gradient):
# LLVM may reassociate this function's own additions so that the loop vectorises (the helpers it
# calls stay exact, see above). The order it picks is fixed when the code is compiled, so the result
# is still the same on every run and thread count.
jit_sum_view = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"}, _nrt=False)

_pool = {}  # threads -> ThreadPoolExecutor (emptied in a forked child: its threads did not survive)
_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.clear)


def threads():
    """Threads the kernels use: numba's setting (NUMBA_NUM_THREADS, or numba.set_num_threads once numba's
    threading layer runs), read without starting that layer: starting it (numba.get_num_threads does)
    calls omp_set_num_threads(NUMBA_NUM_THREADS) in the OpenMP runtime torch shares, so torch's own
    thread setting would silently change with the first render."""
    if _numba_parallel._is_initialized:
        return max(1, numba.get_num_threads())
    return max(1, numba.config.NUMBA_NUM_THREADS)


# Pieces shrink as the jobs run out ("guided" self-scheduling): each claim takes 1 / (PIECE_DIVISOR x
# threads) of the jobs still unclaimed, and none fewer than 1 / (SMALLEST_PIECE_SHARE x threads) of all
# of them. The first pieces are large (a claim costs a compiled call's dispatch, a few microseconds), the
# last ones small, so the thread that ends first waits on the other for at most a small piece (with equal
# pieces of an eighth, the caller of a one-image pass waited 0.05-0.11 ms on the pool thread's last one)
PIECE_DIVISOR = 2
SMALLEST_PIECE_SHARE = 16
# A pass over fewer values than this runs on the calling thread alone: waking a sleeping pool thread
# costs 0.03-0.08 ms on our 2-core virtual machines (benchmarks/cpu_numba.py measures it), and a
# memory-bound pass over this many float32 values takes about 0.3 ms, so below it the second thread
# would spend much of its share waking up
MIN_PARALLEL_WORK = 1 << 17


@functools.lru_cache(maxsize=256)  # a step asks for the same few (jobs, count) every time
def piece_bounds(jobs, count):
    """The guided pieces ((0, hi_0), (hi_0, hi_1), ..., (lo_n, jobs)) for ``count`` threads (see PIECE_DIVISOR)."""
    smallest = max(1, jobs // (count * SMALLEST_PIECE_SHARE))
    bounds = [0]
    while bounds[-1] < jobs:
        left = jobs - bounds[-1]
        bounds.append(min(jobs, bounds[-1] + max(smallest, -(-left // (PIECE_DIVISOR * count)))))
    return tuple(zip(bounds[:-1], bounds[1:]))


def run_jobs(kernel, jobs, *args, work=None, uneven=False, cost=None):
    """Run ``kernel(lo, hi, *args)`` over jobs [0, jobs) cut into contiguous pieces [lo, hi), on
    T = min(threads(), jobs) threads: the caller and T - 1 pool threads claim the pieces in turn.
    ``work``: the values a memory-bound pass touches (below MIN_PARALLEL_WORK: one thread).
    ``uneven``: the jobs' costs differ widely (bands or scanlines of one picture: the empty ones at its
    border cost nothing), so each job is a piece of its own and the threads end together.
    ``cost``: with ``uneven``, an estimate of each job's cost (jobs numbers, an array): the jobs are
    claimed costliest first (ties in job order), so the last ones claimed are the cheap ones (the
    longest-first rule) and neither thread is left running a big job alone at the end."""
    count = 1 if work is not None and work < MIN_PARALLEL_WORK else min(threads(), jobs)
    if count <= 1:
        if jobs > 0:
            kernel(0, jobs, *args)
        return
    if uneven:
        order = range(jobs) if cost is None else np.argsort(-np.asarray(cost), kind="stable").tolist()
        pieces = [(j, j + 1) for j in order]
    else:
        pieces = piece_bounds(jobs, count)
    claim = iter(pieces)  # next() on a tuple or list iterator is atomic under the GIL

    def work():
        for lo, hi in claim:
            kernel(lo, hi, *args)
    with _lock:
        pool = _pool.get(count - 1)
        if pool is None:
            pool = _pool[count - 1] = ThreadPoolExecutor(max_workers=count - 1, thread_name_prefix="tritonnmr-cpu")
    helpers = [pool.submit(work) for _ in range(count - 1)]
    try:
        work()
    finally:
        for helper in helpers:  # one that has not started (its thread not yet woken) has nothing left
            if not helper.cancel():
                helper.result()
