"""Mesh bookkeeping: batches of meshes of different sizes, gathering vertices into faces, back faces.

A batch is held padded: vertices (B, V, 3) and faces (B, F, 3) int64 where a face row of -1 is
padding (drawn nowhere, zero gradient); padding vertices are ignored. :func:`batch` makes this form
from lists of per-mesh tensors, padded tensors or unbatched (V, 3) / (F, 3) tensors.
"""
from typing import Tuple

import torch

from . import backends, checks, defaults
from .uvmap import is_uv_pair


def _stack_padded(tensors, fill):
    """Stack tensors (n_i, ...) into (B, max n_i, ...), filling the tail with ``fill`` (differentiable)."""
    size = max((t.shape[0] for t in tensors), default=0)
    rows = [torch.cat([t, t.new_full((size - t.shape[0],) + t.shape[1:], fill)]) if t.shape[0] < size else t
            for t in tensors]
    return torch.stack(rows)


def batch(vertices, faces, textures=None) -> Tuple[torch.Tensor, torch.Tensor, object]:
    """Padded (vertices (B, V, 3) float32, faces (B, F, 3) int64 with -1 padding rows, textures).

    Accepts lists of per-mesh tensors (vertices [(V_i, 3)], faces [(F_i, 3)], textures [per-mesh]),
    batched tensors (faces may hold -1 padding rows), or one unbatched mesh ((V, 3), (F, 3)).
    Texture lists are padded like the faces (cubes, face-vertex colours) or the vertices (vertex
    colours); other texture objects (UV maps) pass through. Checks everything once.
    """
    if isinstance(vertices, (list, tuple)) or isinstance(faces, (list, tuple)):
        if not isinstance(vertices, (list, tuple)) or not isinstance(faces, (list, tuple)):
            raise TypeError("vertices and faces must both be lists (one tensor per mesh) or both tensors")
        if len(vertices) != len(faces):
            raise ValueError(f"vertices and faces must list the same number of meshes, got {len(vertices)} "
                             f"and {len(faces)}")
        vs = [checks.vertices(checks.tensor(f"vertices[{i}]", v, dims=2, last=3)[None], f"vertices[{i}]")[0]
              for i, v in enumerate(vertices)]
        fs = [checks.faces(checks.tensor(f"faces[{i}]", f, dims=2, last=3, floating=False)[None],
                           vs[i].shape[0], name=f"faces[{i}]")[0] for i, f in enumerate(faces)]
        textures = _per_mesh_textures(textures, vs, fs)
        if not vs:
            return torch.zeros(0, 0, 3), torch.zeros(0, 0, 3, dtype=torch.long), textures
        checks.same_device(**{f"vertices[{i}]": v for i, v in enumerate(vs)},
                           **{f"faces[{i}]": f for i, f in enumerate(fs)})
        return _stack_padded(vs, 0.0), _stack_padded(fs, -1), textures
    if torch.is_tensor(vertices) and vertices.dim() == 2 and torch.is_tensor(faces) and faces.dim() == 2:
        vertices, faces = vertices[None], faces[None]
        if torch.is_tensor(textures) and textures.dim() in (2, 3, 5):
            textures = textures[None]
    vertices = checks.vertices(vertices)
    faces = checks.faces(faces, vertices.shape[1], vertices.shape[0], padding=True)
    return vertices, faces, textures


def _per_mesh_textures(textures, vs, fs):
    """A list of per-mesh textures, checked against each mesh and padded into one tensor (cubes
    (F_i, T, T, T, C), face-vertex colours (F_i, 3, C), vertex colours (V_i, C)); a list of UV maps
    is checked (each with its mesh's face count) and passed on; anything else passes through."""
    if not isinstance(textures, (list, tuple)) or is_uv_pair(textures):
        return textures
    if len(textures) != len(vs):
        raise ValueError(f"textures must list one entry per mesh ({len(vs)}), got {len(textures)}")
    if not textures:
        return torch.zeros(0, 0, 1, 1, 1, 3)
    if all(hasattr(t, "uvs") for t in textures):
        for i, m in enumerate(textures):
            if m.uvs.shape[0] != fs[i].shape[0]:
                raise ValueError(f"textures[{i}] has uvs for {m.uvs.shape[0]} faces but faces[{i}] has "
                                 f"{fs[i].shape[0]}")
        return list(textures)
    ts = [checks.tensor(f"textures[{i}]", t) for i, t in enumerate(textures)]
    kind = ts[0].dim()
    for i, t in enumerate(ts):
        count = {2: vs[i].shape[0], 3: fs[i].shape[0], 5: fs[i].shape[0]}.get(t.dim())
        if t.dim() != kind or count is None or t.shape[0] != count or t.shape[1:] != ts[0].shape[1:]:
            raise ValueError(f"textures[{i}] must be cubes (F_i={fs[i].shape[0]}, T, T, T, C), face-vertex colours "
                             f"(F_i, 3, C) or vertex colours (V_i={vs[i].shape[0]}, C), the same kind and "
                             f"trailing shape as textures[0] {tuple(ts[0].shape[1:])}; got {tuple(t.shape)}")
    return _stack_padded(ts, 0.0)


