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
def turntable(renderer, vertices, faces, textures=None, frames=24, elevation=30.0, distance=DEFAULT_DISTANCE,
              start=0.0):
    """Frames (uint8 (H, W, 3)) of the mesh seen from ``frames`` azimuths around it, 360 / ``frames``
    degrees apart, the first at azimuth ``start`` (degrees).

    vertices (1, V, 3), faces (1, F, 3); textures as Renderer.render takes them, or None for a
    plain white mesh. The picture is lit as ``renderer`` says; its eye is restored afterwards.
    """
    if textures is None:
        textures = torch.ones(1, faces.shape[1], 2, 2, 2, 3, device=vertices.device)
    eye = renderer.eye
    out = []
    try:
        for azimuth in start + np.linspace(0, 360, frames, endpoint=False):
            renderer.eye = get_points_from_angles(distance, elevation, float(azimuth))
            rgb, _, _ = renderer(vertices, faces, textures)
            out.append(to_uint8(rgb[0]))
    finally:
        renderer.eye = eye
    return out


# Label text: its preferred size is a sixteenth of the picture's height, LABEL_FONT px at least
# (readable at a glance). A line too wide for the picture takes its first shorter wording that fits
# (a line may offer several), else a smaller size, down to LABEL_MIN_FONT px (Pillow's font is still
# legible at 7 px; at 6 its letters run together); at that size it wraps at spaces, and a word still
# too wide loses its last letters to an ellipsis. So every text pixel, outline included, stays inside
# the picture whatever its size.
LABEL_FONT_FRACTION = 16
LABEL_FONT = 8
LABEL_MIN_FONT = 7
ELLIPSIS = "\u2026"


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


class _Lettering:
    """Text of one size for :func:`label`: its font and measures in pixels: the margin kept clear on
    each side (a third of the size, plus the outline, which also covers a glyph's overhang to the
    left), the step from one line to the next, and the ink height of a line (descenders and outline
    included: the last line's must stay above the bottom margin)."""

    def __init__(self, draw, size):
        self.draw, self.size, self.font = draw, size, _font(size)
        self.stroke = max(1, size // 8)
        self.margin = size // 3 + self.stroke
        self.step = size + size // 4
        self.ink = self.draw.textbbox((0, 0), "Agjy|", font=self.font, stroke_width=self.stroke)[3]

    def width(self, text):
        """The width in pixels of ``text`` drawn at x = 0, its outline included."""
        return self.draw.textbbox((0, 0), text, font=self.font, stroke_width=self.stroke)[2]

    def lines_in(self, height):
        """How many lines fit in ``height`` between the top and bottom margins."""
        return max(1, 1 + (height - 2 * self.margin - self.ink) // self.step)


def _wrap(letters, text, room):
    """``text`` as lines at most ``room`` px wide in ``letters`` (a :class:`_Lettering`): words joined
    while they fit, a word wider than ``room`` on its own cut to the letters that fit, plus an ellipsis."""
    lines = []
    for word in text.split():
        joined = f"{lines[-1]} {word}" if lines else word
        if lines and letters.width(joined) <= room:
            lines[-1] = joined
            continue
        while len(word) > 1 and letters.width(word) > room:
            word = word.rstrip(ELLIPSIS)[:-1] + ELLIPSIS
        lines.append(word)
    return lines or [""]


def _wording(letters, wordings, room):
    """The first of a line's ``wordings`` (a str, or several, longest first) that fits ``room`` px, or None."""
    return next((w for w in ((wordings,) if isinstance(wordings, str) else wordings) if letters.width(w) <= room), None)


def _layout(draw, lines, width, height):
    """-> (a :class:`_Lettering`, [(line, colour)]): the largest size from the preferred one down to
    LABEL_MIN_FONT at which every line has a wording (:func:`_wording`) that fits ``width`` within
    the margins; at the smallest, the lines without one have their shortest wrapped (:func:`_wrap`),
    and those below the bottom margin are left out."""
    size = max(LABEL_FONT, height // LABEL_FONT_FRACTION)
    while True:
        letters = _Lettering(draw, size)
        room = width - 2 * letters.margin
        chosen = [_wording(letters, wordings, room) for wordings, _ in lines]
        if size <= LABEL_MIN_FONT or None not in chosen:
            break
        size -= 1
    shortest = [w if isinstance(w, str) else w[-1] for w, _ in lines]
    wrapped = [(part, colour) for line, last, (_, colour) in zip(chosen, shortest, lines)
               for part in ([line] if line is not None else _wrap(letters, last, room))]
    return letters, wrapped[:letters.lines_in(height)]


def label(image, text, colour=(255, 255, 255), bottom=False):
    """A copy of a uint8 (H, W, 3) picture with ``text`` written in its top-left corner, or its
    bottom-left with ``bottom``. ``text`` is a line or a list of (line, colour) pairs, one under the
    other; a line is a str or a tuple of wordings, longest first, for narrower pictures. Pillow's
    built-in font, outlined in black, scaled to the picture and laid out to fit inside it (see
    :data:`LABEL_MIN_FONT`); unchanged without Pillow."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return image
    lines = [(text, colour)] if isinstance(text, (str, tuple)) else list(text)
    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    letters, lines = _layout(draw, lines, image.shape[1], image.shape[0])
    height = image.shape[0]
    y = height - letters.margin - letters.ink - letters.step * (len(lines) - 1) if bottom else letters.margin
    for line, line_colour in lines:
        draw.text((letters.margin, y), line, fill=tuple(line_colour), font=letters.font,
                  stroke_width=letters.stroke, stroke_fill=(0, 0, 0))
        y += letters.step
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
