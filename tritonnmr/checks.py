"""Input validation, run once at the public entry points, before any kernel.

Each check raises TypeError or ValueError whose message names the argument and what was expected;
inside the package, functions trust what these checks let through.
"""
import math
import numbers

import torch


def tensor(name, value, dims=None, last=None, floating=True):
    """``value`` as a contiguous tensor after checking its type and shape: floating point ones become
    float32; integer ones (``floating=False``) keep their dtype."""
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
    if value.numel() and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def vertices(value, name="vertices"):
    return finite(name, tensor(name, value, dims=3, last=3))


def faces(value, num_vertices=None, batch=None, name="faces", padding=False):
    """Integer (B, F, 3) face indices, each in [0, num_vertices). With ``padding``, rows of -1 are
    padding faces (a row is either all -1 or all valid)."""
    value = tensor(name, value, dims=3, last=3, floating=False).long()
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"{name} has batch size {value.shape[0]} but vertices has {batch}")
    if num_vertices is not None and value.numel():
        # one host read for the three facts: a row mixing -1 and indices, the smallest and the largest
        # index of the real (non-padding) rows (lo > hi when every row is padding)
        pad = (value == -1).all(-1, keepdim=True) if padding else torch.zeros_like(value[..., :1], dtype=torch.bool)
        mixed = ((value == -1) & ~pad).any() if padding else torch.zeros((), dtype=torch.bool, device=value.device)
        lo = torch.where(pad, torch.iinfo(torch.long).max, value).min()
        hi = torch.where(pad, torch.iinfo(torch.long).min, value).max()
        mixed, lo, hi = torch.stack([mixed.long(), lo, hi]).tolist()
        if mixed:
            raise ValueError(f"{name}: a padding row must be all -1, got a row mixing -1 and vertex indices")
        if lo <= hi and (lo < 0 or hi >= num_vertices):
            raise ValueError(f"{name} indices must be in [0, {num_vertices}) (the number of vertices)"
                             + (" or rows of -1 (padding)" if padding else "") + f", got values from {lo} to {hi}")
    return value


def screen_faces(value, name="faces"):
    """Screen-space faces (B, F, 3, 3) float."""
    value = tensor(name, value, dims=4)
    if value.shape[2:] != (3, 3):
        raise ValueError(f"{name} must have shape (B, F, 3, 3), got {tuple(value.shape)}")
    return value


def textures(value, batch, num_faces, name="textures"):
    """Texture cubes (B, F, T, T, T, C) of finite values."""
    return finite(name, _cube_shape(value, batch, num_faces, name))


def _cube_shape(value, batch, num_faces, name):
    value = tensor(name, value, dims=6)
    B, F, T = value.shape[:3]
    if (B, F) != (batch, num_faces) or value.shape[3:5] != (T, T) or T < 1 or value.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (B={batch}, F={num_faces}, T, T, T, C) with T, C >= 1, "
                         f"got {tuple(value.shape)}")
    return value


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        return None
    return int(value)


def image_size(value, name="image_size"):
    """An int S (square) or a (height, width) pair of positive ints -> (height, width)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        h, w = (_positive_int(name, v) for v in value)
        if h is not None and w is not None:
            return h, w
    elif torch.is_tensor(value) and value.numel() == 1 and not value.is_floating_point():
        return image_size(int(value), name)
    else:
        s = _positive_int(name, value)
        if s is not None:
            return s, s
    raise ValueError(f"{name} must be a positive int or a (height, width) pair of positive ints, got {value!r}")


def number(name, value, low=None, high=None, allow_low=True):
    """A finite real number (bools refused), optionally bounded."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value < low or (value == low and not allow_low)):
        raise ValueError(f"{name} must be {'>=' if allow_low else '>'} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return float(value)


def positive_number(name, value, allow_zero=False):
    return number(name, value, low=0, allow_low=allow_zero)


def near_far(near, far):
    number("near", near, low=0)
    number("far", far)
    if not far > near:
        raise ValueError(f"far must be greater than near ({near}), got {far!r}")


def background(value, channels=None, name="background_color"):
    """Background colour as a float tensor (CPU): finite numbers, one per channel, or one (or several
    equal ones, like the default (0, 0, 0)) for all ``channels``."""
    try:
        t = value.detach().float().flatten().cpu() if torch.is_tensor(value) else \
            torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a number or a sequence of numbers, got {value!r}") from None
    if t.numel() == 0:
        raise ValueError(f"{name} must have at least one value, got {value!r}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values: {value!r}")
    if channels is not None and t.numel() != channels:
        if t.numel() != 1 and not torch.all(t == t[0]):
            raise ValueError(f"{name} must have {channels} values (one per colour channel) or one, "
                             f"got {t.numel()}")
        t = t[:1].expand(channels)
    return t


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
    """Cubes (B, F, T, T, T, C), face-vertex attributes (B, F, 3, C) or vertex attributes (B, V, C):
    the shape only (the shader's ``check`` then tests the values, once)."""
    value = tensor(name, value)
    if value.dim() and value.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one colour channel, got shape {tuple(value.shape)}")
    if value.dim() == 6:
        return _cube_shape(value, batch, num_faces, name)
    expected = {3: (batch, num_vertices), 4: (batch, num_faces, 3)}.get(value.dim())
    if expected is None or tuple(value.shape[:-1]) != expected:
        raise ValueError(f"{name} must be texture cubes (B={batch}, F={num_faces}, T, T, T, C), per-vertex "
                         f"colours (B, V={num_vertices}, C) or per face-vertex colours (B, F, 3, C); "
                         f"got shape {tuple(value.shape)}")
    return value


def vector3(name, value, like, batch=None):
    """A (3,) or (B, 3) vector (list, array or tensor) as a finite float tensor (B or 1, 3) on
    ``like``'s device; ``batch``, if given, must match B when B > 1."""
    try:  # plain values are checked on the CPU and then moved: no device sync for them
        t = value.to(device=like.device, dtype=like.dtype) if torch.is_tensor(value) else \
            torch.as_tensor(value, dtype=like.dtype)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be 3 numbers or a (B, 3) array, got {value!r}") from None
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (B, 3), got {tuple(t.shape)}")
    if batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"{name} has batch size {t.shape[0]} but the vertices have {batch}")
    return finite(name, t).to(like.device)
