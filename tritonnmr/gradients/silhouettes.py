"""Which edges of the rendered faces may be silhouettes: the analytic estimator blends across these only.

An edge of a mesh face is a silhouette unless another face of the mesh shares it and continues the
surface across it on screen: that face's third vertex lies strictly on the other side of the edge
(the two are turned the same way). So an edge is a silhouette when no other face shares it, when
every face that does is turned the other way on screen (folds back behind it: the outline of a
closed mesh), or when the ones that do are seen edge-on. This is nvdiffrast's rule (Laine et al.
2020, read there off a hash of the triangles' vertex indices); here it is a stable sort of the
edges' vertex pairs. Faces sharing the same three vertices (fill_back's reversed copies, duplicates)
share their third vertex and so never make each other's edges silhouettes.

Entry points:
- the Renderer passes its mesh's faces (after fill_back) as ``indices``: the rule above, for every
  face drawn whole. A face cut by the near plane is drawn as pieces whose every edge is a candidate
  (the cut is a real border of what is seen; the pieces' other edges are candidates too, so a mesh
  crossing the near plane may blend a little across its own surface there), and its pieces still
  tell its neighbours which side of their shared edges it lies on;
- screen-space input (``rasterize_*(faces (B, F, 3, 3))``, ``indices`` None) has no topology: every
  edge is a candidate, so neighbouring faces of one surface blend into each other along their
  shared edges (an exact no-op where their colours agree, as in a silhouette's alpha).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor


def _orientation(a, b, p):
    """Twice the signed area of (a, b, p), (..., 2) points: > 0 when p lies left of a -> b."""
    return (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (p[..., 0] - a[..., 0])


def whole_faces(num_faces: int, parent) -> Optional[Tensor]:
    """(B, F) bool: piece f is mesh face f itself, not cut by the near plane (None: every face is)."""
    if parent is None:
        return None
    parent_face, matrix = parent
    eye = torch.eye(3, dtype=matrix.dtype, device=matrix.device)
    return (matrix[:, :num_faces] == eye).all(-1).all(-1)


def silhouette_edges(faces: Tensor, indices: Optional[Tensor] = None, parent: Optional[Tuple[Tensor, Tensor]] = None
                     ) -> Tensor:
    """(B, P, 3) bool: edge k = (k, k + 1 mod 3) of screen-space face (piece) p may be a silhouette.

    faces (B, P, 3, 3) screen space; indices (B, F, 3) int64 the mesh faces' vertex indices (-1 rows:
    padding), None for screen-space input (every edge then is a candidate); parent the near-plane
    clipping's map (pieces p < F are faces p, later ones their second halves: see clip.near_plane)."""
    B, P = faces.shape[:2]
    out = torch.ones((B, P, 3), dtype=torch.bool, device=faces.device)
    if indices is None or not indices.numel() or not P:
        return out
    F = indices.shape[1]
    j = indices.roll(-1, 2)  # edge k = (indices[k], j[k]); its third vertex is roll(-2)
    valid = ((indices >= 0).all(-1) & (indices != j).all(-1))[..., None].expand(B, F, 3).reshape(-1)
    intact = whole_faces(F, parent)
    whole = valid if intact is None else valid & intact[..., None].expand(B, F, 3).reshape(-1)
    # one key per unordered vertex pair of a batch entry; invalid faces' edges each get a key of their own
    top = indices.max() + 1
    entry = torch.arange(B * F * 3, device=faces.device)
    batch = torch.arange(B, device=faces.device)[:, None, None]
    key = torch.where(valid, ((batch * top + torch.minimum(indices, j)) * top + torch.maximum(indices, j)).reshape(-1),
                      -1 - entry)
    group = torch.unique(key, return_inverse=True)[1]
    # the group's line runs from its lower vertex to its higher one, as drawn by its first whole face
    corners = faces[:, :F, :, :2]  # piece f: face f when whole
    at_j = corners.roll(-1, 2)
    first = (indices < j)[..., None]
    start = torch.where(first, corners, at_j).reshape(-1, 2)
    end = torch.where(first, at_j, corners).reshape(-1, 2)
    none = B * F * 3
    leader = torch.full_like(entry, none).scatter_reduce_(0, group, torch.where(whole, entry, none), reduce="amin")[group]
    counted = (leader < none) & valid
    leader = leader.clamp(max=none - 1)
    # where each face lies: its third vertex, or for a cut face the centre of its first piece (if any)
    point = corners.roll(-2, 2)
    if intact is not None:
        point = torch.where(intact[..., None, None], point, corners.mean(2, keepdim=True))
        area = _orientation(corners[:, :, 0], corners[:, :, 1], corners[:, :, 2])
        counted = counted & (intact | (area != 0))[..., None].expand(B, F, 3).reshape(-1)
    side = _orientation(start[leader], end[leader], point.reshape(-1, 2))
    left = torch.zeros_like(entry).index_add_(0, group, (counted & (side > 0)).long())[group] > 0
    right = torch.zeros_like(entry).index_add_(0, group, (counted & (side < 0)).long())[group] > 0
    continued = ((side > 0) & right) | ((side < 0) & left)
    out[:, :F] = ~(whole & counted & continued).view(B, F, 3)
    return out
