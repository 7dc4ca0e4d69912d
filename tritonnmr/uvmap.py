"""UV-mapped textures of one mesh, as ``load_obj(..., texture_format="uv")`` returns them."""
from dataclasses import dataclass, field
from typing import List

import torch

WRAPS = ("REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE")


def is_uv_pair(textures) -> bool:
    """True for the pair form of UV textures, ``(uvs (B, F, 3, 2), image (B, h, w, C))``: a tuple of
    two whose first item is a 4-D tensor (no per-mesh texture tensor is 4-D, so a tuple of those
    is never taken for a pair)."""
    return (isinstance(textures, tuple) and len(textures) == 2 and torch.is_tensor(textures[0])
            and textures[0].dim() == 4)


@dataclass
class UVMap:
    """Per face-vertex texture coordinates, a material per face, and one image per material.

    - ``uvs`` (F, 3, 2) float32: (u, v) of each face corner, u to the right, v up (OBJ convention;
      uv (0, 0) is the bottom-left corner of an image). Not wrapped: values outside [0, 1] stay.
    - ``material`` (F,) int64: index into ``images``.
    - ``images``: list of (h, w, C) float32 tensors in [0, 1], row 0 the top of the picture, all with
      the same C. A material with only a ``Kd`` colour is a 1 x 1 image of it; faces without a
      material (or with an unknown one) use a 1 x 1 image of 0.5 grey, as neural_renderer does.
    - ``wrap``: 'REPEAT', 'MIRRORED_REPEAT' or 'CLAMP_TO_EDGE', how uvs outside [0, 1] are read.

    All tensors live on one device (:meth:`to` moves them). Construction checks shapes and dtypes
    (ValueError / TypeError naming the field).
    """
    uvs: torch.Tensor
    material: torch.Tensor
    images: List[torch.Tensor] = field(default_factory=list)
    wrap: str = "REPEAT"

    def __post_init__(self):
        if self.wrap not in WRAPS:
            raise ValueError(f"UVMap.wrap must be one of {', '.join(WRAPS)}, got {self.wrap!r}")
        if not torch.is_tensor(self.uvs) or not self.uvs.is_floating_point():
            raise TypeError(f"UVMap.uvs must be a float tensor, got {type(self.uvs).__name__}")
        if self.uvs.dim() != 3 or self.uvs.shape[1:] != (3, 2):
            raise ValueError(f"UVMap.uvs must have shape (F, 3, 2), got {tuple(self.uvs.shape)}")
        if not torch.is_tensor(self.material) or self.material.dtype != torch.int64:
            raise TypeError(f"UVMap.material must be an int64 tensor, got "
                            f"{getattr(self.material, 'dtype', type(self.material).__name__)}")
        if self.material.shape != self.uvs.shape[:1]:
            raise ValueError(f"UVMap.material must have shape (F={self.uvs.shape[0]},), got {tuple(self.material.shape)}")
        if not isinstance(self.images, (list, tuple)) or not self.images:
            raise ValueError("UVMap.images must be a non-empty list of (h, w, C) tensors")
        self.images = list(self.images)
        channels = None
        for i, image in enumerate(self.images):
            if not torch.is_tensor(image) or not image.is_floating_point():
                raise TypeError(f"UVMap.images[{i}] must be a float tensor")
            if image.dim() != 3 or min(image.shape) < 1 or (channels is not None and image.shape[2] != channels):
                raise ValueError(f"UVMap.images[{i}] must have shape (h, w, C) with h, w, C >= 1 and the same C "
                                 f"as images[0], got {tuple(image.shape)}")
            channels = image.shape[2]
        if self.material.numel() and (int(self.material.min()) < 0 or int(self.material.max()) >= len(self.images)):
            raise ValueError(f"UVMap.material must index the {len(self.images)} images, got values in "
                             f"[{int(self.material.min())}, {int(self.material.max())}]")

    @property
    def channels(self):
        """C, the channels of every image."""
        return self.images[0].shape[2]

    def to(self, device):
        """This map with every tensor on ``device``."""
        return UVMap(self.uvs.to(device), self.material.to(device), [im.to(device) for im in self.images], self.wrap)

    def packed(self):
        """(texels (N, C) float32, table (M, 3) int64): the images flattened row-major and
        concatenated; table row m is (offset, h, w), so texel (row i, column j) of image m is
        ``texels[offset + i * w + j]`` — the layout of the renderer's ``sample_uv`` op."""
        texels = self.packed_texels()
        return texels, self.packed_table().to(texels.device)

    def packed_texels(self):
        """The texels (N, C) float32 of :meth:`packed` alone (differentiable with respect to the images)."""
        images = [im.reshape(-1, im.shape[2]) for im in self.images]
        return (images[0] if len(images) == 1 else torch.cat(images)).float()

    def unpack(self, texels):
        """Split ``texels`` (N, C) laid out as :meth:`packed` (e.g. a gradient of the packed texels)
        into a list of (h, w, C) views, one per image."""
        return unpack(texels, self.packed_table())

    def packed_table(self):
        """The (M, 3) int64 table of :meth:`packed` without building the texels."""
        rows, offset = [], 0
        for im in self.images:
            rows.append((offset, im.shape[0], im.shape[1]))
            offset += im.shape[0] * im.shape[1]
        return torch.tensor(rows, dtype=torch.int64)

    @classmethod
    def from_packed(cls, uvs, material, texels, table, wrap="REPEAT"):
        """The UVMap whose :meth:`packed` is (``texels``, ``table``)."""
        return cls(uvs, material, unpack(texels, table), wrap)


def unpack(texels: torch.Tensor, table) -> List[torch.Tensor]:
    """List of (h, w, C) views of ``texels`` (N, C), one per row (offset, h, w) of ``table`` (M, 3)."""
    if texels.dim() != 2:
        raise ValueError(f"texels must have shape (N, C), got {tuple(texels.shape)}")
    rows = [tuple(int(x) for x in row) for row in torch.as_tensor(table).tolist()]
    for m, (offset, h, w) in enumerate(rows):
        if offset < 0 or h < 1 or w < 1 or offset + h * w > texels.shape[0]:
            raise ValueError(f"table row {m} (offset {offset}, h {h}, w {w}) does not fit {texels.shape[0]} texels")
    return [texels[offset:offset + h * w].view(h, w, texels.shape[1]) for offset, h, w in rows]
