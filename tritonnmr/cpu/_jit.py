"""The numba decorators every kernel of the CPU backend uses.

``jit``: compiled once per argument types and cached on disk (``cache=True``: the machine code is
reused by later processes, so the compile cost is paid once per clean checkout); IEEE arithmetic
(``error_model="numpy"``: a float division by zero gives inf or NaN instead of raising; no fastmath,
so float32 expressions are evaluated exactly as written, in the reference's order). ``pjit`` adds
``parallel=True`` for kernels whose outer loop is a ``prange`` over independent outputs: every
iteration writes only its own elements, so results do not depend on the number of threads.

Importing this module raises ImportError when numba is missing (the backend is then unavailable).
"""
import numba

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
pjit = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
prange = numba.prange

# For float sums whose order does not decide anything discrete (a walk's summed gradient): lets
# LLVM reassociate the sum so that the loop vectorises. The order it picks is fixed when the code
# is compiled, so the result is still the same on every run.
jit_sum = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
