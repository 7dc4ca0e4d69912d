"""The blurred-edge backward (Kato et al. 2018, section 3.3), one scanline at a time.

For each edge (a, b) of a visible front face (third vertex c) and each axis, every integer
scanline d0 the edge crosses is a *crossing*; ``u`` indexes the scanlines, ``w`` runs along them,
and the edge crosses scanline d0 at ``w_x``. ``d_in`` is the last pixel inside (floor or ceil of
w_x on the outward side), ``d_out = d_in + direction`` the first outside.

- out: when pixel d_in is this face's, every pixel d1 from d_out to the border could be covered
  by moving the edge outwards; it would take the in-pixel's colour:
  ``delta = sum_c (I[d1] - I[d_in]) dL/dI[d1]``.
- in: every pixel of this face from d_in to where the scanline leaves the face (edge a-c or c-b,
  rounded outward) could be uncovered by moving the edge inwards: ``delta = sum_c (I[d1] - I[d_out]) dL/dI[d1]``.

When delta > 0 the move lowers the loss: vertex a gets ``-delta / dist_a`` with
``dist_a = (u_b - u_a) / (u_b - d0) * (d1 - w_x) * 2 / N_w`` (how far a alone must move along w, in
NDC; N_w the number of pixels along w), vertex b likewise with ``(u_b - u_a) / (d0 - u_a)``; each
dist is pushed away from zero by eps.

Axis 0 scans image columns (u = px, w = py) and moves the vertices along y; axis 1 scans rows
(u = py, w = px) and moves them along x.

How it runs, in three passes:

1. ``visible_faces`` lists the faces that cover a pixel (at most H * W per image, whatever F is);
   ``count_crossings``: each of their (edge, axis) pairs gets its scanline range; a face's crossings
   get consecutive ids in (edge, axis, d0) order, and each scanline a list of the crossings on it
   (``list_by_scanline``: a counting sort), each entry with its face, its geometry (w_x, k_a, k_b,
   w_far: ``crossing_geometry``, computed while the face's edge is at hand, its slopes divided once)
   and flags. These passes run one batch entry (the sort: one entry's columns or rows) per job: an
   entry's faces are a contiguous run of the visible ones, and its scanlines are its own.
2. ``scanline_kernel``: one job per block of scanlines. A scanline's pixels are copied once into a
   small channel-planar buffer (C image planes, C gradient planes, the face index), and every
   crossing on it walks that buffer: each pixel read once per crossing from L1, the deltas in a
   vectorised loop, and the crossing's two sums written to the entry's row (in list order).
3. ``sum_crossings``: each face adds its crossings' sums in id order (each id's row from ``place``)
   and writes its gradient once (the faces shared out among the jobs).

The scan geometry (w_x, d_in, the limits) and every pixel's delta are computed in float32 exactly as
the reference does; a walk's sum is vectorised (its order is fixed at compile time) and faces sum
in float64. Nothing depends on which thread ran what: the result is bit-identical for any number of
threads. Memory: the crossing table (a few numbers per crossing) and one scanline buffer per job.
The helpers the crossings call (the walks, crossing_gradient, the scanline's loading) are compiled
without reference counting (``jit_view``): counting their array arguments cost a quarter of the time.
"""

import numpy as np

from . import buffers
from ._jit import jit, jit_sum_view, jit_view, run_jobs

BLOCKS = 64  # scanline blocks of the scanline kernel
MAX_CROSSINGS = 1 << 22  # crossings handled at once (faces are taken in groups below this)


@jit
def mark_visible(lo, hi, faces, face_index, seen):
    """seen[b, f] (zeroed) <- face f of batch entry b is front-facing and covers at least one pixel:
    the only faces that get a blurred-edge gradient (at most H * W per entry); entries lo .. hi - 1."""
    for b in range(lo, hi):
        for p in range(face_index.shape[1]):
            for q in range(face_index.shape[2]):
                f = face_index[b, p, q]
                if f >= 0:
                    seen[b, f] = True
        for f in range(faces.shape[1]):
            if seen[b, f]:
                x0, y0 = faces[b, f, 0, 0], faces[b, f, 0, 1]
                x1, y1 = faces[b, f, 1, 0], faces[b, f, 1, 1]
                x2, y2 = faces[b, f, 2, 0], faces[b, f, 2, 1]
                seen[b, f] = (y2 - y0) * (x1 - x0) > (y1 - y0) * (x2 - x0)