def padding(faces: torch.Tensor) -> torch.Tensor:
    """(B, F) bool: the face row is padding (all -1)."""
    return (faces < 0).all(-1)


def gather(values: torch.Tensor, faces: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """(B, F, 3, C) per face-vertex values from (B, V, C) and trusted faces (B, F, 3) (-1 padding
    rows give zeros, with zero gradient); one fused pass where ``backend`` resolves to numba."""
    B, V = values.shape[:2]
    if V == 0:  # nothing to gather (faces that index nothing fail their check)
        return values.new_zeros(faces.shape + values.shape[-1:])
    ops = _fused_gather(values, faces, backend)
    if ops is not None:
        return _Gather.apply(values.contiguous(), faces.contiguous(), ops)
    pad = padding(faces)[..., None, None]
    offset = (torch.arange(B, device=faces.device) * V)[:, None, None]
    # clamped: an out-of-range index gathers a real vertex until the (gathered) index check raises
    out = rows(values.reshape(B * V, values.shape[-1]), faces.clamp(0, V - 1) + offset)
    return torch.where(pad, 0.0, out)


class _Gather(torch.autograd.Function):
    """:func:`gather` as one backend pass each way (``ops.gather``: the numba backend's)."""

    @staticmethod
    def forward(ctx, values, faces, ops):
        ctx.save_for_backward(faces)
        ctx.ops, ctx.num_vertices = ops, values.shape[1]
        return ops.gather(values, faces)

    @staticmethod
    def backward(ctx, grad):
        (faces,) = ctx.saved_tensors
        return ctx.ops.gather_backward(grad, faces, ctx.num_vertices), None, None


def _fused_gather(values, faces, backend):
    """The backend module whose fused gather runs for these tensors (numba's, for float32 / float64
    values and int64 faces), or None: torch operations then."""
    if values.dtype not in (torch.float32, torch.float64) or faces.dtype != torch.int64 \
            or backends.resolve(backend, values.device) != "numba":
        return None
    return backends.module("numba")


def rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]``: rows of ``table`` (N, C) at int64 ``index`` (any shape) -> index.shape + (C,),
    with a gradient that adds each row's pieces in index order on any number of threads. (On the CPU,
    the backward of ``table[index]``, index_put_ with accumulate, adds with atomics when torch runs
    several threads, in an order the scheduler sets; index_select's, index_add_, adds in order. On
    CUDA it is the other way round: the indexing backward sorts, index_add_ uses atomics.)"""
    if table.is_cuda:
        return table[index]
    return table.index_select(0, index.reshape(-1)).view(index.shape + table.shape[1:])


def vertices_to_faces(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, 3) per-face vertex positions from vertices (B, V, 3) and faces (B, F, 3) int.

    Also works for any per-vertex attribute (B, V, C) -> (B, F, 3, C). Padding rows (-1) give zeros.
    """
    if not torch.is_tensor(vertices) or vertices.dim() != 3:
        raise ValueError(f"vertices must be a (B, V, C) tensor, got "
                         f"{tuple(vertices.shape) if torch.is_tensor(vertices) else type(vertices).__name__}")
    faces = checks.faces(faces, vertices.shape[1], vertices.shape[0], padding=True)
    return gather(vertices, faces)


def fill_back(faces: torch.Tensor, textures=None, shader=None, backend: str = "auto") -> Tuple[torch.Tensor, object]:
    """Append every face with reversed winding, so both sides render.

    faces: (B, F, 3) int -> (B, 2F, 3); textures are extended by their shader's ``fill_back``
    (``shader`` or the default one for them; ``backend`` goes to a fill_back that takes one): cubes
    (B, F, T, T, T, C) get their axes reversed (permutation (0, 1, 4, 3, 2, 5); one pass each way on
    numba), face-vertex attributes (B, F, 3, C) their vertex order.
    """
    from .shading import default_shader, fill_back_attributes
    faces = torch.cat([faces, faces.flip(-1)], dim=1)
    if textures is not None:
        textures = fill_back_attributes(shader or default_shader(textures, defaults.TEXTURE_EPS), textures, backend)
    return faces, textures
