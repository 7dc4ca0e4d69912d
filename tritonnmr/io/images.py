"""Texture images: reading ``map_Kd`` files as float RGB in [0, 1], writing 8-bit PNGs."""
import os

import numpy as np

from .text import ObjError, one_line, where

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def read_texture(path, mtl_path=None, lineno=None):
    """The first frame of the image ``path`` as (h, w, 3) float32 in [0, 1], row 0 the top.

    Pixels are converted as :func:`image_pixels` says. ``mtl_path`` and ``lineno`` (the ``map_Kd``
    line) go into errors: FileNotFoundError when the file is missing, ObjError (a ValueError) when it
    cannot be decoded.
    """
    from PIL import Image  # a dependency of imageio

    at = f" (map_Kd at {where(mtl_path, lineno)})" if mtl_path is not None else ""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"texture image not found: {path}{at}")
    origin = where(mtl_path, lineno) if mtl_path is not None else path
    try:
        with Image.open(path) as img:
            return image_pixels(img)
    except MemoryError:
        raise
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, EOFError ... for bad files
        raise ObjError(f"{origin}: cannot read texture image {one_line(path)}: {one_line(reason(e))}") from None


def reason(error):
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def image_pixels(img):
    """A Pillow image's first frame as (h, w, 3) float32 in [0, 1], row 0 the top.

    8-bit images of any mode (grey, grey+alpha, palette, RGB, RGBA, CMYK ...) are converted to RGB and
    divided by 255, 16-bit grey by 65535, float grey clipped to [0, 1]; alpha is dropped; an animated
    GIF or PNG gives its first frame. Raises ValueError for 32-bit integer or non-finite pixels and an
    empty image (and whatever Pillow raises for data it cannot decode).
    """
    img.load()
    if img.mode in _SIXTEEN_BIT or img.mode == "I":
        grey = np.asarray(img).astype(np.float64)
        if grey.min(initial=0) < 0 or grey.max(initial=0) > 65535:
            raise ValueError(f"32-bit integer pixels (mode {img.mode}) are not supported")
        rgb = np.repeat((grey / 65535.0)[..., None], 3, -1)
    elif img.mode == "F":
        grey = np.asarray(img).astype(np.float64)
        if not np.isfinite(grey).all():
            raise ValueError("the image has NaN or infinite pixels")
        rgb = np.repeat(np.clip(grey, 0, 1)[..., None], 3, -1)
    else:
        rgb = np.asarray(img.convert("RGB")).astype(np.float64) / 255.0
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError("the image is empty")
    return np.ascontiguousarray(rgb, dtype=np.float32)


def to_uint8(values):
    """Floats in [0, 1] as 8-bit values: round(clip(x, 0, 1) * 255)."""
    return np.round(np.clip(np.asarray(values, dtype=np.float64), 0, 1) * 255).astype(np.uint8)


def to_pil(image):
    """``image`` (h, w, 3) float in [0, 1] as an 8-bit RGB Pillow image (:func:`to_uint8`)."""
    from PIL import Image

    return Image.fromarray(to_uint8(image), "RGB")


def write_png(path, image):
    """Write ``image`` (h, w, 3) float in [0, 1] as an 8-bit RGB PNG (:func:`to_uint8`)."""
    to_pil(image).save(path)
