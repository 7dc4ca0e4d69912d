"""The soft rasterizer's ops (gradient="soft") as numba kernels: the formulas of backends/torch_soft.py.

``soft_fragments``: faces are binned into bands of BAND rows by their boxes grown by the cut-off
radius; one job per (batch entry, band) counts, then writes, the pairs of its pixels, visiting its
faces in ascending order, so each pixel's pairs come out faces ascending and every job writes only
its own pixels' pairs (deterministic on any number of threads). ``soft_fragments_backward`` groups
the pairs by face (a stable sort) and one job per range of faces adds each face's pairs in order.
``soft_blend`` and its backward are per pixel. Per-pair arithmetic is float32 as in the reference;
sums over pairs are float64.
"""
import numpy as np
import torch

from ..common import guarded
from ._jit import jit, run_jobs
from .raster import BAND

FACE_JOBS = 64  # jobs of the backward's per-face sums


@jit
def grown_boxes(faces, height, width, grow, boxes):
    """boxes (N, 4) int64 <- (first row, last row, first column, last column) of each drawn face's box
    grown by ``grow`` pixels, clipped; first > last for faces that are not drawn or miss the image."""
    for n in range(faces.shape[0]):
        boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3] = 1, 0, 1, 0
        ok = True
        for k in range(3):
            for d in range(3):
                ok = ok and np.isfinite(faces[n, k, d])
            ok = ok and faces[n, k, 2] != 0
        x0, y0 = faces[n, 0, 0], faces[n, 0, 1]
        x1, y1 = faces[n, 1, 0], faces[n, 1, 1]
        x2, y2 = faces[n, 2, 0], faces[n, 2, 1]
        if not (ok and (y2 - y0) * (x1 - x0) > (y1 - y0) * (x2 - x0)):
            continue
        hf, wf = np.float32(height), np.float32(width)
        half, one = np.float32(0.5), np.float32(1.0)
        r0 = np.floor(half * (min(y0, y1, y2) * hf + hf - one) - grow)
        r1 = np.ceil(half * (max(y0, y1, y2) * hf + hf - one) + grow)
        c0 = np.floor(half * (min(x0, x1, x2) * wf + wf - one) - grow)
        c1 = np.ceil(half * (max(x0, x1, x2) * wf + wf - one) + grow)
        if r1 < 0 or r0 > hf - one or c1 < 0 or c0 > wf - one:
            continue
        boxes[n, 0], boxes[n, 1] = int(max(r0, 0)), int(min(r1, hf - one))
        boxes[n, 2], boxes[n, 3] = int(max(c0, 0)), int(min(c1, wf - one))


@jit
def nearest_edge(x0, y0, x1, y1, x2, y2, xp, yp, ax, ay):
    """(edge, t, gx, gy) of the nearest edge segment to (xp, yp) in square NDC: its first vertex, the
    closest point's parameter on it, the gap (pixel centre minus that point); ties keep the lower edge."""
    zero, one = np.float32(0.0), np.float32(1.0)
    px, py = ax * xp, ay * yp
    best, edge, best_t, best_gx, best_gy = np.float32(np.inf), 0, zero, zero, zero
    for e in range(3):
        if e == 0:
            sax, say, sbx, sby = ax * x0, ay * y0, ax * x1, ay * y1
        elif e == 1:
            sax, say, sbx, sby = ax * x1, ay * y1, ax * x2, ay * y2
        else:
            sax, say, sbx, sby = ax * x2, ay * y2, ax * x0, ay * y0
        ex, ey = sbx - sax, sby - say
        length2 = ex * ex + ey * ey
        t = zero
        if length2 > 0:
            t = min(max(((px - sax) * ex + (py - say) * ey) / length2, zero), one)
        gx, gy = px - (sax + t * ex), py - (say + t * ey)
        dist2 = gx * gx + gy * gy
        if dist2 < best:
            best, edge, best_t, best_gx, best_gy = dist2, e, t, gx, gy
    return edge, best_t, best_gx, best_gy