def visible_faces(faces, face_index):
    """(ids, entries): the ascending flat indices n = b * F + f (int64) of the visible faces (see
    mark_visible; one job per batch entry), and entries (B + 1,): entry b's faces are
    ids[entries[b]:entries[b + 1]]."""
    B, F = faces.shape[:2]
    seen = np.zeros((B, F), np.bool_)
    run_jobs(mark_visible, B, faces, face_index, seen)
    ids = np.flatnonzero(seen).astype(np.int64, copy=False)
    return ids, np.searchsorted(ids, np.arange(B + 1, dtype=np.int64) * F)


@jit
def slot_geometry(faces, b, f, slot, height, width):
    """Edge (a, v) = (e, e + 1) with third vertex c, for slot = 2 e + axis, in pixel coordinates
    ``0.5 (v N + N - 1)``: (u_a, w_a, u_v, w_v, u_c, w_c, outward, scanlines, pixels per scanline).
    ``outward`` is the direction along w away from the face when u_a < u_v (reversed otherwise):
    -1 for axis 0 (columns, u = px, w = py), +1 for axis 1 (rows, u = py, w = px)."""
    e, axis = slot // 2, slot % 2
    a, v, c = e, (e + 1) % 3, (e + 2) % 3
    hf, wf = np.float32(height), np.float32(width)
    half, one = np.float32(0.5), np.float32(1.0)
    pxa = half * (faces[b, f, a, 0] * wf + wf - one)
    pxv = half * (faces[b, f, v, 0] * wf + wf - one)
    pxc = half * (faces[b, f, c, 0] * wf + wf - one)
    pya = half * (faces[b, f, a, 1] * hf + hf - one)
    pyv = half * (faces[b, f, v, 1] * hf + hf - one)
    pyc = half * (faces[b, f, c, 1] * hf + hf - one)
    if axis == 0:
        return pxa, pya, pxv, pyv, pxc, pyc, -1, width, height
    return pya, pxa, pyv, pxv, pyc, pxc, 1, height, width


@jit
def scanline_range(ua, ub, n_u):
    """First and last scanline (first > last: none) that edge u_a -> u_b crosses among n_u."""
    if not ua != ub:  # also NaN
        return 1, 0
    first = max(np.ceil(min(ua, ub)), np.float32(0.0))
    last = min(np.floor(max(ua, ub)), np.float32(n_u) - np.float32(1.0))
    if last < first:
        return 1, 0
    return int(first), int(last)


@jit
def count_crossings(lo, hi, faces, ids, entries, height, width, first, counts):
    """For each visible face v of batch entries lo .. hi - 1 (flat index ids[v]): first[v, slot]
    (first scanline) and counts[v, slot] (crossings) of each of the six (edge, axis) slots."""
    F = faces.shape[1]
    for v in range(entries[lo], entries[hi]):
        b, f = ids[v] // F, ids[v] % F
        for slot in range(6):
            ua, _, ub, _, _, _, _, n_u, _ = slot_geometry(faces, b, f, slot, height, width)
            d_first, d_last = scanline_range(ua, ub, n_u)
            first[v, slot] = d_first if d_last >= d_first else 0
            counts[v, slot] = max(d_last - d_first + 1, 0)


@jit
def _line_base(b, slot, height, width):
    """Id of scanline 0 of (entry b, the slot's axis): columns b * (W + H) + d0, rows b * (W + H) + W + d0."""
    return b * (width + height) + (0 if slot % 2 == 0 else width)


@jit
def count_lines(lo, hi, entries, group_lo, group_hi, first, counts, height, width, starts):
    """starts[line + 1] (zeroed) <- the crossings on each scanline by the visible faces v in
    [group_lo, group_hi); jobs 2 b + axis in lo .. hi - 1 (each owns batch entry b's columns (axis 0)
    or rows (axis 1))."""
    for job in range(lo, hi):
        b, axis = job // 2, job % 2
        base = _line_base(b, axis, height, width)
        for v in range(max(entries[b], group_lo), min(entries[b + 1], group_hi)):
            for slot in range(axis, 6, 2):
                for d0 in range(first[v, slot], first[v, slot] + counts[v, slot]):
                    starts[base + d0 + 1] += 1


