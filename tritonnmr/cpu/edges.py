"""The blurred-edge backward (Kato et al. 2018, section 3.3) as one numba job per (batch, face).

For each edge (a, b) of a visible front face (third vertex c) and each axis, every integer
scanline d0 the edge crosses is visited; ``u`` indexes the scanlines, ``w`` runs along them, and
the edge crosses scanline d0 at ``w_x``. ``d_in`` is the last pixel inside (floor or ceil of w_x
on the outward side), ``d_out = d_in + direction`` the first outside.

- out: when pixel d_in is this face's, every pixel d1 from d_out to the border could be covered
  by moving the edge outwards; it would take the in-pixel's colour:
  ``delta = sum_c (I[d1] - I[d_in]) dL/dI[d1]``.
- in: every pixel of this face from d_in to where the scanline leaves the face (edge a-c or c-b,
  rounded outward) could be uncovered by moving the edge inwards: ``delta = sum_c (I[d1] - I[d_out]) dL/dI[d1]``.

When delta > 0 the move lowers the loss: vertex a gets ``-delta / dist_a`` with
``dist_a = (u_b - u_a) / (u_b - d0) * (d1 - w_x) * 2 / N_w`` (how far a alone must move along w, in
NDC; N_w the number of pixels along w), vertex b likewise with ``(u_b - u_a) / (d0 - u_a)``; each
dist is pushed away from zero by eps. Each pixel is read once per crossing; the scan geometry
(w_x, d_in, the limits) and every pixel's delta are computed in float32 exactly as the reference
does; a walk's sum is vectorised (its order is fixed at compile time), faces sum their walks in
float64 and write their nine numbers once: deterministic on any number of threads.

Axis 0 scans image columns (u = px, w = py) and moves the vertices along y; axis 1 scans rows
(u = py, w = px) and moves them along x. The image and its gradient are first packed per axis
into channel-planar lines (B, scanlines, 2C, N_w) (C image planes, then C gradient planes), so
that every walk along a scanline reads contiguous memory and vectorises.
"""

import numpy as np

from ._jit import jit, jit_sum, pjit, prange

TILE = 16  # columns per block of pack_columns
JOBS = 512  # parallel jobs of the edge kernel (fixed: the result does not depend on it anyway)


@pjit
def pack_rows(face_index, image, grad, lines, index):
    """Row scanlines (axis 1): lines[b, r, k, c] = image[b, r, c, k], lines[b, r, C + k, c] =
    grad[b, r, c, k], index[b, r, c] = face_index[b, r, c]."""
    B, H, W, C = image.shape
    for job in prange(B * H):
        b, r = job // H, job % H
        src, gsrc, dst, ids, own = image[b, r], grad[b, r], lines[b, r], face_index[b, r], index[b, r]
        for c in range(W):
            own[c] = ids[c]
        for k in range(C):
            plane, gplane = dst[k], dst[C + k]
            for c in range(W):
                plane[c] = src[c, k]
                gplane[c] = gsrc[c, k]


@pjit
def pack_columns(face_index, image, grad, lines, index):
    """Column scanlines (axis 0): lines[b, c, k, r] = image[b, r, c, k], lines[b, c, C + k, r] =
    grad[b, r, c, k], index[b, c, r] = face_index[b, r, c]. Blocks of TILE columns are walked
    down the rows, so reads are contiguous and the TILE * 2C write streams stay in cache."""
    B, H, W, C = image.shape
    blocks = (W + TILE - 1) // TILE
    for job in prange(B * blocks):
        b, c0 = job // blocks, (job % blocks) * TILE
        n = min(TILE, W - c0)
        for r in range(H):
            src, gsrc, ids = image[b, r], grad[b, r], face_index[b, r]
            for j in range(n):
                dst = lines[b, c0 + j]
                index[b, c0 + j, r] = ids[c0 + j]
                for k in range(C):
                    dst[k, r] = src[c0 + j, k]
                    dst[C + k, r] = gsrc[c0 + j, k]


def padded(n):
    """Row length (floats) >= n for the line tables: a whole number of 64-byte blocks, and an odd
    one, so that successive lines do not map to the same cache sets (power-of-two strides do)."""
    blocks = (n + 15) // 16
    return 16 * (blocks + 1 - blocks % 2)


@jit
def _push(dist, eps):
    """dist pushed away from zero by eps (a zero distance counts as negative)."""
    return dist + eps if dist > 0 else dist - eps


