"""What every backend shares on the torch side: the empty key, the cube clamp, range expansion,
visible faces, and the zero results of ops whose input is empty.

The backends (``torch``, ``triton``, ``numba``) differ in how they do the work; these few pieces of
host logic are the same for all of them, so they are written once, here.
"""
import functools
import inspect

import torch

EMPTY_KEY = torch.iinfo(torch.int64).max  # z-buffer key of a pixel no face covers (the largest int64)


def drawn(faces: torch.Tensor) -> torch.Tensor:
    """(B, F) bool: the face is counter-clockwise on screen with non-zero area, and finite.

    A face is culled when ``(y2 - y0)(x1 - x0) <= (y1 - y0)(x2 - x0)`` (back-facing, or no area).
    """
    x, y = faces[..., 0], faces[..., 1]
    lhs = (y[..., 2] - y[..., 0]) * (x[..., 1] - x[..., 0])
    rhs = (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    return (lhs > rhs) & torch.isfinite(faces).all(dim=(-2, -1))


def cube_top(size: int, eps: float) -> float:
    """The upper clamp of texture-cube coordinates, ``max(T - 1 - eps, 0)``."""
    return max(size - 1 - eps, 0.0)


def expand(counts: torch.Tensor, total: int = None):
    """Every element of consecutive ranges of ``counts`` (N,) elements: (owner (total,) int64, index
    within its owner's range (total,) int64), in owner order. ``total`` (the sum of the counts) saves
    a host read when the caller knows it."""
    counts = counts.long()
    if total is None:
        total = int(counts.sum()) if counts.numel() else 0
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    first = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(total, device=counts.device) - first[owner]


def pixel_faces(face_index: torch.Tensor, num_faces: int) -> torch.Tensor:
    """The flat face b * F + f of every pixel of face_index (B, H, W), (B H W,) int64; B * F (one past
    the last face) where the pixel is empty."""
    B = face_index.shape[0]
    flat = face_index.reshape(-1)
    entry = torch.arange(flat.numel(), device=flat.device) // max(flat.numel() // max(B, 1), 1)
    return torch.where(flat >= 0, entry * num_faces + flat, B * num_faces)


def visible(faces: torch.Tensor, face_index: torch.Tensor) -> torch.Tensor:
    """(B * F,) bool: the face is drawn and covers at least one pixel of face_index (the faces whose
    edges the blurred-edge backward walks)."""
    B, F = faces.shape[:2]
    seen = torch.zeros(B * F + 1, dtype=torch.bool, device=faces.device)
    seen.index_fill_(0, pixel_faces(face_index, F), True)  # every write stores True: order-free
    return seen[:-1] & drawn(faces).reshape(-1)


# ----------------------------------------------------------------------------------------------
# Empty input: the contract's zero result, so that backends only ever see real work
# ----------------------------------------------------------------------------------------------
def _map_zeros(a, channels):
    return torch.zeros(a["face_index"].shape + (channels,), dtype=torch.float32, device=a["face_index"].device)


def _empty_fragments(a):
    B, H, W = a["faces"].shape[0], a["height"], a["width"]
    device = a["faces"].device
    return (torch.full((B, H, W), -1, dtype=torch.int64, device=device),
            torch.zeros((B, H, W, 3), dtype=torch.float32, device=device),
            torch.full((B, H, W), float(a["far"]), dtype=torch.float32, device=device))


def _no_pairs(a):
    """antialias_pairs' result where nothing is blended: alpha 0, no edge (-1)."""
    shape = a["face_index"].shape + (2,)
    device = a["face_index"].device
    return torch.zeros(shape, dtype=torch.float32, device=device), torch.full(shape, -1, dtype=torch.int64, device=device)


def _no_pixels(a):
    return a["face_index"].numel() == 0


# op name -> (is the input empty?, the zero result), from the op's bound arguments
_EMPTY = {
    "rasterize_fragments": (lambda a: a["faces"].shape[0] * a["faces"].shape[1] * a["height"] * a["width"] == 0,
                            _empty_fragments),
    "perspective_barycentrics": (_no_pixels, lambda a: torch.zeros_like(a["weights"])),
    "depth_backward": (lambda a: a["faces"].numel() == 0 or _no_pixels(a), lambda a: torch.zeros_like(a["faces"])),
    "edge_backward": (lambda a: a["faces"].numel() == 0 or a["image"].numel() == 0,
                      lambda a: torch.zeros_like(a["faces"])),
    "sample_cubes": (lambda a: a["textures"].numel() == 0 or _no_pixels(a),
                     lambda a: _map_zeros(a, a["textures"].shape[-1])),
    "sample_cubes_backward": (lambda a: a["textures"].numel() == 0 or _no_pixels(a),
                              lambda a: torch.zeros_like(a["textures"])),
    "interpolate": (lambda a: a["attributes"].numel() == 0 or _no_pixels(a),
                    lambda a: _map_zeros(a, a["attributes"].shape[-1])),
    "interpolate_backward": (lambda a: a["attributes"].numel() == 0 or _no_pixels(a),
                             lambda a: torch.zeros_like(a["attributes"])),
    "sample_uv": (lambda a: a["uvs"].numel() == 0 or a["texels"].numel() == 0 or _no_pixels(a),
                  lambda a: _map_zeros(a, a["texels"].shape[-1])),
    "sample_uv_backward": (lambda a: a["uvs"].numel() == 0 or a["texels"].numel() == 0 or _no_pixels(a),
                           lambda a: (torch.zeros_like(a["uvs"]), torch.zeros_like(a["texels"]))),
    "antialias_pairs": (lambda a: a["faces"].numel() == 0 or _no_pixels(a), _no_pairs),
    "antialias": (lambda a: a["image"].numel() == 0, lambda a: a["image"].clone()),
    "antialias_backward": (lambda a: a["faces"].numel() == 0 or a["image"].numel() == 0,
                           lambda a: (a["grad"].clone(), torch.zeros_like(a["faces"]))),
    "interpolate_bary_backward": (lambda a: a["attributes"].numel() == 0 or _no_pixels(a),
                                  lambda a: torch.zeros_like(a["bary"])),
    "sample_cubes_bary_backward": (lambda a: a["textures"].numel() == 0 or _no_pixels(a),
                                   lambda a: torch.zeros_like(a["bary"])),
    "sample_uv_bary_backward": (lambda a: a["uvs"].numel() == 0 or a["texels"].numel() == 0 or _no_pixels(a),
                                lambda a: torch.zeros_like(a["bary"])),
}


def guarded(op):
    """The backend op ``op`` (named as in backends.OPS), returning the contract's zero result of the
    right shape, without running, when its input is empty (no face, no pixel, no channel or texel)."""
    is_empty, zeros = _EMPTY[op.__name__]
    signature = inspect.signature(op)
    names = tuple(signature.parameters)

    @functools.wraps(op)
    def run(*args, **kwargs):
        # every argument by position (as the renderer calls): a zip, a tenth of bind's time
        bound = dict(zip(names, args)) if len(args) == len(names) else signature.bind(*args, **kwargs).arguments
        return zeros(bound) if is_empty(bound) else op(*args, **kwargs)
    return run
