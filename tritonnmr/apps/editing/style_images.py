"""Style images the project makes itself: sunset bands, bold strokes, a mosaic, stripes (float
(3, S, S) in [0, 1])."""
import numpy as np
import torch


def sunset(size=256, seed=0):
    """Horizontal colour bands from deep blue through magenta and orange to yellow, with wavy edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    palette = np.array([[0.10, 0.10, 0.35], [0.45, 0.15, 0.50], [0.90, 0.30, 0.35], [1.00, 0.55, 0.15],
                        [1.00, 0.85, 0.30]])
    t = y + 0.04 * np.sin(2 * np.pi * (3 * x + rng.random())) + 0.02 * np.sin(2 * np.pi * (11 * x + rng.random()))
    band = np.clip(t * len(palette), 0, len(palette) - 1e-6)
    image = palette[band.astype(int)] * (0.9 + 0.1 * np.cos(np.pi * band)[..., None])
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).clamp(0, 1)


def strokes(size=256, count=60, seed=0):
    """Bold straight strokes of saturated colours on cream paper."""
    rng = np.random.default_rng(seed)
    image = np.ones((size, size, 3)) * [0.96, 0.93, 0.85]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    colours = np.array([[0.85, 0.1, 0.1], [0.1, 0.25, 0.8], [0.95, 0.75, 0.1], [0.1, 0.1, 0.1], [0.1, 0.6, 0.3]])
    for _ in range(count):
        x0, y0 = rng.uniform(0, size, 2)
        angle, length, width = rng.uniform(0, np.pi), rng.uniform(0.2, 0.6) * size, rng.uniform(0.02, 0.06) * size
        d = np.array([np.cos(angle), np.sin(angle)])
        along = (x - x0) * d[0] + (y - y0) * d[1]
        across = -(x - x0) * d[1] + (y - y0) * d[0]
        mask = (np.abs(across) < width / 2) & (np.abs(along) < length / 2)
        image[mask] = colours[rng.integers(len(colours))]
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)


def mosaic(size=256, tiles=48, seed=0):
    """Voronoi tiles of jewel colours separated by dark grout."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (tiles, 2))
    colours = rng.choice(np.array([[0.05, 0.45, 0.55], [0.85, 0.65, 0.15], [0.65, 0.1, 0.2], [0.15, 0.2, 0.6],
                                   [0.9, 0.9, 0.85]]), tiles)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    d = np.hypot(x[..., None] - centres[:, 0], y[..., None] - centres[:, 1])
    nearest = np.sort(d, -1)
    image = colours[d.argmin(-1)]
    image[(nearest[..., 1] - nearest[..., 0]) < 3] = [0.12, 0.1, 0.1]
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)


def stripes(size=256, angle=30.0, period=None, seed=0):
    """Straight navy stripes on cream, ``angle`` degrees anticlockwise from horizontal as the image
    is seen (rows run down), a stripe every ``period`` pixels (default: size / 8), edges anti-aliased
    over a pixel; ``seed`` is unused (the picture is exact) and kept for the STYLES signature."""
    period = period or size / 8
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    a = np.radians(angle)
    across = x * np.sin(a) + y * np.cos(a)  # along the stripes' normal, (sin a, cos a) in (column, row)
    phase = np.abs((across / period) % 1.0 - 0.5) * period  # 0 at a stripe's centre, period / 2 between
    ink = np.clip(period / 4 - phase + 0.5, 0, 1)[..., None]  # stripes half the period wide
    image = ink * np.array([0.1, 0.15, 0.4]) + (1 - ink) * np.array([0.96, 0.93, 0.85])
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)


STYLES = {"sunset": sunset, "strokes": strokes, "mosaic": mosaic, "stripes": stripes}
