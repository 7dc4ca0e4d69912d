"""Input validation, run once at the public entry points, before any kernel.

Each check raises TypeError or ValueError whose message names the argument and what was expected;
inside the package, functions trust what these checks let through.

Checks of values that live on the device (NaN, index ranges) need the device's answer, and on a
GPU each answer read back drains the queue. Inside ``with gathered() as pending:`` those checks are
collected instead, and ``pending.read()`` asks the device once for all of them (and for any other
values the caller needs); the first failed check then raises. Code between a check and the read
must therefore stay safe on bad input (index gathers clamp; NaNs only make NaNs). Outside such a
block every check reads at once, as usual. Plain Python values (colours, directions) are checked
on the host and become device tensors through a cache (:func:`on_device`), so a call with the same
settings copies nothing to the device.
"""
import contextlib
import contextvars
import functools
import math
import numbers

import numpy as np
import torch

_pending = contextvars.ContextVar("tritonnmr_pending_checks", default=None)


class Pending:
    """Device-side checks waiting for one read: (bad, message, values) with ``bad`` a 0-dim bool
    tensor and ``message`` a format string whose {} are filled by the 0-dim integer ``values``."""

    def __init__(self):
        self.facts = []

    def read(self, *extra):
        """Read every pending check and the 0-dim tensors ``extra`` in one go per device; raise
        ValueError for the first failed check, else return the extras as Python numbers."""
        facts, self.facts = self.facts, []
        scalars = [t for bad, _, values in facts for t in (bad, *values)] + list(extra)
        by_device = {}
        for i, t in enumerate(scalars):
            by_device.setdefault(t.device, []).append(i)
        got = [None] * len(scalars)
        for indices in by_device.values():  # one read per device (in practice one)
            for i, value in zip(indices, torch.stack([scalars[i].reshape(()).long() for i in indices]).tolist()):
                got[i] = value
        at = 0
        for bad, message, values in facts:
            if got[at]:
                raise ValueError(message.format(*got[at + 1:at + 1 + len(values)]))
            at += 1 + len(values)
        return got[at:]


@contextlib.contextmanager
def gathered():
    """``with gathered() as pending:``: device-side checks inside wait for ``pending.read()`` (or the
    end of the block, when nothing inside raised)."""
    pending = Pending()
    token = _pending.set(pending)
    try:
        yield pending
    except BaseException:
        _pending.reset(token)
        raise
    _pending.reset(token)
    pending.read()


def fail_if(bad, message, *values):
    """Raise ValueError(message.format(*values)) where the 0-dim bool tensor ``bad`` is true: now, or at
    the read of the enclosing :func:`gathered` block."""
    pending = _pending.get()
    if pending is None:
        pending = Pending()
        pending.facts.append((bad, message, values))
        pending.read()
    else:
        pending.facts.append((bad, message, values))


@functools.lru_cache(maxsize=256)
def _cached(values, device, dtype):
    return torch.tensor(values, dtype=dtype, device=device)


def on_device(values, like):
    """A tensor of the (nested tuples of) Python numbers ``values`` on ``like``'s device and dtype,
    made once per (values, device, dtype) and shared: never modify it in place."""
    return _cached(values, like.device, like.dtype)


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
    """``value``, after checking that it holds no NaN or infinity (see :func:`fail_if`)."""
    if not value.numel():
        return value
    message = f"{name} contains NaN or infinite values"
    # NaN carries through min and max, and an infinity is one of them: no temporary the input's size
    # (a tenth of isfinite(value).all()'s time on the CPU)
    if value.device.type == "cpu" and value.dtype in _NUMPY_FLOATS and value.numel() > TORCH_GRAIN:
        # numpy's min and max run on the calling thread; torch's would wake its thread pool and wait for
        # a worker that a busy neighbour core holds
        array = value.detach().numpy()
        fail_if(_TRUTH[not (math.isfinite(array.min()) and math.isfinite(array.max()))], message)
    else:
        low, high = torch.aminmax(value.detach())
        fail_if(~(torch.isfinite(low) & torch.isfinite(high)), message)
    return value


