"""Near-plane clipping of camera-space faces, differentiable, before the perspective divide.

Without it a face reaching behind the camera is drawn mirrored (the divide by a negative depth flips
it), as in neural_renderer. Each face is cut by the plane z = z_clip: a face with one vertex behind
becomes two triangles, one with two vertices behind becomes one smaller triangle, one entirely behind
disappears. The new vertices are affine functions of the old ones, so gradients reach the original
vertices, and every piece remembers its parent face and the parent's barycentric coordinates of
its three corners, so shading can be done in the parent's terms.
"""
import torch

# a camera-space face that projects to a zero-area triangle: culled by every backend
_NULL = (0.0, 0.0, 1.0)


def behind(faces: torch.Tensor, z_clip: float, ignore=None) -> torch.Tensor:
    """0-dim bool tensor: whether any face (B, F, 3, 3) has a vertex with z < z_clip (``ignore``
    (B, F): padding), for the caller to read with its other values."""
    return any_behind(faces[..., 2], z_clip, ignore)


def any_behind(depths: torch.Tensor, z_clip: float, ignore=None) -> torch.Tensor:
    """:func:`behind` of the faces' vertex depths (B, F, 3)."""
    behind = (depths < z_clip).any(-1)
    if ignore is not None:
        behind = behind & ~ignore
    return behind.any()


def near_plane(faces: torch.Tensor, z_clip: float):
    """Clip camera-space faces (B, F, 3, 3) at z = z_clip (keeping z >= z_clip).

    Returns (pieces (B, 2F, 3, 3), parent (B, 2F) int64, matrix (B, 2F, 3, 3)): piece j < F is face j
    (clipped), piece F + j its second half when the cut left a quadrilateral; missing pieces are
    null faces. ``matrix[b, p, i]`` is the parent's barycentric coordinates of the piece's corner i,
    so a point with barycentrics q in the piece has ``q @ matrix`` in the parent. Winding is kept.
    """
    B, F = faces.shape[:2]
    z = faces[..., 2]
    behind = z < z_clip
    count = behind.sum(-1)  # vertices behind the plane: 0, 1, 2 or 3
    # roll each face so that its "special" vertex s comes first: the one behind when one is,
    # the one in front when two are; rolling keeps the winding (s, p, q) = (k, k + 1, k + 2)
    special = torch.where(count == 2, (~behind).long().argmax(-1), behind.long().argmax(-1))
    special = torch.where((count == 1) | (count == 2), special, 0)
    order = (special[..., None] + torch.arange(3, device=faces.device)) % 3  # (B, F, 3)
    rolled = torch.gather(faces, 2, order[..., None].expand(B, F, 3, 3))
    s, p, q = rolled.unbind(2)

    def cut(a, b):  # the point of segment a-b on the plane, and its parameter t
        den = b[..., 2] - a[..., 2]
        t = (z_clip - a[..., 2]) / torch.where(den == 0, 1.0, den)
        t = torch.where(den == 0, 0.0, t).clamp(0.0, 1.0)
        point = a + t[..., None] * (b - a)
        # on the plane exactly (rounding could leave it a hair in front of near, and its pixels dropped)
        return torch.cat([point[..., :2], torch.full_like(point[..., 2:], z_clip)], -1), t

    sp, t_sp = cut(s, p)
    sq, t_sq = cut(s, q)
    null = faces.new_tensor(_NULL).expand_as(s)
    one = count == 1
    two = count == 2
    # piece 1: the face itself (none behind), (sp, p, q) (one behind), (s, sp, sq) (two behind)
    c0 = torch.where(two[..., None], s, torch.where(one[..., None], sp, s))
    c1 = torch.where(two[..., None], sp, p)
    c2 = torch.where(two[..., None], sq, q)
    first = torch.stack([c0, c1, c2], 2)
    first = torch.where((count == 3)[..., None, None], null[:, :, None], first)
    # piece 2, only when one vertex is behind: (sp, q, sq)
    second = torch.stack([sp, q, sq], 2)
    second = torch.where(one[..., None, None], second, null[:, :, None])
    # barycentrics of the corners in the rolled parent (s, p, q), then un-rolled
    eye = torch.eye(3, device=faces.device, dtype=faces.dtype).expand(B, F, 3, 3)
    zero = torch.zeros_like(t_sp)
    b_sp = torch.stack([1 - t_sp, t_sp, zero], -1)
    b_sq = torch.stack([1 - t_sq, zero, t_sq], -1)
    m1 = torch.stack([torch.where(two[..., None], eye[..., 0, :], torch.where(one[..., None], b_sp, eye[..., 0, :])),
                      torch.where(two[..., None], b_sp, eye[..., 1, :]),
                      torch.where(two[..., None], b_sq, eye[..., 2, :])], 2)
    m2 = torch.stack([b_sp, eye[..., 2, :], b_sq], 2)
    index = order[:, :, None, :].expand(B, F, 3, 3)
    m1 = torch.zeros_like(m1).scatter(-1, index, m1)
    m2 = torch.zeros_like(m2).scatter(-1, index, m2)
    parent = torch.arange(F, device=faces.device).repeat(2).expand(B, 2 * F)
    return torch.cat([first, second], 1), parent, torch.cat([m1, m2], 1).detach()
