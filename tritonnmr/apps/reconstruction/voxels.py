"""Voxels: the 32^3 grid, mesh voxelization by winding number, the dataset's axis layout, IoU.

Grid: voxel i (of N) along an axis is centred at ((i + 0.5) / N - 0.5) * N / (N - 1), so the grid
spans [-0.5, 0.5] * N / (N - 1) -- the normalisation of the paper's evaluation code, which maps a
mesh coordinate p to p * (N - 1) / N + 0.5 in a unit cube of N voxels.

Our tensors index voxels [x, y, z]. The dataset files store them as [y, x, -z] (the paper's
evaluation swaps the first two axes of its voxelizer's output and flips the last); ``to_dataset`` and
``from_dataset`` convert.
"""
import math

import torch


def grid_extent(resolution=32):
    """Half the side of the grid in mesh coordinates."""
    return 0.5 * resolution / (resolution - 1)


def grid_points(resolution=32, device="cpu"):
    """Centres of the voxels, (N, N, N, 3) indexed [x, y, z]."""
    c = ((torch.arange(resolution, dtype=torch.float32, device=device) + 0.5) / resolution - 0.5) * 2 * \
        grid_extent(resolution)
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1)


@torch.no_grad()
def voxelize(vertices, faces, resolution=32, surface=True):
    """Occupancy (N, N, N) bool, [x, y, z], of the closed mesh (vertices (V, 3), faces (F, 3)):
    the voxels whose centre is inside (``solid_voxels``), plus, with ``surface``, every voxel the
    surface passes through (so thin parts -- legs, wings -- are not lost; binvox does the same)."""
    occupancy = solid_voxels(vertices, faces, resolution)
    if surface and len(faces):
        occupancy |= surface_voxels(vertices, faces, resolution)
    return occupancy


@torch.no_grad()
def surface_voxels(vertices, faces, resolution=32, per_voxel=16, seed=0):
    """Voxels the surface passes through, found by sampling about ``per_voxel`` points per voxel
    face's area (uniform on the surface: triangles drawn by area, then uniform barycentrics)."""
    t = vertices.detach().float()[faces.long()]
    areas = torch.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=-1).norm(dim=-1) / 2
    size = 2 * grid_extent(resolution) / resolution
    n = int(min(2e6, max(1000, areas.sum().item() / size ** 2 * per_voxel)))
    g = torch.Generator().manual_seed(seed)
    pick = torch.multinomial(areas.cpu() + 1e-12, n, replacement=True, generator=g).to(t.device)
    u, v = torch.rand(2, n, 1, generator=g).to(t.device)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    tri = t[pick]
    points = torch.cat([tri[:, 0] + u * (tri[:, 1] - tri[:, 0]) + v * (tri[:, 2] - tri[:, 0]), t.reshape(-1, 3)])
    index = torch.floor((points / (2 * grid_extent(resolution)) + 0.5) * resolution).long()
    index = index[((index >= 0) & (index < resolution)).all(-1)]
    occupancy = torch.zeros(resolution ** 3, dtype=torch.bool, device=t.device)
    occupancy[(index[:, 0] * resolution + index[:, 1]) * resolution + index[:, 2]] = True
    return occupancy.reshape(resolution, resolution, resolution)


@torch.no_grad()
def solid_voxels(vertices, faces, resolution=32):
    """Voxels whose centre lies inside the closed mesh.

    Winding number by ray casting: from each voxel centre a ray goes to +z; every triangle it crosses
    adds +1 if the triangle faces +z (counter-clockwise seen from above: the ray leaves the solid)
    and -1 if it faces -z. Inside an outward-oriented closed surface the sum is 1, outside 0; where
    parts overlap it adds up, so a voxel is inside when |sum| >= 1. One ray per (x, y) column serves
    all its voxels: each crossing is binned by how many voxel centres lie below it, and a suffix sum
    over the bins gives every centre's count. The columns are shifted by a tiny irrational offset so
    no ray passes exactly through an edge or a vertex."""
    vertices = vertices.detach().float()
    device = vertices.device
    centres = grid_points(resolution, device)[:, 0, 0, 0]  # (N,) the same along every axis
    xs = centres + 1.37e-5 * math.sqrt(2)
    ys = centres + 1.37e-5 * math.sqrt(3)
    px, py = torch.meshgrid(xs, ys, indexing="ij")
    px, py = px.reshape(-1, 1), py.reshape(-1, 1)  # (N^2, 1)
    if len(faces) == 0:
        return torch.zeros(resolution, resolution, resolution, dtype=torch.bool, device=device)
    t = vertices[faces.long()]  # (F, 3, 3)
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = [t[:, :, k].unbind(1) for k in range(3)]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # twice the signed area in xy
    w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) / area  # (N^2, F) barycentrics
    w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) / area
    w2 = 1 - w0 - w1
    hit = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (area != 0)
    z = w0 * z0 + w1 * z1 + w2 * z2
    step = centres[1] - centres[0]
    below = torch.ceil((z - centres[0]) / step).clamp(0, resolution).long()  # centres strictly below
    counts = torch.zeros(px.shape[0], resolution + 1, device=device)
    counts.scatter_add_(1, torch.where(hit, below, 0), torch.where(hit, torch.sign(area).expand_as(z), 0.0))
    # centre k's winding number: crossings above it, i.e. in bins k + 1 .. N
    above = counts.flip(1).cumsum(1).flip(1)[:, 1:]
    return (above.abs() > 0.5).reshape(resolution, resolution, resolution)


def voxel_surface(occupancy):
    """The exposed faces of the occupied voxels of (N, N, N) [x, y, z] as a closed triangle mesh in mesh
    coordinates: vertices (V, 3), faces (F, 3), outward-oriented, corners shared between faces."""
    n = occupancy.shape[0]
    occ = torch.nn.functional.pad(occupancy.bool(), (1, 1, 1, 1, 1, 1))  # so every border face is exposed
    unit_square = {0: [(0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 0, 1)], 1: [(0, 0, 0), (0, 0, 1), (1, 0, 1), (1, 0, 0)],
                   2: [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)]}
    quads = []
    for axis in range(3):
        for step in (-1, 1):  # the voxel's face towards -axis or +axis, exposed when that neighbour is empty
            exposed = occ & ~torch.roll(occ, -step, axis)
            base = (exposed.nonzero() - 1).float() + (step > 0) * torch.eye(3)[axis]
            quad = base[:, None, :] + torch.tensor(unit_square[axis], dtype=torch.float32)[None]
            quads.append(quad if step > 0 else quad.flip(1))
    corners, index = torch.unique(torch.cat(quads).reshape(-1, 3), dim=0, return_inverse=True)
    q = index.view(-1, 4)
    faces = torch.cat([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    return (corners / n - 0.5) * 2 * grid_extent(n), faces


def to_dataset(voxels):
    """[..., x, y, z] -> the files' [..., y, x, -z]."""
    return voxels.transpose(-3, -2).flip(-1)


def from_dataset(voxels):
    """The files' [..., y, x, -z] -> [..., x, y, z]."""
    return voxels.flip(-1).transpose(-3, -2)


def voxel_iou(a, b):
    """IoU of boolean (or 0/1) occupancies (..., N, N, N) -> tensor (...)."""
    a, b = a.bool(), b.bool()
    union = (a | b).flatten(-3).sum(-1).float()
    return torch.where(union > 0, (a & b).flatten(-3).sum(-1).float() / union.clamp(min=1), torch.ones_like(union))
