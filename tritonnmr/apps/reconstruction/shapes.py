"""Closed triangle meshes: the sphere template and 13 categories of parametric objects.

Every primitive is a closed, outward-oriented surface (counter-clockwise seen from outside); an
object is the union of a few primitives (its parts may overlap, which the winding-number
voxelizer handles). Coordinates: y up; objects are normalised like ShapeNet
models: centred on their bounding box, whose diagonal is 1.
"""
import math

import numpy as np
import torch


def icosphere(subdivisions=3):
    """Unit sphere by subdividing an icosahedron: 3 subdivisions give 642 vertices and 1280 faces."""
    p = (1 + math.sqrt(5)) / 2
    v = [(-1, p, 0), (1, p, 0), (-1, -p, 0), (1, -p, 0), (0, -1, p), (0, 1, p), (0, -1, -p), (0, 1, -p),
         (p, 0, -1), (p, 0, 1), (-p, 0, -1), (-p, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    vertices = [np.array(x, dtype=np.float64) / np.linalg.norm(x) for x in v]
    for _ in range(subdivisions):
        midpoint, faces = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                m = vertices[a] + vertices[b]
                vertices.append(m / np.linalg.norm(m))
                midpoint[key] = len(vertices) - 1
            return midpoint[key]
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = faces
    return torch.tensor(np.array(vertices), dtype=torch.float32), torch.tensor(f, dtype=torch.int64)


# -- primitives: (vertices (V, 3) float64 array, faces (F, 3) int array) ------------------------------

_AXES = {"y": np.eye(3), "x": np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1.0]]),  # y -> x
         "z": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0.0]])}                   # y -> z


def _place(v, centre, axis="y"):
    """Rotate a part built along +y onto ``axis`` (a proper rotation keeps the orientation), then move it."""
    return v @ _AXES[axis].T + np.asarray(centre, dtype=np.float64)


def box(centre, size):
    """Axis-aligned box of ``size`` (sx, sy, sz) around ``centre``."""
    c = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)]) * np.asarray(size)
    f = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6),
         (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    return c + np.asarray(centre, dtype=np.float64), np.array(f)


def lathe(centre, profile, axis="y", segments=16):
    """Surface of revolution: ``profile`` is [(radius, height), ...] from bottom to top, closed by
    a centre vertex at each end. A cylinder is two rows, a cone ends in radius 0."""
    n = len(profile)
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rings = [np.stack([r * np.cos(angles), np.full(segments, h), r * np.sin(angles)], 1) for r, h in profile]
    v = np.concatenate(rings + [[[0, profile[0][1], 0]], [[0, profile[-1][1], 0]]])
    bottom, top = n * segments, n * segments + 1
    f = []
    for i in range(segments):
        j = (i + 1) % segments
        f.append((bottom, i, j))
        f.append((top, (n - 1) * segments + j, (n - 1) * segments + i))
        for k in range(n - 1):
            a, b, c, d = k * segments + i, k * segments + j, (k + 1) * segments + j, (k + 1) * segments + i
            f += [(a, d, c), (a, c, b)]
    return _place(v, centre, axis), np.array(f)


def cylinder(centre, radius, height, axis="y", segments=16):
    return lathe(centre, [(radius, -height / 2), (radius, height / 2)], axis, segments)


def cone(centre, radius, height, axis="y", segments=16, top_radius=0.0):
    return lathe(centre, [(radius, -height / 2), (top_radius, height / 2)], axis, segments)


def combine(parts):
    """Union of parts -> (vertices (V, 3) float32 tensor, faces (F, 3) int64 tensor), normalised so the
    bounding box is centred at the origin with a diagonal of 1 (ShapeNet's convention)."""
    vs, fs, offset = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + offset)
        offset += len(v)
    v = np.concatenate(vs)
    lo, hi = v.min(0), v.max(0)
    v = (v - (lo + hi) / 2) / np.linalg.norm(hi - lo)
    return torch.tensor(v, dtype=torch.float32), torch.tensor(np.concatenate(fs), dtype=torch.int64)


