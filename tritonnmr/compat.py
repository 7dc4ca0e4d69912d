"""neural_renderer 1.1.3 names that tritonnmr has no other use for: ``Mesh`` and ``Rasterize``.

Both keep neural_renderer's constructor arguments and attributes; where neural_renderer's own
behaviour is a plain bug (``Mesh`` with given textures sets ``texture_size`` to the number of faces
and never stores the textures; ``Rasterize`` refuses CPU tensors), these do the evident intent.
"""
import torch
from torch import nn

from . import checks
from .io import load_obj
from .render import DEFAULT_EPS, DEFAULT_FAR, DEFAULT_NEAR, rasterize_rgbad


class Mesh:
    """A triangle mesh without a batch dimension, as ``neural_renderer.Mesh``.

    vertices: (V, 3) float tensor; faces: (F, 3) integer tensor of vertex indices (int32 or int64,
    kept as given); textures: (F, T, T, T, 3) float tensor of per-face texture cubes, or None for
    learnable random cubes: ``nn.Parameter(0.05 * randn(F, T, T, T, 3))`` with T = ``texture_size``,
    on the vertices' device (drawn from torch's global generator, as neural_renderer does).

    Attributes: ``vertices``, ``faces``, ``textures``, ``num_vertices`` (V), ``num_faces`` (F),
    ``texture_size`` (T). Add a batch dimension to render: ``renderer(m.vertices[None],
    m.faces[None], m.textures[None])``.
    """

    def __init__(self, vertices, faces, textures=None, texture_size=4):
        vertices = checks.finite("vertices", checks.tensor("vertices", vertices, dims=2, last=3))
        faces = checks.tensor("faces", faces, dims=2, last=3, floating=False)
        if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[0]):
            raise ValueError(f"faces indices must be in [0, {vertices.shape[0]}) (the number of vertices), "
                             f"got values from {int(faces.min())} to {int(faces.max())}")
        self.vertices = vertices
        self.faces = faces
        self.num_vertices = vertices.shape[0]
        self.num_faces = faces.shape[0]
        if textures is None:
            if isinstance(texture_size, bool) or not isinstance(texture_size, int) or texture_size < 1:
                raise ValueError(f"texture_size must be a positive int, got {texture_size!r}")
            shape = (self.num_faces, texture_size, texture_size, texture_size, 3)
            self.textures = nn.Parameter(0.05 * torch.randn(*shape).to(vertices.device))
            self.texture_size = texture_size
        else:
            if not torch.is_tensor(textures) or textures.dim() != 5:
                shape = tuple(textures.shape) if torch.is_tensor(textures) else type(textures).__name__
                raise ValueError(f"textures must be a (F={self.num_faces}, T, T, T, 3) tensor or None, got {shape}")
            checks.textures(textures[None], 1, self.num_faces)  # shape, dtype and finiteness
            self.textures = textures if textures.dtype == torch.float32 else textures.float()
            self.texture_size = textures.shape[1]

    @classmethod
    def fromobj(cls, filename_obj, normalization=True, load_texture=False, texture_size=4, **load_obj_args):
        """A Mesh read by :func:`tritonnmr.load_obj`: with ``load_texture`` the MTL colours and
        images baked into ``texture_size`` cubes, otherwise random learnable cubes of that size.
        Further keyword arguments (``texture_wrapping``, ``use_bilinear``, ...) go to load_obj."""
        loaded = load_obj(filename_obj, normalization=normalization, texture_size=texture_size,
                          load_texture=load_texture, **load_obj_args)
        vertices, faces = loaded[:2]
        return cls(vertices, faces, loaded[2] if load_texture else None, texture_size)

    def __repr__(self):
        return (f"Mesh(num_vertices={self.num_vertices}, num_faces={self.num_faces}, "
                f"texture_size={self.texture_size}, device={self.vertices.device})")


class Rasterize(nn.Module):
    """``neural_renderer.Rasterize``: one rasterization at ``image_size`` without anti-aliasing.

    ``forward(faces, textures)`` takes screen-space faces (B, F, 3, 3) float and texture cubes
    (B, F, T, T, T, 3) (or None when ``return_rgb`` is False) and returns the tuple
    ``(rgb, alpha, depth)`` of *raw* maps, as neural_renderer's module does: rgb (B, S, S, 3)
    channels last, alpha (B, S, S), depth (B, S, S) (``far`` where empty), all with row 0 at the
    bottom of the picture (NDC y = -1; :func:`rasterize_rgbad` flips them so row 0 is the top).
    What was not asked for is an empty tensor. Gradients as :func:`rasterize_rgbad`: rgb and alpha
    to faces by the blurred-edge rule, rgb to textures, depth exactly. CPU tensors work too.
    """

    def __init__(self, image_size, near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, background_color=(0, 0, 0),
                 return_rgb=False, return_alpha=False, return_depth=False, backend="auto"):
        super().__init__()
        self.image_size = image_size
        self.near = near
        self.far = far
        self.eps = eps
        self.background_color = background_color
        self.return_rgb = return_rgb
        self.return_alpha = return_alpha
        self.return_depth = return_depth
        self.backend = backend

    def forward(self, faces, textures=None):
        out = rasterize_rgbad(faces, textures if self.return_rgb else None, self.image_size, anti_aliasing=False,
                              near=self.near, far=self.far, eps=self.eps,
                              background_color=self.background_color if self.return_rgb else (0, 0, 0),
                              return_rgb=self.return_rgb, return_alpha=self.return_alpha,
                              return_depth=self.return_depth, backend=self.backend)
        empty = faces.new_empty(0) if torch.is_tensor(faces) else torch.empty(0)
        rgb = out["rgb"].permute(0, 2, 3, 1).flip(1) if self.return_rgb else empty
        alpha = out["alpha"].flip(1) if self.return_alpha else empty
        depth = out["depth"].flip(1) if self.return_depth else empty
        return rgb, alpha, depth
