"""Ambient + directional lighting, per face, in world space."""
import torch
import torch.nn.functional as F

from . import backends, checks, defaults

NORMAL_EPS = 1e-12  # guards only degenerate faces (neural_renderer's 1e-5 dims faces under ~0.003 wide)


def face_light(faces: torch.Tensor, intensity_ambient=defaults.LIGHT_INTENSITY_AMBIENT,
               intensity_directional=defaults.LIGHT_INTENSITY_DIRECTIONAL, color_ambient=defaults.LIGHT_COLOR,
               color_directional=defaults.LIGHT_COLOR, direction=defaults.LIGHT_DIRECTION, *,
               check_faces: bool = True, backend: str = "auto") -> torch.Tensor:
    """Light (B, F, 3) per face: ``ambient * colour_a + directional * colour_d * max(0, n . d)``.

    faces: (B, F, 3, 3) world-space faces; n is the unit normal of cross(v0 - v1, v2 - v1);
    colours and direction are (3,) or (B, 3) (the direction is used as given, not normalised, as in
    neural_renderer); intensities are numbers or tensors (one value, or one per mesh).
    NaN or infinite faces raise a ValueError; ``check_faces=False`` skips that test (one host sync)
    for callers whose vertices are already checked, as the Renderer's are. Where ``backend`` resolves to
    one with a fused ``face_light`` (numba) and no light parameter needs a gradient, the normals and the
    light are one pass each way.
    """
    faces = checks.screen_faces(faces)
    if check_faces:
        faces = checks.finite("faces", faces)
    B, nf = faces.shape[:2]
    ambient = _intensity("light_intensity_ambient", intensity_ambient, faces)
    directional = _intensity("light_intensity_directional", intensity_directional, faces)

    def vec(value, name):
        return checks.vector3(name, value, faces, B)[:, None, :]  # (B or 1, 1, 3)

    ambient_colour = ambient * vec(color_ambient, "light_color_ambient")  # (B or 1, 1, 3)
    if not torch.is_tensor(directional) and directional == 0:
        return ambient_colour.expand(B, nf, 3)
    directional_colour = directional * vec(color_directional, "light_color_directional")
    d = vec(direction, "light_direction")
    ops = backends.ops_for(backend, faces.device)
    if hasattr(ops, "face_light") and not any(t.requires_grad for t in (ambient_colour, directional_colour, d)):
        def rows(t):
            return t.to(faces.dtype).expand(B, 1, 3).reshape(B, 3).contiguous()
        return _FaceLight.apply(faces.contiguous(), rows(ambient_colour), rows(directional_colour), rows(d), ops)
    # unit normal of each face: normalise over x, y, z (the last dimension), not over faces
    normals = F.normalize(cross(faces[:, :, 0] - faces[:, :, 1], faces[:, :, 2] - faces[:, :, 1]), dim=-1,
                          eps=NORMAL_EPS)
    cos = torch.relu((normals * d).sum(-1))
    return ambient_colour.expand(B, nf, 3) + directional_colour * cos[..., None]


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a x b over the last dimension (3), each component two products and a difference, rounded one
    by one. (torch.cross fuses them into an FMA on CPU builds with AVX2: a component that cancels
    exactly, the normal's y of a face in a vertical plane, then comes out as the products' rounding
    error instead of 0, and at the light's kink max(0, n . d) its gradient is then the lit side's where
    the numba pass and the GPU give 0.)"""
    a0, a1, a2 = a.unbind(-1)
    b0, b1, b2 = b.unbind(-1)
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


class _FaceLight(torch.autograd.Function):
    """:func:`face_light` as one backend pass each way (``ops.face_light``: the numba backend's), for
    constant light parameters (B, 3): the gradient goes to the faces alone."""

    @staticmethod
    def forward(ctx, faces, ambient, directional, direction, ops):
        ctx.save_for_backward(faces, directional, direction)
        ctx.ops = ops
        return ops.face_light(faces, ambient, directional, direction, NORMAL_EPS)

    @staticmethod
    def backward(ctx, grad):
        faces, directional, direction = ctx.saved_tensors
        return ctx.ops.face_light_backward(faces, directional, direction, NORMAL_EPS, grad), None, None, None, None


def _intensity(name, value, faces):
    """A number, or a tensor of one value or one per mesh (B,) (learnable intensities), as a number
    or a (B or 1, 1, 1) tensor."""
    if torch.is_tensor(value):
        B = faces.shape[0]
        if value.numel() not in (1, B) or value.dim() > 1:
            raise ValueError(f"{name} must be a number or a tensor of 1 or B={B} values, got shape "
                             f"{tuple(value.shape)}")
        return checks.finite(name, value.to(faces)).reshape(-1, 1, 1)
    return checks.number(name, value)


def lighting(faces: torch.Tensor, textures: torch.Tensor, intensity_ambient=defaults.LIGHT_INTENSITY_AMBIENT,
             intensity_directional=defaults.LIGHT_INTENSITY_DIRECTIONAL, color_ambient=defaults.LIGHT_COLOR,
             color_directional=defaults.LIGHT_COLOR, direction=defaults.LIGHT_DIRECTION) -> torch.Tensor:
    """Lit texture cubes (B, F, T, T, T, 3): ``textures`` times :func:`face_light`.

    Returns a new tensor; the caller's textures are not modified (neural_renderer's are).
    """
    light = face_light(faces, intensity_ambient, intensity_directional,
                       color_ambient, color_directional, direction)
    textures = checks.textures(textures, *faces.shape[:2])
    return textures * light[:, :, None, None, None, :]
