"""Forward z-buffer and the exact depth backward, as numba kernels on numpy arrays.

The z-buffer is tiled by bands of ``BAND`` image rows. A setup pass gives every face its pixel
bounding box (or none: culled, zero-area, non-finite, off-image); a binning pass lists, for each
(batch, band), the faces whose box meets it, in ascending face order; then one job per
(batch, band) walks its faces' boxes clipped to the band. Each pixel belongs to one job and sees
its faces in ascending order, and a face replaces the stored one only when strictly nearer, so
the nearest face wins and ties go to the lower index: no atomics, the same result on any number
of threads.

The per-pixel arithmetic is the reference's, in float32 and in the same order (no fastmath), so
face indices, weights and depths equal the reference's bit for bit.
"""
import numpy as np

from . import buffers
from ._jit import jit, run_jobs

BAND = 16  # image rows per z-buffer job


@jit
def pixel_box(lo, hi, size):
    """Pixel index range [first, last] (clamped to the image) of NDC extent [lo, hi] along an
    axis of ``size`` pixels: ``floor`` / ``ceil`` of ``0.5 (v size + size - 1)``; first > last
    when the extent misses the image."""
    s = np.float32(size)
    a = np.floor(np.float32(0.5) * (lo * s + s - np.float32(1.0)))
    b = np.ceil(np.float32(0.5) * (hi * s + s - np.float32(1.0)))
    if b < 0 or a > s - 1:
        return 1, 0
    return int(max(a, np.float32(0.0))), int(min(b, s - np.float32(1.0)))


@jit
def face_boxes(faces, height, width, boxes):
    """boxes (N, 4) int64 <- (first row, last row, first column, last column) of each drawn face
    of ``faces`` (N, 3, 3); first > last for faces that are culled (back-facing or zero-area:
    ``(y2 - y0)(x1 - x0) <= (y1 - y0)(x2 - x0)``), not finite, or off the image."""
    for n in range(faces.shape[0]):
        boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3] = 1, 0, 1, 0
        finite = True
        for k in range(3):
            for d in range(3):
                finite = finite and np.isfinite(faces[n, k, d])
        x0, y0 = faces[n, 0, 0], faces[n, 0, 1]
        x1, y1 = faces[n, 1, 0], faces[n, 1, 1]
        x2, y2 = faces[n, 2, 0], faces[n, 2, 1]
        if not (finite and (y2 - y0) * (x1 - x0) > (y1 - y0) * (x2 - x0)):
            continue
        r0, r1 = pixel_box(min(y0, y1, y2), max(y0, y1, y2), height)
        c0, c1 = pixel_box(min(x0, x1, x2), max(x0, x1, x2), width)
        if r0 <= r1 and c0 <= c1:
            boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3] = r0, r1, c0, c1


