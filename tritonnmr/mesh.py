"""Mesh bookkeeping: gather vertices into faces, add back faces."""
import torch

from . import checks


def vertices_to_faces(vertices, faces):
    """(B, F, 3, 3) per-face vertex positions from vertices (B, V, 3) and faces (B, F, 3) int.

    Also works for any per-vertex attribute (B, V, C) -> (B, F, 3, C).
    """
    if not torch.is_tensor(vertices) or vertices.dim() != 3:
        raise ValueError(f"vertices must be a (B, V, C) tensor, got "
                         f"{tuple(vertices.shape) if torch.is_tensor(vertices) else type(vertices).__name__}")
    faces = checks.faces(faces, vertices.shape[1], vertices.shape[0])
    B, V = vertices.shape[:2]
    offset = (torch.arange(B, device=faces.device) * V)[:, None, None]
    return vertices.reshape(B * V, vertices.shape[-1])[faces + offset]


def fill_back(faces, textures=None):
    """Append every face with reversed winding, so both sides render.

    faces: (B, F, 3) int -> (B, 2F, 3); textures (B, F, T, T, T, 3) get their cube axes reversed to
    match (permutation (0, 1, 4, 3, 2, 5)), per face-vertex attributes (B, F, 3, C) their vertex
    order; per-vertex attributes (B, V, C) need nothing.
    """
    faces = torch.cat([faces, faces.flip(-1)], dim=1)
    if torch.is_tensor(textures) and textures.dim() == 6:
        textures = torch.cat([textures, textures.permute(0, 1, 4, 3, 2, 5)], dim=1)
    elif torch.is_tensor(textures) and textures.dim() == 4:
        textures = torch.cat([textures, textures.flip(2)], dim=1)
    return faces, textures
