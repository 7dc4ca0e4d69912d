"""The second half of every balanced backward pass: add a cut segment's partial sums, in slot order.

An item of a cut segment (binning.split_segments) wrote its D sums into its own row (slot) of a
partial buffer (slots, D); here one program per cut segment and block of DB columns adds the
segment's rows ROWS at a time, ``out[segment] = sum of rows [first, first + count)``. The rows of
one trip are added by a fixed reduction tree and the trips in order: deterministic, no atomics.
"""
import triton
import triton.language as tl


@triton.jit(do_not_specialize=["D"])
def segment_sum_kernel(partial_ptr, split_segment_ptr, split_first_ptr, split_count_ptr, out_ptr, D,
                       ROWS: tl.constexpr, DB: tl.constexpr):
    """out[segment, d] = sum over the segment's slots s of partial[s, d], for DB columns d."""
    s = tl.program_id(0)
    cols = tl.program_id(1) * DB + tl.arange(0, DB)
    segment = tl.load(split_segment_ptr + s).to(tl.int64)
    first = tl.load(split_first_ptr + s).to(tl.int64)
    count = tl.load(split_count_ptr + s)
    acc = tl.zeros([ROWS, DB], tl.float32)
    for r in range(0, count, ROWS):
        rows = r + tl.arange(0, ROWS)
        m = (rows < count)[:, None] & (cols < D)[None, :]
        acc += tl.load(partial_ptr + (first + rows)[:, None] * D + cols[None, :], mask=m, other=0.0)
    tl.store(out_ptr + segment * D + cols, tl.sum(acc, axis=0), mask=cols < D)