@jit
def bin_faces(boxes, batch, num_faces, bands):
    """(starts (batch * bands + 1,), faces) with faces[starts[j]:starts[j + 1]] the ascending
    indices of the faces whose box meets job j = b * bands + band."""
    counts = np.zeros(batch * bands + 1, np.int64)
    for n in range(batch * num_faces):
        if boxes[n, 0] <= boxes[n, 1]:
            base = (n // num_faces) * bands
            for k in range(boxes[n, 0] // BAND, boxes[n, 1] // BAND + 1):
                counts[base + k + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    listed = np.empty(starts[-1], np.int32)
    for n in range(batch * num_faces):
        if boxes[n, 0] <= boxes[n, 1]:
            base = (n // num_faces) * bands
            for k in range(boxes[n, 0] // BAND, boxes[n, 1] // BAND + 1):
                listed[fill[base + k]] = n % num_faces
                fill[base + k] += 1
    return starts, listed


@jit
def zbuffer(lo, hi, faces, boxes, starts, listed, bands, near, far, rows, columns, face_index, weights, depth):
    """Fill face_index (B, H, W) int64, weights (B, H, W, 3) and depth (B, H, W) from ``faces``
    (B, F, 3, 3) float32; each job first sets its rows to empty (-1, 0, far). This call runs jobs
    lo .. hi - 1 of the B * bands (batch entry, band) jobs.

    Pixel (row r, column c) has its centre at NDC (x, y) = (columns[c], rows[r]) (pixel_centres).
    Inside: on the inner side of, or on, all three edges, ``(y - y_a)(x_b - x_a) >= (x - x_a)(y_b - y_a)``.
    Weights: ``w_k = (A_k x + B_k y + C_k) / det`` clamped to [0, 1] and renormalised; depth
    ``z = 1 / sum_k w_k / z_k``, kept when near < z < far and strictly nearer than what is stored.
    """
    B, F = faces.shape[0], faces.shape[1]
    H, W = face_index.shape[1], face_index.shape[2]
    zero, one = np.float32(0.0), np.float32(1.0)
    for job in range(lo, hi):
        b = job // bands
        row_lo = (job % bands) * BAND
        row_hi = min(row_lo + BAND, H) - 1
        for r in range(row_lo, row_hi + 1):
            face_index[b, r, :] = -1
            weights[b, r, :, :] = zero
            depth[b, r, :] = far
        for i in range(starts[job], starts[job + 1]):
            f = listed[i]
            n = b * F + f
            x0, y0, z0 = faces[b, f, 0, 0], faces[b, f, 0, 1], faces[b, f, 0, 2]
            x1, y1, z1 = faces[b, f, 1, 0], faces[b, f, 1, 1], faces[b, f, 1, 2]
            x2, y2, z2 = faces[b, f, 2, 0], faces[b, f, 2, 1], faces[b, f, 2, 2]
            # edge vectors of the inside test, edges (0, 1), (1, 2), (2, 0)
            ex0, ey0 = x1 - x0, y1 - y0
            ex1, ey1 = x2 - x1, y2 - y1
            ex2, ey2 = x0 - x2, y0 - y2
            det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            a0, b0, c0 = y1 - y2, x2 - x1, x1 * y2 - x2 * y1
            a1, b1, c1 = y2 - y0, x0 - x2, x2 * y0 - x0 * y2
            a2, b2, c2 = y0 - y1, x1 - x0, x0 * y1 - x1 * y0
            for r in range(max(boxes[n, 0], row_lo), min(boxes[n, 1], row_hi) + 1):
                yp = rows[r]
                t0, t1, t2 = (yp - y0) * ex0, (yp - y1) * ex1, (yp - y2) * ex2
                by0, by1, by2 = b0 * yp, b1 * yp, b2 * yp
                for c in range(boxes[n, 2], boxes[n, 3] + 1):
                    xp = columns[c]
                    if not (t0 >= (xp - x0) * ey0 and t1 >= (xp - x1) * ey1 and t2 >= (xp - x2) * ey2):
                        continue
                    w0 = min(max((a0 * xp + by0 + c0) / det, zero), one)
                    w1 = min(max((a1 * xp + by1 + c1) / det, zero), one)
                    w2 = min(max((a2 * xp + by2 + c2) / det, zero), one)
                    total = w0 + w1 + w2
                    w0, w1, w2 = w0 / total, w1 / total, w2 / total
                    z = one / (w0 / z0 + w1 / z1 + w2 / z2)
                    if z > near and z < far and z < depth[b, r, c]:
                        depth[b, r, c] = z
                        face_index[b, r, c] = f
                        weights[b, r, c, 0] = w0
                        weights[b, r, c, 1] = w1
                        weights[b, r, c, 2] = w2


def pixel_centres(size):
    """(size,) float32 NDC centres ``(2 i + 1 - size) / size`` of pixels i (float32, correctly rounded:
    the reference's values), computed once per render instead of once per pixel a face's box holds."""
    return (2 * np.arange(size, dtype=np.float32) + np.float32(1 - size)) / np.float32(size)


def rasterize(faces, height, width, near, far):
    """face_index (B, H, W) int64, weights (B, H, W, 3) float32, depth (B, H, W) float32 of the
    float32 contiguous ``faces`` (B, F, 3, 3) numpy array."""
    B, F = faces.shape[:2]
    if B * F * height * width == 0:
        return (np.full((B, height, width), -1, np.int64), np.zeros((B, height, width, 3), np.float32),
                np.full((B, height, width), far, np.float32))
    face_index = buffers.empty((B, height, width), np.int64)  # set by zbuffer, band by band
    weights = buffers.empty((B, height, width, 3), np.float32)
    depth = buffers.empty((B, height, width), np.float32)
    flat = faces.reshape(B * F, 3, 3)
    boxes = buffers.empty((B * F, 4), np.int64)
    face_boxes(flat, height, width, boxes)
    bands = (height + BAND - 1) // BAND
    starts, listed = bin_faces(boxes, B, F, bands)
    run_jobs(zbuffer, B * bands, faces, boxes, starts, listed, bands, np.float32(near), np.float32(far),
             pixel_centres(height), pixel_centres(width), face_index, weights, depth, uneven=True,
             cost=np.diff(starts))  # the faces a band lists
    return face_index, weights, depth


@jit
def depth_backward(lo, hi, faces, face_index, weights, depth, grad_depth, out):
    """out (B, F, 3, 3) <- gradient of sum(grad_depth * depth) with respect to the faces, batch
    entries lo .. hi - 1.

    With ``q = sum_m w_m / z_m`` and z = 1 / q: dz/dz_k = z^2 w_k / z_k^2 and, since moving
    vertex k changes every weight by ``-w_k grad_p(w_m)``, dz/d(x_k, y_k) = z^2 w_k sum_m
    grad_p(w_m) / z_m with grad_p(w_m) = (A_m, B_m) / det. The per-face factors do not depend on
    the pixel, so each face sums ``s_k = sum_pixels g z^2 w_k`` (pixels in raster order) and
    multiplies once. Each batch entry in raster order (a few flops per pixel): deterministic.
    """
    F = faces.shape[1]
    H, W = face_index.shape[1], face_index.shape[2]
    sums = np.zeros((F, 3), np.float64)
    for b in range(lo, hi):
        sums[:] = 0.0
        for r in range(H):
            for c in range(W):
                f = face_index[b, r, c]
                if f < 0:
                    continue
                z = np.float64(depth[b, r, c])
                gz2 = np.float64(grad_depth[b, r, c]) * z * z
                for k in range(3):
                    sums[f, k] += gz2 * weights[b, r, c, k]
        for f in range(F):
            if sums[f, 0] == 0.0 and sums[f, 1] == 0.0 and sums[f, 2] == 0.0:
                continue
            x0, y0, z0 = faces[b, f, 0, 0], faces[b, f, 0, 1], faces[b, f, 0, 2]
            x1, y1, z1 = faces[b, f, 1, 0], faces[b, f, 1, 1], faces[b, f, 1, 2]
            x2, y2, z2 = faces[b, f, 2, 0], faces[b, f, 2, 1], faces[b, f, 2, 2]
            # sx = sum_m A_m / (det z_m) cancels (the A_m sum to 0): in float32 and in the reference's
            # order, so that what the cancellation leaves (all of it where the z_m are equal) is the
            # reference's, whose sign a float64 evaluation would not keep at large depth
            det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            sx = np.float64((y1 - y2) / det / z0 + (y2 - y0) / det / z1 + (y0 - y1) / det / z2)
            sy = np.float64((x2 - x1) / det / z0 + (x0 - x2) / det / z1 + (x1 - x0) / det / z2)
            for k in range(3):
                zk = np.float64(faces[b, f, k, 2])
                out[b, f, k, 0] = sums[f, k] * sx
                out[b, f, k, 1] = sums[f, k] * sy
                out[b, f, k, 2] = sums[f, k] / (zk * zk)


@jit
def barycentric_rows(lo, hi, faces, face_index, weights, depth, out):
    """out (B, H, W, 3) <- ``w_k z / z_k`` at covered pixels (0 elsewhere) of rows lo .. hi - 1 (jobs
    b * H + r): the perspective-correct barycentrics, in float32 in the order torch evaluates them."""
    H, W = face_index.shape[1], face_index.shape[2]
    zero = np.float32(0.0)
    for job in range(lo, hi):
        b, r = job // H, job % H
        for c in range(W):
            f = face_index[b, r, c]
            z = depth[b, r, c]
            for k in range(3):
                out[b, r, c, k] = weights[b, r, c, k] * z / faces[b, f, k, 2] if f >= 0 else zero


def perspective_barycentrics(faces, face_index, weights, depth):
    """(B, H, W, 3) float32 numpy barycentrics of :func:`barycentric_rows`, rows shared out."""
    B, H, W = face_index.shape
    out = buffers.empty((B, H, W, 3), np.float32)
    run_jobs(barycentric_rows, B * H, faces, face_index, weights, depth, out, work=out.size)
    return out