# a crossing's flags: which way is outward along w, and which vertices a move of the crossing moves
FORWARD, USE_A, USE_B = 1, 2, 4


@jit
def crossing_geometry(ua, wa, ub, uc, wc, ab, ac, cb, d0f):
    """(w_x, k_a, k_b, w_far, use_a, use_b) of edge (a, b)'s crossing with scanline d0 (ab, ac, cb: the
    slopes dw/du of edges a-b, a-c and c-b). w_x: where the edge crosses it; k_a (k_b): how far vertex
    a (b) alone must move per pixel of crossing shift, none (use_a false, k 1) when the other vertex
    lies on d0; w_far: where the scanline leaves the face through edge a-c when d0 lies strictly
    between u_a and u_c, else through c-b. Float32, as the reference computes each."""
    wx = wa + ab * (d0f - ua)
    span = ub - ua
    use_a, use_b = ub != d0f, ua != d0f
    k_a = span / (ub - d0f) if use_a else np.float32(1.0)
    k_b = span / (d0f - ua) if use_b else np.float32(1.0)
    if (d0f - ua) * (d0f - uc) < 0:
        w_far = wa + ac * (d0f - ua)
    elif ub == uc:
        w_far = wc
    else:
        w_far = wc + cb * (d0f - uc)
    return wx, k_a, k_b, w_far, use_a, use_b


@jit
def fill_lines(lo, hi, ids, entries, group_lo, group_hi, faces, first, counts, offsets, height, width, starts,
               owner, geometry, flags, place):
    """The entries starts[line]:starts[line + 1] (starts: the lines' prefix sums) of each scanline, in
    ascending v (so ascending crossing ids per line): face f (ids[v] = b * F + f), the crossing's
    geometry (crossing_geometry) and flags; place[id] <- the crossing's entry, for crossing id
    offsets[v, slot] + d0 - first[v, slot]. Jobs 2 b + axis in lo .. hi - 1 (as count_lines)."""
    F = faces.shape[1]
    for job in range(lo, hi):
        b, axis = job // 2, job % 2
        first_line = _line_base(b, axis, height, width)
        fill = starts[first_line:first_line + (width if axis == 0 else height)].copy()
        for v in range(max(entries[b], group_lo), min(entries[b + 1], group_hi)):
            f = ids[v] - b * F
            for slot in range(axis, 6, 2):
                if counts[v, slot] == 0:
                    continue
                ua, wa, ub, wb, uc, wc, outward, _, _ = slot_geometry(faces, b, f, slot, height, width)
                # the slopes of the three edges, as the per-crossing expressions divide them
                ab, ac, cb = (wb - wa) / (ub - ua), (wc - wa) / (uc - ua), (wb - wc) / (ub - uc)
                forward = (outward if ua < ub else -outward) > 0
                for j in range(counts[v, slot]):
                    d0 = first[v, slot] + j
                    k = fill[d0]
                    fill[d0] += 1
                    place[offsets[v, slot] + j] = k
                    owner[k] = f
                    wx, k_a, k_b, w_far, use_a, use_b = crossing_geometry(ua, wa, ub, uc, wc, ab, ac, cb,
                                                                          np.float32(d0))
                    geometry[k, 0], geometry[k, 1], geometry[k, 2], geometry[k, 3] = wx, k_a, k_b, w_far
                    flags[k] = (FORWARD if forward else 0) | (USE_A if use_a else 0) | (USE_B if use_b else 0)


def list_by_scanline(ids, entries, lo, hi, faces, first, counts, offsets, height, width):
    """(starts, owner, geometry, flags, place) for visible faces v in [lo, hi): the crossings on
    scanline ``line`` (see _line_base) are entries starts[line]:starts[line + 1], each with its face,
    geometry and flags; crossing id i is entry place[i] (fill_lines). One job per batch entry and
    axis for the counting and for the filling."""
    B = entries.size - 1
    starts = np.zeros(B * (width + height) + 1, np.int64)
    # one add per crossing: below MIN_PARALLEL_WORK crossings the pool thread would mostly wake up
    run_jobs(count_lines, 2 * B, entries, lo, hi, first, counts, height, width, starts,
             work=int(counts[lo:hi].sum()))
    np.cumsum(starts, out=starts)
    total = int(starts[-1])
    owner, place = buffers.empty((total,), np.int32), buffers.empty((total,), np.int32)
    geometry, flags = buffers.empty((total, 4), np.float32), buffers.empty((total,), np.int8)
    run_jobs(fill_lines, 2 * B, ids, entries, lo, hi, faces, first, counts, offsets, height, width, starts, owner,
             geometry, flags, place)
    return starts, owner, geometry, flags, place


