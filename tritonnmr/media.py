"""Pictures in and out: target images, PNG/GIF writing, turntables, silhouette IoU."""
import os

import numpy as np
import torch
import torch.nn.functional as F

from .camera import get_points_from_angles


def to_uint8(image):
    """(3, H, W) or (H, W) tensor in [0, 1] -> (H, W, 3) uint8 array."""
    a = image.detach().float().cpu().clamp(0, 1)
    a = a[None].expand(3, -1, -1) if a.dim() == 2 else a
    return (a.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_png(path, image):
    import imageio.v3 as iio
    iio.imwrite(path, to_uint8(image) if torch.is_tensor(image) else image)


def save_gif(path, frames, fps=12):
    """Write uint8 (H, W, 3) frames as a looping GIF."""
    import imageio.v3 as iio
    if not frames:
        return
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=int(1000 / fps), loop=0)


def load_image(path, image_size=None, notice=print, alpha=False):
    """An image file as a float (3, S, S) tensor in [0, 1], resized (with a notice) to ``image_size``.

    With ``alpha`` it is (4, S, S): the file's alpha channel or, when it has none, a mask of the
    pixels that differ from the top-left corner's colour (the background)."""
    import imageio.v3 as iio
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    try:
        a = np.asarray(iio.imread(path))
    except Exception as e:  # imageio raises many kinds
        raise ValueError(f"cannot read image {path}: {e}") from None
    a = a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)
    a = np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a
    if alpha and a.shape[-1] < 4:
        a = np.concatenate([a[..., :3], (np.abs(a[..., :3] - a[0, 0, :3]).sum(-1, keepdims=True) > 0.05)], -1)
    a = a[..., :4] if alpha else a[..., :3]
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
    if image_size is not None and tuple(t.shape[1:]) != (image_size, image_size):
        notice(f"note: resized {os.path.basename(path)} from {t.shape[2]}x{t.shape[1]} to {image_size}x{image_size}")
        t = F.interpolate(t[None], size=(image_size, image_size), mode="area")[0]
    return t


def silhouette_iou(a, b, threshold=0.5):
    """Intersection over union of two silhouettes (..., H, W), thresholded."""
    a, b = a > threshold, b > threshold
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


@torch.no_grad()
def turntable(renderer, vertices, faces, textures=None, frames=24, elevation=30.0, distance=2.732):
    """Frames (uint8 (S, S, 3)) of the mesh seen from ``frames`` azimuths around it.

    vertices (1, V, 3), faces (1, F, 3); textures as Renderer.render takes them, or None for a
    plain white mesh. The renderer's eye is restored afterwards.
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