# -- the 13 categories (each takes a numpy Generator and returns combine(...)) --------------------------

def _legs(rng, width, depth, height, thickness, round_legs):
    x, z = width / 2 - thickness, depth / 2 - thickness
    make = (lambda cx, cz: cylinder((cx, height / 2, cz), thickness / 2, height)) if round_legs else \
        (lambda cx, cz: box((cx, height / 2, cz), (thickness, height, thickness)))
    return [make(sx * x, sz * z) for sx in (-1, 1) for sz in (-1, 1)]


def table(rng):
    w, d, h = rng.uniform(0.8, 1.6), rng.uniform(0.5, 1.0), rng.uniform(0.5, 0.9)
    top = rng.uniform(0.03, 0.08)
    parts = [box((0, h, 0), (w, top, d))]
    if rng.random() < 0.25:  # pedestal table
        parts += [cylinder((0, h / 2, 0), rng.uniform(0.04, 0.08), h), cylinder((0, 0.02, 0), d * 0.35, 0.04)]
    else:
        parts += _legs(rng, w, d, h, rng.uniform(0.04, 0.1), rng.random() < 0.4)
    return combine(parts)


def chair(rng):
    w, d, h = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.5)
    back = rng.uniform(0.4, 0.7)
    return combine([box((0, h, 0), (w, 0.05, d)), box((0, h + back / 2, -d / 2 + 0.025), (w, back, 0.05))]
                   + _legs(rng, w, d, h, rng.uniform(0.03, 0.06), rng.random() < 0.5))


def bench(rng):
    w, d, h = rng.uniform(1.2, 2.0), rng.uniform(0.3, 0.5), rng.uniform(0.35, 0.5)
    parts = [box((0, h, 0), (w, 0.05, d))] + _legs(rng, w, d, h, rng.uniform(0.04, 0.08), False)
    if rng.random() < 0.6:
        back = rng.uniform(0.2, 0.4)
        parts.append(box((0, h + back / 2 + 0.05, -d / 2), (w, back, 0.04)))
    return combine(parts)


def sofa(rng):
    w, d, h = rng.uniform(1.2, 2.2), rng.uniform(0.7, 0.9), rng.uniform(0.3, 0.45)
    back, arm = rng.uniform(0.35, 0.6), rng.uniform(0.12, 0.25)
    return combine([box((0, h / 2, 0), (w, h, d)), box((0, h + back / 2, -d / 2 + 0.1), (w, back, 0.2)),
                    box((-w / 2 + arm / 2, h + 0.1, 0), (arm, 0.2, d)),
                    box((w / 2 - arm / 2, h + 0.1, 0), (arm, 0.2, d))])


def lamp(rng):
    h, base = rng.uniform(0.8, 1.4), rng.uniform(0.15, 0.3)
    shade_r, shade_h = rng.uniform(0.15, 0.35), rng.uniform(0.2, 0.35)
    return combine([cylinder((0, 0.02, 0), base, 0.04), cylinder((0, h / 2, 0), 0.02, h),
                    cone((0, h, 0), shade_r, shade_h, top_radius=shade_r * rng.uniform(0.3, 0.7))])


def airplane(rng):
    length, r = rng.uniform(1.2, 1.8), rng.uniform(0.06, 0.12)
    span, chord = rng.uniform(1.0, 1.8), rng.uniform(0.2, 0.4)
    wing_z = rng.uniform(-0.1, 0.15) * length
    return combine([cylinder((0, 0, 0), r, length, axis="z"), cone((0, 0, length / 2 + 0.1), r, 0.2, axis="z"),
                    box((0, 0, wing_z), (span, 0.03, chord)),
                    box((0, 0, -length / 2 + 0.1), (span * 0.35, 0.03, chord * 0.6)),
                    box((0, r + 0.12, -length / 2 + 0.1), (0.03, 0.25, chord * 0.6))])