@jit
def _push(dist, eps):
    """dist pushed away from zero by eps (a zero distance counts as negative)."""
    return dist + eps if dist > 0 else dist - eps


@jit
def _move(dl, d1, wx, scale, k_a, k_b, eps):
    """(-delta / dist_a, -delta / dist_b) at pixel d1 when delta > 0, else zeros; dist = k (d1 - wx)
    scale pushed away from zero by eps."""
    zero = np.float32(0.0)
    shift = (np.float32(d1) - wx) * scale
    da = _push(k_a * shift, eps)
    db = _push(k_b * shift, eps)
    return (-dl / da if dl > 0 else zero), (-dl / db if dl > 0 else zero)


@jit
def _delta1(v0, i0, g0):
    return (v0 - i0) * g0


@jit
def _delta3(v0, v1, v2, i0, i1, i2, g0, g1, g2):
    """sum_c (v_c - i_c) g_c, channels in order (as a loop over channels adds them)."""
    d = (v0 - i0) * g0
    d += (v1 - i1) * g1
    d += (v2 - i2) * g2
    return d


@jit
def _delta4(v0, v1, v2, v3, i0, i1, i2, i3, g0, g1, g2, g3):
    d = (v0 - i0) * g0
    d += (v1 - i1) * g1
    d += (v2 - i2) * g2
    d += (v3 - i3) * g3
    return d


# The walks: the summed -delta / dist over pixels lo .. hi of a scanline for both vertices, with
# delta against the colour ``ref`` (a pixel index of the same scanline). The delta and move of each
# pixel are computed exactly as written (the helpers above are compiled without fast-math flags even
# when a walk calls them: ``jit`` sets fastmath=False); only the two running sums are reassociated,
# so the loop vectorises. A walk covers a few dozen pixels, so the loop runs over whole
# blocks of WALK_BLOCK pixels (the pixels past hi masked to a zero delta): the vectorised loop then
# has no scalar remainder, which took most of a short walk's time. ``line`` holds WALK_BLOCK - 1
# columns of padding past the scanline. One version per common channel count (silhouettes: 1,
# rgb: 3, rgb + alpha: 4) and a two-pass one for any other.
WALK_BLOCK = 32  # two 16-lane (AVX-512) or four 8-lane (AVX2) vectors


@jit
def _padded(lo, hi):
    """(pixels of lo .. hi, that count rounded up to whole walk blocks)."""
    n = hi + 1 - lo
    return n, (n + WALK_BLOCK - 1) // WALK_BLOCK * WALK_BLOCK


@jit_sum_view
def walk1(line, ref, lo, hi, wx, scale, k_a, k_b, eps):
    i0 = line[0, ref]
    n, padded = _padded(lo, hi)
    v0, g0 = line[0, lo:lo + padded], line[1, lo:lo + padded]
    ga, gb = np.float32(0.0), np.float32(0.0)
    for j in range(padded):
        dl = _delta1(v0[j], i0, g0[j]) if j < n else np.float32(0.0)
        a, b = _move(dl, lo + j, wx, scale, k_a, k_b, eps)
        ga += a
        gb += b
    return ga, gb


@jit_sum_view
def walk3(line, ref, lo, hi, wx, scale, k_a, k_b, eps):
    i0, i1, i2 = line[0, ref], line[1, ref], line[2, ref]
    n, padded = _padded(lo, hi)
    end = lo + padded
    v0, v1, v2 = line[0, lo:end], line[1, lo:end], line[2, lo:end]
    g0, g1, g2 = line[3, lo:end], line[4, lo:end], line[5, lo:end]
    ga, gb = np.float32(0.0), np.float32(0.0)
    for j in range(padded):
        dl = _delta3(v0[j], v1[j], v2[j], i0, i1, i2, g0[j], g1[j], g2[j]) if j < n else np.float32(0.0)
        a, b = _move(dl, lo + j, wx, scale, k_a, k_b, eps)
        ga += a
        gb += b
    return ga, gb


