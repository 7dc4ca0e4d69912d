"""Input validation: every public function checks its arguments here, before any kernel runs.

Each check raises TypeError or ValueError whose message names the argument and what was expected.
"""
import math

import torch


def tensor(name, value, dims=None, last=None, floating=True):
    """Return ``value`` as a contiguous float32 (or integer) tensor after checking its shape."""
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if not floating and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer tensor (int32 or int64), got dtype {value.dtype}")
    if dims is not None and value.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(value.shape)}")
    if last is not None and value.shape[-1] != last:
        raise ValueError(f"{name} must have last dimension {last}, got shape {tuple(value.shape)}")
    if floating and value.dtype != torch.float32:
        value = value.float()
    return value.contiguous()


def finite(name, value):
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def vertices(value, name="vertices"):
    return finite(name, tensor(name, value, dims=3, last=3))


def faces(value, num_vertices=None, batch=None, name="faces"):
    """Integer (B, F, 3) face indices, each in [0, num_vertices)."""
    value = tensor(name, value, dims=3, last=3, floating=False).long()
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"{name} has batch size {value.shape[0]} but vertices has {batch}")
    if num_vertices is not None and value.numel():
        lo, hi = int(value.min()), int(value.max())
        if lo < 0 or hi >= num_vertices:
            raise ValueError(f"{name} indices must be in [0, {num_vertices}) (the number of vertices), "
                             f"got values from {lo} to {hi}")
    return value


def screen_faces(value, name="faces"):
    """Screen-space faces (B, F, 3, 3) float."""
    value = tensor(name, value, dims=4)
    if value.shape[2:] != (3, 3):
        raise ValueError(f"{name} must have shape (B, F, 3, 3), got {tuple(value.shape)}")
    return value


def textures(value, batch, num_faces, name="textures"):
    """Texture cubes (B, F, T, T, T, 3)."""
    value = tensor(name, value, dims=6, last=3)
    B, F, T = value.shape[:3]
    if (B, F) != (batch, num_faces) or value.shape[3:5] != (T, T):
        raise ValueError(f"{name} must have shape (B={batch}, F={num_faces}, T, T, T, 3), "
                         f"got {tuple(value.shape)}")
    return finite(name, value)


def image_size(value, name="image_size"):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def near_far(near, far):
    if not (isinstance(near, (int, float)) and math.isfinite(near) and near >= 0):
        raise ValueError(f"near must be a finite number >= 0, got {near!r}")
    if not (isinstance(far, (int, float)) and far > near):
        raise ValueError(f"far must be a number greater than near ({near}), got {far!r}")


def same_device(**named):
    devices = {k: v.device for k, v in named.items() if torch.is_tensor(v)}
    if len(set(devices.values())) > 1:
        raise ValueError("tensors must be on one device, got " +
                         ", ".join(f"{k} on {d}" for k, d in devices.items()))


def choice(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def texture_like(value, batch, num_faces, num_vertices, name="textures"):
    """Cubes (B, F, T, T, T, 3), face-vertex attributes (B, F, 3, C) or vertex attributes (B, V, C)."""
    value = tensor(name, value)
    if value.dim() == 6:
        return textures(value, batch, num_faces, name)
    expected = {3: (batch, num_vertices), 4: (batch, num_faces, 3)}.get(value.dim())
    if expected is None or tuple(value.shape[:-1]) != expected:
        raise ValueError(f"{name} must be texture cubes (B={batch}, F={num_faces}, T, T, T, 3), per-vertex "
                         f"colours (B, V={num_vertices}, C) or per face-vertex colours (B, F, 3, C); "
                         f"got shape {tuple(value.shape)}")
    return finite(name, value)
