"""The two networks: a mesh generator (deforms a sphere) and a PTN-style voxel baseline.

Both share the image encoder and are trained from silhouettes alone: the mesh through the
renderer's blurred-edge gradient, the voxels through a differentiable projection (the maximum of
the occupancy sampled along each camera ray).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...camera import look_at_axes
from .data import VIEWING_ANGLE
from .shapes import icosphere
from .voxels import grid_extent


class Encoder(nn.Module):
    """RGBA image (B, 4, S, S) -> feature (B, dim): three stride-2 5x5 convolutions, then two hidden
    fully connected layers (the paper's encoder; ``width`` 64 and ``dim`` 512 there)."""

    def __init__(self, image_size=64, width=64, dim=512):
        super().__init__()
        c = [4, width, width * 2, width * 4]
        self.convs = nn.Sequential(*[m for i in range(3) for m in (
            nn.Conv2d(c[i], c[i + 1], 5, stride=2, padding=2), nn.BatchNorm2d(c[i + 1]), nn.ReLU())])
        hidden = dim * 2
        self.fcs = nn.Sequential(nn.Flatten(), nn.Linear(c[3] * (image_size // 8) ** 2, hidden), nn.BatchNorm1d(hidden),
                                 nn.ReLU(), nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, dim), nn.ReLU())

    def forward(self, images):
        return self.fcs(self.convs(images))


class MeshGenerator(nn.Module):
    """Image -> closed mesh: per-vertex displacements of a 642-vertex sphere plus a centre bias.

    Each coordinate u of the template (radius 1/2) moves to sign(u) sigmoid(logit|u| + d), so a zero
    displacement d keeps the sphere and every vertex stays inside the unit cube; then the centre c
    (tanh, in (-1, 1)^3) shifts the cube's contents while scaling each side so nothing leaves it:
    v -> c + relu(v)(1 - c) - relu(-v)(1 + c). The result is halved: vertices lie in (-1/2, 1/2)^3."""

    kind = "mesh"

    def __init__(self, image_size=64, width=64, dim=512, subdivisions=3):
        super().__init__()
        self.encoder = Encoder(image_size, width, dim)
        vertices, faces = icosphere(subdivisions)
        self.register_buffer("template", vertices * 0.5)
        self.register_buffer("faces", faces)
        n = vertices.shape[0]
        self.decoder = nn.Sequential(nn.Linear(dim, dim * 2), nn.ReLU(), nn.Linear(dim * 2, dim * 4), nn.ReLU())
        self.displacement = nn.Linear(dim * 4, n * 3)
        self.centre = nn.Linear(dim * 4, 3)
        for layer in (self.displacement, self.centre):  # start from the sphere
            nn.init.zeros_(layer.bias)
            layer.weight.data.mul_(0.1)

    def forward(self, images):
        """-> vertices (B, 642, 3); the faces are ``self.faces`` (1280, 3)."""
        h = self.decoder(self.encoder(images))
        u = self.template.clamp(-0.499, 0.499)
        magnitude = torch.sigmoid(torch.logit(u.abs().clamp(min=1e-3)) + self.displacement(h).view(-1, *u.shape))
        v = torch.sign(u) * magnitude
        c = torch.tanh(self.centre(h))[:, None, :]
        v = c + F.relu(v) * (1 - c) - F.relu(-v) * (1 + c)
        return v * 0.5


class VoxelGenerator(nn.Module):
    """Image -> occupancy probabilities (B, 32, 32, 32) indexed [x, y, z]: the same encoder, then a
    fully connected layer to a 4^3 grid and three 3D transposed convolutions (PTN's decoder)."""

    kind = "voxel"

    def __init__(self, image_size=64, width=64, dim=512):
        super().__init__()
        self.encoder = Encoder(image_size, width, dim)
        c = width * 2
        self.c = c
        self.fc = nn.Sequential(nn.Linear(dim, c * 4 ** 3), nn.ReLU())
        self.deconvs = nn.Sequential(
            nn.ConvTranspose3d(c, c // 2, 4, stride=2, padding=1), nn.BatchNorm3d(c // 2), nn.ReLU(),
            nn.ConvTranspose3d(c // 2, c // 4, 4, stride=2, padding=1), nn.BatchNorm3d(c // 4), nn.ReLU(),
            nn.ConvTranspose3d(c // 4, 1, 4, stride=2, padding=1))

    def forward(self, images):
        h = self.fc(self.encoder(images)).view(-1, self.c, 4, 4, 4)
        return torch.sigmoid(self.deconvs(h))[:, 0]


def camera_rays(eyes, image_size, viewing_angle=VIEWING_ANGLE):
    """Ray origins (B, 3) and directions (B, S, S, 3) through the pixel centres of look_at cameras at
    ``eyes`` (B, 3) looking at the origin, with the renderer's conventions (row 0 at the top)."""
    x, y, z = look_at_axes(eyes, torch.zeros_like(eyes), eyes.new_tensor([[0.0, 1.0, 0.0]]))
    s = (torch.arange(image_size, device=eyes.device, dtype=torch.float32) * 2 + 1) / image_size - 1
    s = s * math.tan(math.radians(viewing_angle))
    py, px = torch.meshgrid(-s, s, indexing="ij")  # rows go down the image, y goes up
    directions = px[None, ..., None] * x[:, None, None] + py[None, ..., None] * y[:, None, None] + z[:, None, None]
    return eyes, F.normalize(directions, dim=-1)


def ray_samples(eyes, image_size=64, samples=64, radius=0.9, resolution=32):
    """Where :func:`project_voxels` samples: ``samples`` points along each camera ray across the sphere
    of ``radius`` around the origin, as grid_sample coordinates (B, S, S, K, 3) of a grid of
    ``resolution``^3 voxels (the grid's extent maps to [-1, 1]; (x, y, z) -> (W, H, D))."""
    origins, directions = camera_rays(eyes, image_size)
    distance = origins.norm(dim=-1).view(-1, 1, 1, 1, 1)
    t = torch.linspace(-radius, radius, samples, device=eyes.device).view(1, 1, 1, -1, 1) + distance
    scale = 1 / grid_extent(resolution)  # origin + t direction, scaled; one pass over the (B, S, S, K, 3) points
    return torch.addcmul(origins.view(-1, 1, 1, 1, 3) * scale, t, directions[:, :, :, None, :] * scale)


def project_voxels(occupancy, eyes, image_size=64, samples=64, radius=0.9):
    """Differentiable silhouettes (B, S, S) of occupancy grids (B, N, N, N) [x, y, z] seen from ``eyes``:
    the maximum of the trilinearly sampled occupancy over ``samples`` points along each ray, taken
    across the sphere of ``radius`` around the origin that holds the grid.

    The maximising sample of each ray is found without gradient; the occupancy is then sampled again,
    with gradient, at that one point per ray. Same value, and the same gradient as differentiating
    the maximum over all samples wherever one sample is the largest (with ties, all of it goes to
    the first instead of being shared), for a backward pass over S^2 points instead of S^2 K."""
    grid = ray_samples(eyes, image_size, samples, radius, occupancy.shape[-1])
    volume = occupancy.permute(0, 3, 2, 1)[:, None]  # (B, 1, D=z, H=y, W=x)
    with torch.no_grad():
        sampled = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    if not torch.is_grad_enabled() or not occupancy.requires_grad:
        return sampled.amax(-1)
    best = sampled.argmax(-1)  # (B, S, S): the first maximising sample of each ray
    chosen = grid.gather(3, best[..., None, None].expand(-1, -1, -1, 1, 3))  # (B, S, S, 1, 3)
    return F.grid_sample(volume, chosen, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0, ..., 0]


def build(kind, **config):
    """A model by name ('mesh' or 'voxel') and its size options."""
    models = {"mesh": MeshGenerator, "voxel": VoxelGenerator}
    if kind not in models:
        raise ValueError(f"model must be 'mesh' or 'voxel', got {kind!r}")
    return models[kind](**config)