@jit_sum_view
def walk4(line, ref, lo, hi, wx, scale, k_a, k_b, eps):
    i0, i1, i2, i3 = line[0, ref], line[1, ref], line[2, ref], line[3, ref]
    n, padded = _padded(lo, hi)
    end = lo + padded
    v0, v1, v2, v3 = line[0, lo:end], line[1, lo:end], line[2, lo:end], line[3, lo:end]
    g0, g1, g2, g3 = line[4, lo:end], line[5, lo:end], line[6, lo:end], line[7, lo:end]
    ga, gb = np.float32(0.0), np.float32(0.0)
    for j in range(padded):
        dl = _delta4(v0[j], v1[j], v2[j], v3[j], i0, i1, i2, i3, g0[j], g1[j], g2[j], g3[j]) if j < n \
            else np.float32(0.0)
        a, b = _move(dl, lo + j, wx, scale, k_a, k_b, eps)
        ga += a
        gb += b
    return ga, gb


@jit_sum_view
def _walk_deltas(delta, lo, wx, scale, k_a, k_b, eps):
    ga, gb = np.float32(0.0), np.float32(0.0)
    for j in range(delta.shape[0]):
        a, b = _move(delta[j], lo + j, wx, scale, k_a, k_b, eps)
        ga += a
        gb += b
    return ga, gb


@jit_view
def walk(line, ref, lo, hi, wx, scale, k_a, k_b, eps, scratch):
    """The walk for any channel count C (line holds 2C planes); ``scratch`` takes the deltas."""
    C = line.shape[0] // 2
    if C == 4:
        return walk4(line, ref, lo, hi, wx, scale, k_a, k_b, eps)
    if C == 1:
        return walk1(line, ref, lo, hi, wx, scale, k_a, k_b, eps)
    if C == 3:
        return walk3(line, ref, lo, hi, wx, scale, k_a, k_b, eps)
    n, padded = _padded(lo, hi)
    delta = scratch[:padded]
    delta[:] = np.float32(0.0)  # past the walk's n pixels it stays zero
    for k in range(C):
        i_k = line[k, ref]
        values = line[k, lo:hi + 1]
        grads = line[C + k, lo:hi + 1]
        for j in range(n):
            delta[j] += (values[j] - i_k) * grads[j]
    return _walk_deltas(delta, lo, wx, scale, k_a, k_b, eps)


@jit_view
def _outside_run(lo, hi, first, last):
    """[lo, hi] less the run [first, last] where that run covers one of its ends (its pixels add
    exactly nothing); [lo, hi] as it was otherwise."""
    if first <= lo <= last:
        return last + 1, hi
    if first <= hi <= last:
        return lo, first - 1
    return lo, hi


@jit_view
def crossing_gradient(line, ids, runs, scratch, f, wx, k_a, k_b, w_far, flags, n_w, eps):
    """(grad to a's w, grad to b's w) from a crossing of face f's edge (a, b) with a scanline, from
    its geometry and flags (crossing_geometry). ``line`` (>= 2C, >= n_w + WALK_BLOCK - 1) holds the
    scanline's C image planes then C gradient planes, ``ids`` (>= n_w,) its face indices, ``runs``
    (2, >= n_w) the first and last pixel of each pixel's run of equal colours; ``scratch``
    (>= n_w + WALK_BLOCK - 1,) float32 takes one walk's deltas. A walk's delta is exactly 0 at the
    pixels of its reference colour's run, so the walks leave them out."""
    ga, gb = 0.0, 0.0
    C = line.shape[0] // 2
    nw = np.float32(n_w)
    top = nw - np.float32(1.0)
    direction = 1 if flags & FORWARD else -1
    use_a, use_b = (flags & USE_A) != 0, (flags & USE_B) != 0
    in_f = np.floor(wx) if direction > 0 else np.ceil(wx)
    out_f = in_f + np.float32(direction)
    if not (in_f >= 0 and in_f <= top and out_f >= 0 and out_f <= top):
        return ga, gb
    d_in = int(in_f)
    d_out = d_in + direction
    scale = np.float32(2.0 / n_w)
    # out: pixels from d_out to the border would take the in-pixel's colour
    if ids[d_in] == f:
        lo, hi = (d_out, n_w - 1) if direction > 0 else (0, d_out)
        lo, hi = _outside_run(lo, hi, runs[0, d_in], runs[1, d_in])
        if lo <= hi:
            sa, sb = walk(line, d_in, lo, hi, wx, scale, k_a, k_b, eps, scratch)
            if use_a:
                ga += sa
            if use_b:
                gb += sb
    # in: this face's pixels from d_in to where the scanline leaves the face, rounded outward
    limit_f = np.ceil(w_far) if direction > 0 else np.floor(w_far)
    limit = int(min(max(limit_f, np.float32(-1.0)), nw))
    lo, hi = max(min(d_in, limit), 0), min(max(d_in, limit), n_w - 1)
    lo, hi = _outside_run(lo, hi, runs[0, d_out], runs[1, d_out])
    for d1 in range(lo, hi + 1):
        if ids[d1] != f:
            continue
        delta_in = np.float32(0.0)
        for k in range(C):
            delta_in += (line[k, d1] - line[k, d_out]) * line[C + k, d1]
        if delta_in > 0:
            shift = (np.float32(d1) - wx) * scale
            if use_a:
                ga -= delta_in / _push(k_a * shift, eps)
            if use_b:
                gb -= delta_in / _push(k_b * shift, eps)
    return ga, gb