@jit_sum
def walk_sum(delta, first, wx, scale, k_a, k_b, eps):
    """(sum of -delta / dist_a, sum of -delta / dist_b) over pixels d1 = first + j with
    delta[j] > 0, dist = k (d1 - wx) scale pushed away from zero by eps. Vectorised sums."""
    zero = np.float32(0.0)
    ga, gb = zero, zero
    for j in range(delta.shape[0]):
        dl = delta[j]
        shift = (np.float32(first + j) - wx) * scale
        da = k_a * shift
        db = k_b * shift
        da = da + eps if da > 0 else da - eps
        db = db + eps if db > 0 else db - eps
        ga += -dl / da if dl > 0 else zero
        gb += -dl / db if dl > 0 else zero
    return ga, gb


@jit
def scan_edge(lines, index, scratch, b, f, ua, wa, ub, wb, uc, wc, outward, n_u, n_w, eps):
    """(grad to a's w, grad to b's w) from edge (a, b) along one axis. ``lines`` (B, n_u, 2C, >= n_w)
    holds image and gradient planes per scanline, ``index`` (B, n_u, n_w) the face index;
    ``outward`` is the direction (+1 / -1 along w) away from the face when u_a < u_b (reversed
    otherwise). ``scratch`` (>= n_w,) float32 holds one walk's deltas."""
    ga, gb = 0.0, 0.0
    if not ua != ub:
        return ga, gb
    C = lines.shape[2] // 2
    nu, nw = np.float32(n_u), np.float32(n_w)
    first = max(np.ceil(min(ua, ub)), np.float32(0.0))
    last = min(np.floor(max(ua, ub)), nu - np.float32(1.0))
    if last < first:
        return ga, gb
    direction = outward if ua < ub else -outward
    scale = np.float32(2.0 / n_w)
    slope = (wb - wa) / (ub - ua)
    span = ub - ua
    top = nw - np.float32(1.0)
    one = np.float32(1.0)
    for d0 in range(int(first), int(last) + 1):
        d0f = np.float32(d0)
        wx = wa + slope * (d0f - ua)
        in_f = np.floor(wx) if direction > 0 else np.ceil(wx)
        out_f = in_f + np.float32(direction)
        if not (in_f >= 0 and in_f <= top and out_f >= 0 and out_f <= top):
            continue
        d_in = int(in_f)
        d_out = d_in + direction
        # how far vertex a (b) alone must move per pixel of crossing shift; none when it lies on d0
        use_a, use_b = ub != d0f, ua != d0f
        k_a = span / (ub - d0f) if use_a else one
        k_b = span / (d0f - ua) if use_b else one
        line = lines[b, d0]
        owner = index[b, d0]
        # out: pixels from d_out to the border would take the in-pixel's colour
        if owner[d_in] == f:
            lo, hi = (d_out, n_w - 1) if direction > 0 else (0, d_out)
            # (slices indexed from 0: loops without negative-index checks, so they vectorise)
            delta = scratch[:hi + 1 - lo]
            delta[:] = np.float32(0.0)
            for k in range(C):
                i_in = line[k, d_in]
                values = line[k, lo:hi + 1]
                grads = line[C + k, lo:hi + 1]
                for j in range(delta.shape[0]):
                    delta[j] += (values[j] - i_in) * grads[j]
            sa, sb = walk_sum(delta, lo, wx, scale, k_a, k_b, eps)
            if use_a:
                ga += sa
            if use_b:
                gb += sb
        # in: this face's pixels from d_in to where the scanline leaves the face, through edge
        # a-c when d0 lies strictly between u_a and u_c, else c-b; rounded outward
        if (d0f - ua) * (d0f - uc) < 0:
            w_far = wa + (wc - wa) / (uc - ua) * (d0f - ua)
        elif ub == uc:
            w_far = wc
        else:
            w_far = wc + (wb - wc) / (ub - uc) * (d0f - uc)
        limit_f = np.ceil(w_far) if direction > 0 else np.floor(w_far)
        limit = int(min(max(limit_f, np.float32(-1.0)), nw))
        lo, hi = max(min(d_in, limit), 0), min(max(d_in, limit), n_w - 1)
        for d1 in range(lo, hi + 1):
            if owner[d1] != f:
                continue
            delta = np.float32(0.0)
            for k in range(C):
                delta += (line[k, d1] - line[k, d_out]) * line[C + k, d1]
            if delta > 0:
                shift = (np.float32(d1) - wx) * scale
                if use_a:
                    ga -= delta / _push(k_a * shift, eps)
                if use_b:
                    gb -= delta / _push(k_b * shift, eps)
    return ga, gb