def car(rng):
    length, w, h = rng.uniform(1.4, 2.0), rng.uniform(0.6, 0.8), rng.uniform(0.25, 0.35)
    wheel = rng.uniform(0.12, 0.18)
    cabin = rng.uniform(0.4, 0.6) * length
    parts = [box((0, wheel + h / 2, 0), (w, h, length)),
             box((0, wheel + h + 0.12, rng.uniform(-0.1, 0.1)), (w * 0.9, 0.24, cabin))]
    parts += [cylinder((sx * w / 2, wheel, sz * length * 0.32), wheel, 0.12, axis="x")
              for sx in (-1, 1) for sz in (-1, 1)]
    return combine(parts)


def display(rng):
    w, h = rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.8)
    neck = rng.uniform(0.1, 0.25)
    return combine([box((0, neck + h / 2, 0), (w, h, 0.04)), box((0, neck / 2, -0.04), (0.08, neck, 0.04)),
                    box((0, 0.01, -0.04), (w * 0.4, 0.02, 0.25))])


def speaker(rng):
    w, h, d = rng.uniform(0.4, 0.6), rng.uniform(0.6, 1.2), rng.uniform(0.4, 0.6)
    parts = [box((0, h / 2, 0), (w, h, d))]
    n = int(rng.integers(1, 4))
    for i in range(n):
        r = min(w * 0.35, h / (2 * n + 1))
        parts.append(cylinder((0, h * (i + 0.5) / n, d / 2), r, 0.06, axis="z"))
    return combine(parts)


def rifle(rng):
    length = rng.uniform(1.4, 2.0)
    return combine([cylinder((0, 0.05, length * 0.2), 0.02, length * 0.6, axis="z"),
                    box((0, 0.03, -length * 0.05), (0.06, 0.1, length * 0.35)),
                    box((0, -0.02, -length * 0.35), (0.05, rng.uniform(0.12, 0.2), length * 0.28)),
                    box((0, -0.1, length * 0.02), (0.04, rng.uniform(0.12, 0.22), 0.06))])


def vessel(rng):
    length, w, h = rng.uniform(1.4, 2.0), rng.uniform(0.3, 0.5), rng.uniform(0.15, 0.25)
    parts = [box((0, h / 2, 0), (w, h, length)),
             lathe((0, h / 2, length / 2), [(w / 2, -0.0), (0.0, 0.3)], axis="z", segments=4),
             box((0, h + 0.1, -length * 0.1), (w * 0.6, 0.2, length * rng.uniform(0.2, 0.4)))]
    if rng.random() < 0.6:
        parts.append(cylinder((0, h + 0.35, length * 0.1), 0.02, 0.5))
    return combine(parts)


def phone(rng):
    w, h = rng.uniform(0.45, 0.55), rng.uniform(0.9, 1.1)
    parts = [box((0, 0, 0), (w, h, rng.uniform(0.05, 0.09)))]
    if rng.random() < 0.5:
        parts.append(box((0, -h / 2 - 0.05, 0.0), (w * 0.6, 0.1, 0.03)))
    return combine(parts)


def cabinet(rng):
    w, h, d = rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.4), rng.uniform(0.4, 0.6)
    legs = rng.uniform(0.0, 0.12)
    parts = [box((0, legs + h / 2, 0), (w, h, d))]
    if legs > 0.03:
        parts += _legs(rng, w, d, legs, 0.05, False)
    n = int(rng.integers(2, 5))
    parts += [box((0, legs + h * (i + 0.5) / n, d / 2 + 0.015), (w * 0.85, h / n * 0.8, 0.03)) for i in range(n)]
    return combine(parts)


# ShapeNet's synset ids for the 13 categories of the paper, with our generator for each
CATEGORIES = {
    "02691156": ("airplane", airplane), "02828884": ("bench", bench), "02933112": ("cabinet", cabinet),
    "02958343": ("car", car), "03001627": ("chair", chair), "03211117": ("display", display),
    "03636649": ("lamp", lamp), "03691459": ("speaker", speaker), "04090263": ("rifle", rifle),
    "04256520": ("sofa", sofa), "04379243": ("table", table), "04401088": ("phone", phone),
    "04530566": ("vessel", vessel),
}