@jit_view
def find_runs(line, n, C, runs):
    """runs[0, i], runs[1, i] <- the first and last pixel of the run of pixels around i (of the n of
    ``line``) whose C colours equal pixel i's."""
    runs[0, 0] = 0
    for i in range(1, n):
        same = True
        for k in range(C):
            same = same and line[k, i] == line[k, i - 1]
        runs[0, i] = runs[0, i - 1] if same else i
    runs[1, n - 1] = n - 1
    for i in range(n - 2, -1, -1):
        runs[1, i] = runs[1, i + 1] if runs[0, i + 1] == runs[0, i] else i


@jit_view
def load_scanline(face_index, image, grad, b, axis, d0, line, ids):
    """Copy scanline d0 of batch entry b (a column for axis 0, a row for axis 1) into the planar
    buffer ``line`` (image planes, then gradient planes) and ``ids``; returns its length."""
    C = image.shape[3]
    if axis == 0:
        n = image.shape[1]
        for r in range(n):
            ids[r] = face_index[b, r, d0]
            for k in range(C):
                line[k, r] = image[b, r, d0, k]
                line[C + k, r] = grad[b, r, d0, k]
        return n
    n = image.shape[2]
    row, grow, irow = image[b, d0], grad[b, d0], face_index[b, d0]
    for c in range(n):
        ids[c] = irow[c]
    for k in range(C):
        plane, gplane = line[k], line[C + k]
        for c in range(n):
            plane[c] = row[c, k]
            gplane[c] = grow[c, k]
    return n