@pjit
def edge_kernel(faces, visible, lines0, index0, lines1, index1, eps, jobs, out):
    """out (B, F, 3, 3) <- blurred-edge gradient of every visible face (x and y columns; z stays 0).
    Job j handles faces j, j + jobs, ... (interleaved, to balance big and small faces)."""
    B, F = faces.shape[0], faces.shape[1]
    H, W = index1.shape[1], index1.shape[2]
    hf, wf = np.float32(H), np.float32(W)
    half, one = np.float32(0.5), np.float32(1.0)
    for job in prange(jobs):
        scratch = np.empty(max(H, W), np.float32)
        grads = np.zeros((3, 2))
        for n in range(job, B * F, jobs):
            b, f = n // F, n % F
            if not visible[b, f]:
                continue
            # pixel coordinates 0.5 (v N + N - 1)
            px = (half * (faces[b, f, 0, 0] * wf + wf - one), half * (faces[b, f, 1, 0] * wf + wf - one),
                  half * (faces[b, f, 2, 0] * wf + wf - one))
            py = (half * (faces[b, f, 0, 1] * hf + hf - one), half * (faces[b, f, 1, 1] * hf + hf - one),
                  half * (faces[b, f, 2, 1] * hf + hf - one))
            grads[:] = 0.0
            for e in range(3):  # edge (a, v) = (e, e + 1), third vertex c
                a, v, c = e, (e + 1) % 3, (e + 2) % 3
                for axis in range(2):
                    if axis == 0:  # columns: u = px, w = py, outward -1 when u_a < u_b; moves y
                        da, dv = scan_edge(lines0, index0, scratch, b, f, px[a], py[a], px[v], py[v], px[c], py[c],
                                           -1, W, H, eps)
                    else:  # rows: u = py, w = px, outward +1 when u_a < u_b; moves x
                        da, dv = scan_edge(lines1, index1, scratch, b, f, py[a], px[a], py[v], px[v], py[c], px[c],
                                           1, H, W, eps)
                    grads[a, 1 - axis] += da
                    grads[v, 1 - axis] += dv
            for k in range(3):
                out[b, f, k, 0] = grads[k, 0]
                out[b, f, k, 1] = grads[k, 1]


@jit
def visible_faces(faces, face_index, visible):
    """visible (B, F) bool <- front-facing and covering at least one pixel."""
    B, F = faces.shape[0], faces.shape[1]
    for b in range(B):
        for p in range(face_index.shape[1]):
            for q in range(face_index.shape[2]):
                f = face_index[b, p, q]
                if f >= 0:
                    visible[b, f] = True
        for f in range(F):
            if visible[b, f]:
                x0, y0 = faces[b, f, 0, 0], faces[b, f, 0, 1]
                x1, y1 = faces[b, f, 1, 0], faces[b, f, 1, 1]
                x2, y2 = faces[b, f, 2, 0], faces[b, f, 2, 1]
                visible[b, f] = (y2 - y0) * (x1 - x0) > (y1 - y0) * (x2 - x0)


def edge_backward(faces, face_index, image, grad, eps):
    """Blurred-edge gradient (B, F, 3, 3) float32 (z column 0) of numpy ``faces`` (B, F, 3, 3),
    ``face_index`` (B, H, W) int64, ``image`` and ``grad`` (B, H, W, C) float32."""
    B, F = faces.shape[:2]
    H, W, C = image.shape[1:]
    out = np.zeros((B, F, 3, 3), np.float32)
    if B * F * H * W * C == 0:
        return out
    visible = np.zeros((B, F), np.bool_)
    visible_faces(faces, face_index, visible)
    lines0 = np.empty((B, W, 2 * C, padded(H)), np.float32)
    lines1 = np.empty((B, H, 2 * C, padded(W)), np.float32)
    index0 = np.empty((B, W, H), np.int32)
    index1 = np.empty((B, H, W), np.int32)
    pack_columns(face_index, image, grad, lines0, index0)
    pack_rows(face_index, image, grad, lines1, index1)
    edge_kernel(faces, visible, lines0, index0, lines1, index1, np.float32(eps), min(B * F, JOBS), out)
    return out