# torch's intra-op grain (at::internal::GRAIN_SIZE): an element-wise op or reduction over more values
# than this runs on its thread pool, a smaller one on the calling thread
TORCH_GRAIN = 32768
_NUMPY_FLOATS = (torch.float32, torch.float64)
_TRUTH = {False: torch.tensor(False), True: torch.tensor(True)}  # 0-dim bool facts for fail_if


def vertices(value, name="vertices"):
    return finite(name, tensor(name, value, dims=3, last=3))


def faces(value, num_vertices=None, batch=None, name="faces", padding=False):
    """Integer (B, F, 3) face indices, each in [0, num_vertices). With ``padding``, rows of -1 are
    padding faces (a row is either all -1 or all valid)."""
    value = tensor(name, value, dims=3, last=3, floating=False).long()
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"{name} has batch size {value.shape[0]} but vertices has {batch}")
    if num_vertices is not None and value.numel():
        # a row mixing -1 and indices; the smallest and the largest index of the real (non-padding)
        # rows (lo > hi when every row is padding)
        if padding:
            pad = (value == -1).all(-1, keepdim=True)
            fail_if(((value == -1) & ~pad).any(),
                    f"{name}: a padding row must be all -1, got a row mixing -1 and vertex indices")
        else:
            pad = torch.zeros_like(value[..., :1], dtype=torch.bool)
        lo = torch.where(pad, torch.iinfo(torch.long).max, value).min()
        hi = torch.where(pad, torch.iinfo(torch.long).min, value).max()
        fail_if((lo <= hi) & ((lo < 0) | (hi >= num_vertices)),
                f"{name} indices must be in [0, {num_vertices}) (the number of vertices)"
                + (" or rows of -1 (padding)" if padding else "") + ", got values from {} to {}", lo, hi)
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


def numbers_of(name, value):
    """A flat tuple of Python floats from a number, a sequence or array of numbers, or a tensor (one
    host read for a tensor); ValueError naming ``name`` for anything else."""
    if torch.is_tensor(value):
        value = value.detach().flatten().tolist()
    elif hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    flat = []

    def walk(v):
        if isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, numbers.Real) and not isinstance(v, bool):
            flat.append(float(v))
        else:
            raise ValueError(f"{name} must be a number or a sequence of numbers, got {value!r}")
    walk(value)
    return tuple(flat)


def background(value, channels=None, name="background_color"):
    """Background colour as a tuple of floats: finite numbers, one per channel, or one (or several
    equal ones, like the default (0, 0, 0)) for all ``channels``."""
    t = numbers_of(name, value)
    if not t:
        raise ValueError(f"{name} must have at least one value, got {value!r}")
    if not all(math.isfinite(x) for x in t):
        raise ValueError(f"{name} contains NaN or infinite values: {value!r}")
    if channels is not None and len(t) != channels:
        if len(set(t)) != 1:
            raise ValueError(f"{name} must have {channels} values (one per colour channel) or one, "
                             f"got {len(t)}")
        t = t[:1] * channels
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
    if torch.is_tensor(value):
        t = value.to(device=like.device, dtype=like.dtype)
        shape = tuple(t.shape)
    else:  # plain values are checked on the host and made into a device tensor once (on_device)
        try:
            shape = tuple(np.shape(value))
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be 3 numbers or a (B, 3) array, got {value!r}") from None
    if len(shape) not in (1, 2) or shape[-1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (B, 3), got {shape}")
    if len(shape) == 2 and batch is not None and shape[0] not in (1, batch):
        raise ValueError(f"{name} has batch size {shape[0]} but the vertices have {batch}")
    if torch.is_tensor(value):
        return finite(name, t.reshape(-1, 3))
    flat = numbers_of(name, value)
    if not all(math.isfinite(x) for x in flat):
        raise ValueError(f"{name} contains NaN or infinite values")
    return on_device(tuple(flat[i:i + 3] for i in range(0, len(flat), 3)), like)

