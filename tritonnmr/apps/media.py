"""Pictures in and out: target images, PNG/GIF writing, turntables, labelled panels, silhouette IoU.

Images handed around here are uint8 (H, W, 3) arrays (what GIF and PNG writers take) or float
tensors (3, H, W) / (H, W) in [0, 1] (what the renderer gives), converted by :func:`to_uint8`.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from ..camera import DEFAULT_DISTANCE, get_points_from_angles


def to_uint8(image):
    """(3, H, W) or (H, W) tensor in [0, 1] -> (H, W, 3) uint8 array."""
    a = image.detach().float().cpu().clamp(0, 1)
    a = a[None].expand(3, -1, -1) if a.dim() == 2 else a
    return (a.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_png(path, image):
    """Write a uint8 (H, W, 3) array or a tensor in [0, 1] (see :func:`to_uint8`) as a PNG."""
    import imageio.v3 as iio
    iio.imwrite(path, to_uint8(image) if torch.is_tensor(image) else image)


def save_gif(path, frames, fps=12):
    """Write uint8 (H, W, 3) frames as a looping GIF."""
    import imageio.v3 as iio
    if not frames:
        return
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=int(1000 / fps), loop=0)


def _read(path):
    """The pixels of an image file as a float32 (H, W, C) array in [0, 1], C = 1 to 4."""
    import imageio.v3 as iio
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"cannot read image {path}: the file is empty")
    try:
        a = np.asarray(iio.imread(path))
    except Exception:  # imageio raises many kinds, with several lines of plugin hints
        raise ValueError(f"cannot read image {path}: not an image format imageio reads (PNG, JPEG, BMP, GIF, ...)") \
            from None
    if a.ndim == 4:  # an animation: its first frame
        a = a[0]
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or not 1 <= a.shape[-1] <= 4 or min(a.shape[:2]) < 1:
        raise ValueError(f"cannot read image {path}: expected a 2D picture, got an array of shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    return np.clip(a.astype(np.float32), 0, 1)


def load_image(path, image_size=None, notice=print, alpha=False):
    """An image file as a float (3, H, W) tensor in [0, 1], resized to ``image_size`` (an int S for
    S x S, or (height, width); None keeps the file's size), telling ``notice`` when it resizes.

    Grey images get three equal channels. With ``alpha`` it is (4, H, W): the file's alpha channel
    or, when it has none, a mask of the pixels that differ from the top-left corner's colour (taken
    as the background). Raises FileNotFoundError, or a one-line ValueError for a file that is empty
    or not an image."""
    a = _read(path)
    channels = a.shape[-1]
    rgb = np.repeat(a[..., :1], 3, -1) if channels <= 2 else a[..., :3]
    if alpha:
        if channels in (2, 4):
            mask = a[..., -1:]
        else:
            mask = (np.abs(rgb - rgb[0, 0]).sum(-1, keepdims=True) > 0.05).astype(np.float32)
        rgb = np.concatenate([rgb, mask], -1)
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
    if image_size is not None and tuple(t.shape[1:]) != checks.image_size(image_size):
        h, w = checks.image_size(image_size)
        notice(f"note: resized {os.path.basename(path)} from {t.shape[2]}x{t.shape[1]} to {w}x{h} (width x height)")
        t = F.interpolate(t[None], size=(h, w), mode="area")[0]
    return t


def silhouette_iou(a, b, threshold=0.5):
    """Intersection over union of two silhouettes (..., H, W), thresholded."""
    a, b = a > threshold, b > threshold
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


@torch.no_grad()
def turntable(renderer, vertices, faces, textures=None, frames=24, elevation=30.0, distance=DEFAULT_DISTANCE):
    """Frames (uint8 (H, W, 3)) of the mesh seen from ``frames`` azimuths around it, from 0 degrees.

    vertices (1, V, 3), faces (1, F, 3); textures as Renderer.render takes them, or None for a
    plain white mesh. The picture is lit as ``renderer`` says; its eye is restored afterwards.
    """
    if textures is None:
        textures = torch.ones(1, faces.shape[1], 2, 2, 2, 3, device=vertices.device)
    eye = renderer.eye
    out = []
    try:
        for azimuth in np.linspace(0, 360, frames, endpoint=False):
            renderer.eye = get_points_from_angles(distance, elevation, float(azimuth))
            rgb, _, _ = renderer(vertices, faces, textures)
            out.append(to_uint8(rgb[0]))
    finally:
        renderer.eye = eye
    return out


def label(image, text, colour=(255, 255, 255), bottom=False):
    """A copy of a uint8 (H, W, 3) picture with ``text`` written in its top-left corner, or its
    bottom-left with ``bottom``. ``text`` may be a list of (line, colour) pairs, one under the other.
    Pillow's built-in font, outlined in black, scaled to the picture; unchanged without Pillow."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return image
    lines = [(text, colour)] if isinstance(text, str) else list(text)
    picture = Image.fromarray(np.ascontiguousarray(image))
    size = max(8, image.shape[0] // 16)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(picture)
    step = size + size // 4
    y = image.shape[0] - step * len(lines) - size // 4 if bottom else size // 4
    for line, line_colour in lines:
        draw.text((size // 3, y), line, fill=tuple(line_colour), font=font, stroke_width=max(1, size // 8),
                  stroke_fill=(0, 0, 0))
        y += step
    return np.asarray(picture)


def side_by_side(*panels, gap=2, gap_colour=64):
    """uint8 (H, W_i, 3) panels of one height -> one (H, sum W_i + gaps, 3) picture."""
    height = panels[0].shape[0]
    if any(p.shape[0] != height for p in panels):
        raise ValueError(f"panels must have one height, got {[p.shape[0] for p in panels]}")
    strip = np.full((height, gap, 3), gap_colour, dtype=np.uint8)
    parts = [panels[0]]
    for p in panels[1:]:
        parts += [strip, p]
    return np.concatenate(parts, 1)