@jit
def pair_geometry(x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp, ax, ay):
    """(d2, w0, w1, w2, depth) of a face at a pixel centre: signed squared distance in square NDC, the
    clamped renormalised weights and the perspective depth at that point (torch_soft.geometry)."""
    inside = ((yp - y0) * (x1 - x0) >= (xp - x0) * (y1 - y0)) and ((yp - y1) * (x2 - x1) >= (xp - x1) * (y2 - y1)) \
        and ((yp - y2) * (x0 - x2) >= (xp - x2) * (y0 - y2))
    _, _, gx, gy = nearest_edge(x0, y0, x1, y1, x2, y2, xp, yp, ax, ay)
    d2 = gx * gx + gy * gy
    if not inside:
        d2 = -d2
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    zero, one = np.float32(0.0), np.float32(1.0)
    w0 = min(max(((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1)) / det, zero), one)
    w1 = min(max(((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2)) / det, zero), one)
    w2 = min(max(((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0)) / det, zero), one)
    total = w0 + w1 + w2
    w0, w1, w2 = w0 / total, w1 / total, w2 / total
    depth = one / (w0 / z0 + w1 / z1 + w2 / z2)
    return d2, w0, w1, w2, depth


@jit
def pairs_of_band(lo, hi, faces, boxes, starts, listed, bands, height, width, near, far, r2, ax, ay,
                  counting, cursor, pixel, face, d2s, depths, bary):
    """Jobs lo .. hi - 1 of the (batch entry, band) jobs. With ``counting``, cursor[p] <- the
    number of pairs of each of the band's pixels p (flat b H W + r W + c); else the pairs themselves,
    pixel p's from cursor[p] on (its first pair's index), faces ascending."""
    F = faces.shape[1]
    hf, wf = np.float32(height), np.float32(width)
    for job in range(lo, hi):
        b = job // bands
        row_lo = (job % bands) * BAND
        row_hi = min(row_lo + BAND, height) - 1
        for i in range(starts[job], starts[job + 1]):
            f = listed[i]
            n = b * F + f
            x0, y0, z0 = faces[b, f, 0, 0], faces[b, f, 0, 1], faces[b, f, 0, 2]
            x1, y1, z1 = faces[b, f, 1, 0], faces[b, f, 1, 1], faces[b, f, 1, 2]
            x2, y2, z2 = faces[b, f, 2, 0], faces[b, f, 2, 1], faces[b, f, 2, 2]
            for r in range(max(boxes[n, 0], row_lo), min(boxes[n, 1], row_hi) + 1):
                yp = np.float32(2 * r + 1 - height) / hf
                for c in range(boxes[n, 2], boxes[n, 3] + 1):
                    xp = np.float32(2 * c + 1 - width) / wf
                    d2, w0, w1, w2, depth = pair_geometry(x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp, ax, ay)
                    if not ((d2 >= 0 or -d2 < r2) and depth > near and depth < far):
                        continue
                    p = (b * height + r) * width + c
                    if counting:
                        cursor[p] += 1
                        continue
                    k = cursor[p]
                    cursor[p] = k + 1
                    pixel[k], face[k], d2s[k], depths[k] = p, n, d2, depth
                    bary[k, 0], bary[k, 1], bary[k, 2] = w0 * depth / z0, w1 * depth / z1, w2 * depth / z2