@jit
def scanline_kernel(lo, hi, face_index, image, grad, starts, owner, geometry, flags, eps, sums):
    """sums[entry] <- (grad to a's w, grad to b's w) for every entry of the scanline lists.

    Scanlines are cut into BLOCKS contiguous blocks (neighbouring columns share cache lines when
    copied); this call runs blocks lo .. hi - 1."""
    B, H, W, C = image.shape
    lines = B * (W + H)
    for block in range(lo, hi):
        line = np.zeros((2 * C, max(H, W) + WALK_BLOCK - 1), np.float32)
        ids = np.empty(max(H, W), np.int64)
        runs = np.empty((2, max(H, W)), np.int64)
        scratch = np.empty(max(H, W) + WALK_BLOCK - 1, np.float32)
        for li in range(block * lines // BLOCKS, (block + 1) * lines // BLOCKS):
            if starts[li] == starts[li + 1]:
                continue
            b, rest = li // (W + H), li % (W + H)
            axis, d0 = (0, rest) if rest < W else (1, rest - W)
            n_w = load_scanline(face_index, image, grad, b, axis, d0, line, ids)
            find_runs(line, n_w, C, runs)
            for k in range(starts[li], starts[li + 1]):
                sums[k, 0], sums[k, 1] = crossing_gradient(line, ids, runs, scratch, owner[k], geometry[k, 0],
                                                           geometry[k, 1], geometry[k, 2], geometry[k, 3],
                                                           flags[k], n_w, eps)


@jit
def sum_crossings(lo, hi, group_lo, ids, faces, offsets, counts, place, sums, out):
    """out[b, f] <- each visible face's crossing sums (v = group_lo + lo .. group_lo + hi - 1 of its
    group, ids[v] = b * F + f; crossing id i's sums are sums[place[i]]), added per (edge, axis) slot in
    scanline order, slots in (edge, axis) order; axis 0 moves y (column 1), axis 1 moves x (column 0)."""
    F = faces.shape[1]
    for v in range(group_lo + lo, group_lo + hi):
        b, f = ids[v] // F, ids[v] % F
        g00, g01, g10, g11, g20, g21 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        for slot in range(6):
            e, axis = slot // 2, slot % 2
            sa, sb = 0.0, 0.0
            for i in range(offsets[v, slot], offsets[v, slot] + counts[v, slot]):
                sa += sums[place[i], 0]
                sb += sums[place[i], 1]
            coord = 1 - axis
            # vertex e gets sa, vertex e + 1 gets sb
            if e == 0:
                if coord == 0:
                    g00 += sa
                    g10 += sb
                else:
                    g01 += sa
                    g11 += sb
            elif e == 1:
                if coord == 0:
                    g10 += sa
                    g20 += sb
                else:
                    g11 += sa
                    g21 += sb
            else:
                if coord == 0:
                    g20 += sa
                    g00 += sb
                else:
                    g21 += sa
                    g01 += sb
        out[b, f, 0, 0], out[b, f, 0, 1] = g00, g01
        out[b, f, 1, 0], out[b, f, 1, 1] = g10, g11
        out[b, f, 2, 0], out[b, f, 2, 1] = g20, g21


@jit
def plan_groups(counts, limit):
    """(offsets, bounds): the rows of ``counts`` (visible faces) are cut into groups
    [bounds[g], bounds[g + 1]) of at most ``limit`` crossings (at least one face each);
    offsets[n, slot] is the id of the first crossing of (n, slot) counted from its group's start,
    in (face, slot) order."""
    N = counts.shape[0]
    offsets = np.empty((N, 6), np.int32)
    bounds = np.empty(N + 2, np.int64)  # N + 1 bounds, or 2 (one empty group) when N = 0
    groups, running = 0, 0
    bounds[0] = 0
    for n in range(N):
        total = 0
        for slot in range(6):
            total += counts[n, slot]
        if running + total > limit and n > bounds[groups]:
            groups += 1
            bounds[groups] = n
            running = 0
        for slot in range(6):
            offsets[n, slot] = running
            running += counts[n, slot]
    bounds[groups + 1] = N
    return offsets, bounds[:groups + 2]


def edge_backward(faces, face_index, image, grad, eps):
    """Blurred-edge gradient (B, F, 3, 3) float32 (z column 0) of numpy ``faces`` (B, F, 3, 3),
    ``face_index`` (B, H, W) int64, ``image`` and ``grad`` (B, H, W, C) float32."""
    B, F = faces.shape[:2]
    H, W, C = image.shape[1:]
    out = buffers.zeros((B, F, 3, 3), np.float32)
    if B * F * H * W * C == 0:
        return out
    # the bookkeeping passes run one batch entry per job (each owns its faces and scanlines)
    ids, entries = visible_faces(faces, face_index)
    first = buffers.empty((len(ids), 6), np.int32)
    counts = buffers.empty((len(ids), 6), np.int32)
    run_jobs(count_crossings, B, faces, ids, entries, H, W, first, counts)
    offsets, bounds = plan_groups(counts, MAX_CROSSINGS)
    eps = np.float32(eps)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        starts, owner, geometry, flags, place = list_by_scanline(ids, entries, lo, hi, faces, first, counts, offsets,
                                                                 H, W)
        sums = buffers.empty((len(owner), 2), np.float64)  # every crossing writes its own row
        if len(owner):
            ends = starts[np.arange(BLOCKS + 1) * (len(starts) - 1) // BLOCKS]  # each block's crossings
            run_jobs(scanline_kernel, BLOCKS, face_index, image, grad, starts, owner, geometry, flags, eps, sums,
                     uneven=True, cost=np.diff(ends))
        # each face writes only its own gradient: the group's faces are shared out (3 values a crossing)
        run_jobs(sum_crossings, hi - lo, lo, ids, faces, offsets, counts, place, sums, out, work=3 * len(place))
    return out
