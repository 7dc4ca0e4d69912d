"""Training losses: silhouette IoU and the smoothness of neighbouring faces."""
import torch


def iou_loss(predicted, target, eps=1e-6):
    """1 - soft IoU of silhouettes (B, H, W) in [0, 1], averaged over the batch:
    IoU = sum(p t) / sum(p + t - p t)."""
    dims = tuple(range(1, predicted.dim()))
    intersection = (predicted * target).sum(dims)
    union = (predicted + target - predicted * target).sum(dims)
    return (1 - intersection / (union + eps)).mean()


def face_pairs(faces):
    """For every edge shared by two faces: (i, j, k, l) with (i, j) the edge and k, l the two opposite
    vertices, (E, 4) int64. Raises if the mesh is not closed and manifold (every edge in two faces)."""
    f = faces.long()
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    opposite = torch.cat([f[:, 2], f[:, 0], f[:, 1]])
    key = edges.min(1).values * (int(f.max()) + 1) + edges.max(1).values
    order = torch.argsort(key, stable=True)
    key, edges, opposite = key[order], edges[order], opposite[order]
    if len(key) % 2 or not (key[0::2] == key[1::2]).all():
        raise ValueError("faces: the mesh must be closed, with every edge shared by exactly two faces")
    return torch.stack([edges[0::2, 0], edges[0::2, 1], opposite[0::2], opposite[1::2]], 1)


def smoothness_loss(vertices, pairs, eps=1e-6):
    """Sum over neighbouring faces of (cos theta + 1)^2, theta the angle between the two faces at
    their shared edge (pi when flat, so flat costs 0). cos theta is the cosine between the two
    opposite vertices' perpendiculars to the edge. vertices (B, V, 3) -> (B,)."""
    i, j, k, m = pairs.unbind(1)
    a, b = vertices[:, i], vertices[:, j]
    edge = b - a
    edge_dir = edge / (edge.norm(dim=-1, keepdim=True) + eps)

    def perpendicular(p):
        d = p - a
        return d - (d * edge_dir).sum(-1, keepdim=True) * edge_dir

    pk, pl = perpendicular(vertices[:, k]), perpendicular(vertices[:, m])
    cos = (pk * pl).sum(-1) / (pk.norm(dim=-1) * pl.norm(dim=-1) + eps)
    return ((cos + 1) ** 2).sum(-1)