def soft_fragments(faces, height, width, near, far, radius):
    """The (pixel, face) pairs of numpy ``faces`` (B, F, 3, 3) float32: (pixel, face, d2, depth, bary)
    numpy arrays, pixel-major, faces ascending within a pixel (torch_soft.soft_fragments)."""
    from .raster import bin_faces
    B, F = faces.shape[:2]
    short = min(height, width)
    ax, ay = np.float32(width / short), np.float32(height / short)
    boxes = np.empty((B * F, 4), np.int64)
    grown_boxes(faces.reshape(B * F, 3, 3), height, width, np.float32(radius * short / 2.0), boxes)
    bands = (height + BAND - 1) // BAND
    starts, listed = bin_faces(boxes, B, F, bands)
    args = (faces, boxes, starts, listed, bands, height, width, np.float32(near), np.float32(far),
            np.float32(radius * radius), ax, ay)
    cursor = np.zeros(B * height * width, np.int64)
    empty_i, empty_f = np.empty(0, np.int64), np.empty(0, np.float32)
    run_jobs(pairs_of_band, B * bands, *args, True, cursor, empty_i, empty_i, empty_f, empty_f, np.empty((0, 3), np.float32),
             uneven=True)
    first = np.concatenate([np.zeros(1, np.int64), np.cumsum(cursor)])
    n = int(first[-1])
    out = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32), np.empty(n, np.float32),
           np.empty((n, 3), np.float32))
    cursor = first[:-1].copy()
    run_jobs(pairs_of_band, B * bands, *args, False, cursor, *out, uneven=True)
    return out


@jit
def pair_gradient(x0, y0, z0, x1, y1, z1, x2, y2, z2, xp, yp, ax, ay, g_d2, g_z, g0, g1, g2, out):
    """out (3, 3) float64 += the gradient of g_d2 d2 + g_z depth + g . bary with respect to the face
    (torch_soft.pair_gradient's formulas, per pair in float32 as the reference's, so that every clamp
    and every nearest edge is decided alike; scalars only: no allocation per pair)."""
    zero, one, two = np.float32(0.0), np.float32(1.0), np.float32(2.0)
    if g_d2 != 0:
        inside = ((yp - y0) * (x1 - x0) >= (xp - x0) * (y1 - y0)) \
            and ((yp - y1) * (x2 - x1) >= (xp - x1) * (y2 - y1)) and ((yp - y2) * (x0 - x2) >= (xp - x2) * (y0 - y2))
        edge, t, gx, gy = nearest_edge(x0, y0, x1, y1, x2, y2, xp, yp, ax, ay)
        sign = one if inside else -one
        pull_x = np.float64(-two * sign * g_d2 * gx * ax)
        pull_y = np.float64(-two * sign * g_d2 * gy * ay)
        t64 = np.float64(t)
        out[edge, 0] += pull_x * (1.0 - t64)
        out[edge, 1] += pull_y * (1.0 - t64)
        out[(edge + 1) % 3, 0] += pull_x * t64
        out[(edge + 1) % 3, 1] += pull_y * t64
    if g_z == 0 and g0 == 0 and g1 == 0 and g2 == 0:
        return
    # depth and barycentrics
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    r0 = ((y1 - y2) * xp + (x2 - x1) * yp + (x1 * y2 - x2 * y1)) / det
    r1 = ((y2 - y0) * xp + (x0 - x2) * yp + (x2 * y0 - x0 * y2)) / det
    r2 = ((y0 - y1) * xp + (x1 - x0) * yp + (x0 * y1 - x1 * y0)) / det
    c0, c1, c2 = min(max(r0, zero), one), min(max(r1, zero), one), min(max(r2, zero), one)
    total = c0 + c1 + c2
    w0, w1, w2 = c0 / total, c1 / total, c2 / total
    z = one / (w0 / z0 + w1 / z1 + w2 / z2)
    big = g_z * z + g0 * (w0 * z / z0) + g1 * (w1 * z / z1) + g2 * (w2 * z / z2)
    d0 = (z / z0) * (g0 - big)
    d1 = (z / z1) * (g1 - big)
    d2 = (z / z2) * (g2 - big)
    out[0, 2] += np.float64(-(w0 / z0) * d0)
    out[1, 2] += np.float64(-(w1 / z1) * d1)
    out[2, 2] += np.float64(-(w2 / z2) * d2)
    mean = w0 * d0 + w1 * d1 + w2 * d2
    e0 = (d0 - mean) / total if (r0 > 0 and r0 < 1) else zero
    e1 = (d1 - mean) / total if (r1 > 0 and r1 < 1) else zero
    e2 = (d2 - mean) / total if (r2 > 0 and r2 < 1) else zero
    sx = e0 * ((y1 - y2) / det) + e1 * ((y2 - y0) / det) + e2 * ((y0 - y1) / det)
    sy = e0 * ((x2 - x1) / det) + e1 * ((x0 - x2) / det) + e2 * ((x1 - x0) / det)
    out[0, 0] += np.float64(-r0 * sx)
    out[0, 1] += np.float64(-r0 * sy)
    out[1, 0] += np.float64(-r1 * sx)
    out[1, 1] += np.float64(-r1 * sy)
    out[2, 0] += np.float64(-r2 * sx)
    out[2, 1] += np.float64(-r2 * sy)


