"""Thread counts of the CPU backends: torch's pool and numba's."""
import torch

from . import backends


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch and in numba's pool (at most the pool numba started with).

    numba's first, as starting its threading layer sets the OpenMP thread count torch shares."""
    if backends.available("numba"):
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(n)