@jit
def face_sums(lo, hi, faces, height, width, order, face_starts, pixel, face, grad_d2, grad_depth, grad_bary,
              ax, ay, out):
    """Jobs over ranges of flat faces: out[n] (3, 3) <- the sum over face n's pairs (``order[face_starts[n]:
    face_starts[n + 1]]``, in pixel order) of their gradients."""
    B, F = faces.shape[0], faces.shape[1]
    per_job = (B * F + FACE_JOBS - 1) // FACE_JOBS
    acc = np.zeros((3, 3))
    for job in range(lo, hi):
        for n in range(job * per_job, min((job + 1) * per_job, B * F)):
            if face_starts[n] == face_starts[n + 1]:
                continue
            b, f = n // F, n % F
            acc[:, :] = 0.0
            for i in range(face_starts[n], face_starts[n + 1]):
                k = order[i]
                p = pixel[k] % (height * width)
                xp = np.float32(2 * (p % width) + 1 - width) / np.float32(width)
                yp = np.float32(2 * (p // width) + 1 - height) / np.float32(height)
                pair_gradient(faces[b, f, 0, 0], faces[b, f, 0, 1], faces[b, f, 0, 2], faces[b, f, 1, 0],
                              faces[b, f, 1, 1], faces[b, f, 1, 2], faces[b, f, 2, 0], faces[b, f, 2, 1],
                              faces[b, f, 2, 2], xp, yp, ax, ay, grad_d2[k], grad_depth[k], grad_bary[k, 0],
                              grad_bary[k, 1], grad_bary[k, 2], acc)
            for v in range(3):
                for d in range(3):
                    out[b, f, v, d] = acc[v, d]


def soft_fragments_backward(faces, height, width, pixel, face, grad_d2, grad_depth, grad_bary):
    """Gradient (B, F, 3, 3) float32 to numpy ``faces`` from the pairs' gradients."""
    B, F = faces.shape[:2]
    short = min(height, width)
    out = np.zeros((B, F, 3, 3), np.float32)
    order = np.argsort(face, kind="stable")
    face_starts = np.searchsorted(face[order], np.arange(B * F + 1))
    run_jobs(face_sums, FACE_JOBS, faces, height, width, order, face_starts, pixel, face, grad_d2, grad_depth,
             grad_bary, np.float32(width / short), np.float32(height / short), out)
    return out


@jit
def sigmoids(x):
    """(sigmoid(x), sigmoid(-x)) without overflow: exp(-|x|) <= 1."""
    e = np.exp(-abs(x))
    if x >= 0:
        return 1.0 / (1.0 + e), e / (1.0 + e)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@jit
def pixel_blend(lo, hi, starts, d2, depth, colours, background, sigma, gamma, eps, near, far, backward,
                grad_rgb, grad_alpha, rgb, alpha, grad_d2, grad_depth, grad_colours):
    """Jobs over blocks of pixels: the forward (rgb (P, C), alpha (P,)) or, with ``backward``, the
    pairs' gradients (torch_soft.soft_blend and soft_blend_backward), in float64 within a pixel."""
    P = starts.shape[0] - 1
    C = colours.shape[1]
    per_job = 1024
    for job in range(lo, hi):
        for p in range(job * per_job, min((job + 1) * per_job, P)):
            lo, hi = starts[p], starts[p + 1]
            zmax = np.float64(eps)
            for i in range(lo, hi):
                zmax = max(zmax, (np.float64(far) - depth[i]) / (np.float64(far) - near))
            w_bg = np.exp((eps - zmax) / gamma)
            S = w_bg
            nonzero, zeros = 1.0, 0
            for i in range(lo, hi):
                D, keep = sigmoids(np.float64(d2[i]) / sigma)
                w = np.exp(((np.float64(far) - depth[i]) / (np.float64(far) - near) - zmax) / gamma)
                S += D * w
                if keep == 0:
                    zeros += 1
                else:
                    nonzero *= keep
            colour = np.empty(C)
            for ch in range(C):
                colour[ch] = w_bg * background[ch]
            for i in range(lo, hi):
                D, _ = sigmoids(np.float64(d2[i]) / sigma)
                w = np.exp(((np.float64(far) - depth[i]) / (np.float64(far) - near) - zmax) / gamma)
                for ch in range(C):
                    colour[ch] += D * w * colours[i, ch]
            for ch in range(C):
                colour[ch] /= S
            if not backward:
                for ch in range(C):
                    rgb[p, ch] = colour[ch]
                alpha[p] = 1.0 - (0.0 if zeros > 0 else nonzero)
                continue
            for i in range(lo, hi):
                D, keep = sigmoids(np.float64(d2[i]) / sigma)
                w = np.exp(((np.float64(far) - depth[i]) / (np.float64(far) - near) - zmax) / gamma)
                if keep == 0:
                    others = nonzero if zeros == 1 else 0.0
                else:
                    others = nonzero / keep if zeros == 0 else 0.0
                spread = 0.0
                for ch in range(C):
                    spread += (colours[i, ch] - colour[ch]) * grad_rgb[p, ch]
                spread /= S
                d_D = grad_alpha[p] * others + w * spread
                grad_d2[i] = d_D * D * keep / sigma
                grad_depth[i] = -D * spread * w / (gamma * (far - near))
                for ch in range(C):
                    grad_colours[i, ch] = D * w / S * grad_rgb[p, ch]


def _starts(pixel, num_pixels):
    return np.searchsorted(pixel, np.arange(num_pixels + 1)).astype(np.int64)


def soft_blend(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far):
    """(rgb (P, C), alpha (P,)) float32 numpy arrays of the pairs' numpy arrays."""
    C = colours.shape[1]
    rgb, alpha = np.zeros((num_pixels, C), np.float32), np.zeros(num_pixels, np.float32)
    none_i, none_f = np.empty(0, np.float32), np.empty((0, C), np.float32)
    run_jobs(pixel_blend, max(1, (num_pixels + 1023) // 1024), _starts(pixel, num_pixels), d2, depth, colours,
             background, float(sigma), float(gamma), float(eps), float(near), float(far), False, none_f, none_i, rgb,
             alpha, none_i, none_i, none_f)
    return rgb, alpha


def soft_blend_backward(pixel, d2, depth, colours, background, num_pixels, sigma, gamma, eps, near, far, grad_rgb,
                        grad_alpha):
    """(grad_d2 (N,), grad_depth (N,), grad_colours (N, C)) float32 numpy arrays."""
    n, C = colours.shape
    grads = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros((n, C), np.float32)
    none_f = np.empty((0, C), np.float32)
    run_jobs(pixel_blend, max(1, (num_pixels + 1023) // 1024), _starts(pixel, num_pixels), d2, depth, colours,
             background, float(sigma), float(gamma), float(eps), float(near), float(far), True, grad_rgb, grad_alpha,
             none_f, np.empty(0, np.float32), *grads)
    return grads
