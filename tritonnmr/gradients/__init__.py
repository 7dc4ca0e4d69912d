"""The gradient estimators behind ``gradient=``: how the gradient of an image reaches the faces.

- ``"blurred_edge"`` (the default; Kato et al. 2018): the hard, point-sampled image; its backward moves
  each edge and asks whether the change lowers the loss (:mod:`.blurred_edge`).
- ``"soft"`` (SoftRas; Liu et al. 2019): every face within reach of a pixel contributes by a sigmoid of
  its signed distance and a softmax of its depth; the exact gradient of that image (:mod:`.soft`).
- ``"analytic"`` (nvdiffrast's; Laine et al. 2020): the hard image with its silhouette edges
  antialiased analytically; the exact gradient of that blend, through where the edges cross between
  pixel centres (:mod:`.analytic`; which edges: :mod:`.silhouettes`).

Each estimator is a module with ``render(scene, fragments, outputs, options) -> {name: (B, H, W, C)}``:
the pre-flip, pre-pooling images named in ``outputs`` ("rgb", "alpha") of a :class:`Scene`, given its
hard ``fragments`` (which also give the depth map, the same for every estimator); a key may also be a
tuple of names whose images are stacked along channels in that order (rgb's channels, then alpha's
one). ``render`` in :mod:`tritonnmr.render` calls it and finishes the images (pooling, flip, split).
"""
import importlib
from typing import NamedTuple, Optional

import torch

from .. import backends, checks, defaults, mesh
from ..raster import Fragments, in_mesh_faces

ESTIMATORS = ("blurred_edge", "soft", "analytic")


class Scene(NamedTuple):
    """What an estimator renders (trusted: checked by the public functions)."""
    faces: torch.Tensor            # (B, F, 3, 3) screen space (after clipping: F' pieces)
    attributes: object             # the shader's attributes (None without "rgb")
    shader: object                 # a tritonnmr.Shader
    light: Optional[torch.Tensor]  # (B, F, 3) per mesh face, multiplied into a lit shader's colours
    parent: object                 # the near-plane clipping's map to mesh faces (raster.in_mesh_faces)
    background: tuple              # the background colour, a number per channel or one for all
    height: int                    # the size rendered (twice the output's when anti-aliasing)
    width: int
    near: float
    far: float
    backend: str
    indices: Optional[torch.Tensor] = None  # (B, F, 3) int64 vertex indices of the mesh's faces (after
    #                                 fill_back, whose copies are the last F / 2), where the input has a mesh


class Options(NamedTuple):
    """The estimators' settings: ``eps`` the blurred edge's, ``sigma`` and ``gamma`` the soft one's."""
    eps: float = defaults.SILHOUETTE_EPS
    sigma: float = defaults.SOFT_SIGMA
    gamma: float = defaults.SOFT_GAMMA


def options(gradient: str, eps: float, sigma: float, gamma: float) -> Options:
    """Checked settings (ValueError naming the argument)."""
    checks.choice("gradient", gradient, ESTIMATORS)
    checks.positive_number("eps", eps, allow_zero=True)
    return Options(eps, checks.positive_number("sigma", sigma), checks.positive_number("gamma", gamma))


def estimator(name: str):
    """The module implementing estimator ``name`` (one of ESTIMATORS)."""
    return importlib.import_module(f"{__name__}.{checks.choice('gradient', name, ESTIMATORS)}")


def light_table(scene: Scene, channels: int):
    """The light per mesh face (B, F, channels or 1) for a lit shader's colours of ``channels`` channels,
    or None when unlit. Three channels take the light's colour; other counts one grey value (coloured
    light is refused for them)."""
    if scene.light is None or not scene.light.shape[1] or not getattr(scene.shader, "lit", False):
        return None
    light = scene.light
    if channels != 3:
        if not torch.equal(light, light[..., :1].expand_as(light)):
            raise ValueError(f"coloured light (light_color_ambient / light_color_directional) needs 3-channel "
                             f"colours; the shader gives {channels} channels: use grey light colours")
        light = light[..., :1]
    return light


def light_of(scene: Scene, face_index: torch.Tensor, channels: int):
    """The light of the mesh faces ``face_index`` (any shape, -1 for none) for a lit shader's colours of
    ``channels`` channels: (..., channels or 1), or None when unlit (see :func:`light_table`)."""
    light = light_table(scene, channels)
    if light is None:
        return None
    B, F = light.shape[:2]
    b = torch.arange(B, device=light.device).view((-1,) + (1,) * (face_index.dim() - 1))
    return mesh.rows(light.reshape(B * F, light.shape[-1]), b * F + face_index.clamp(min=0))


def lit_colours(scene: Scene, fragments: Fragments) -> torch.Tensor:
    """The shader's colours (B, H, W, C) at ``fragments`` (of the rendered, maybe clipped, faces),
    times the light for a lit shader; not yet composited over the background."""
    shaded = in_mesh_faces(fragments, scene.parent)
    rgb = scene.shader.shade(shaded, scene.attributes, scene.backend)
    light = light_of(scene, shaded.face_index, rgb.shape[-1])
    return rgb if light is None else rgb * light


class _Compose(torch.autograd.Function):
    """:func:`hard_image` as one backend pass each way (``ops.compose``; backends without it: torch ops)."""

    @staticmethod
    def forward(ctx, colours, light, face_index, background, alpha, ops):
        ctx.save_for_backward(face_index, colours, light)
        ctx.ops = ops
        return ops.compose(face_index, colours, light, background, alpha)

    @staticmethod
    def backward(ctx, grad):
        face_index, colours, light = ctx.saved_tensors
        grad_colours, grad_light = ctx.ops.compose_backward(face_index, colours, light, grad, *ctx.needs_input_grad[:2])
        return grad_colours, grad_light, None, None, None, None


def hard_image(scene: Scene, fragments: Fragments, outputs) -> torch.Tensor:
    """The point-sampled image of the blurred-edge and analytic estimators: the lit colours where a face
    is, the background elsewhere ("rgb" in ``outputs``), then coverage ("alpha"), stacked along channels:
    (B, H, W, C) pre-flip."""
    ops = backends.ops_for(scene.backend, fragments.face_index.device)
    if hasattr(ops, "compose"):
        face_index = fragments.face_index
        if "rgb" in outputs:
            shaded = in_mesh_faces(fragments, scene.parent)
            colours, face_index = scene.shader.shade(shaded, scene.attributes, scene.backend), shaded.face_index
            light, bg = light_table(scene, colours.shape[-1]), background(scene, colours)
        else:  # alpha alone: no colour channel
            colours, light, bg = scene.faces.new_zeros(face_index.shape + (0,)), None, scene.faces.new_zeros(0)
        light = scene.faces.new_zeros(face_index.shape[0], 0, 1) if light is None else light
        return _Compose.apply(colours.contiguous(), light.contiguous(), face_index, bg, "alpha" in outputs, ops)
    covered = (fragments.face_index >= 0)[..., None]
    channels = []
    if "rgb" in outputs:
        rgb = lit_colours(scene, fragments)
        channels.append(torch.where(covered, rgb, background(scene, rgb)))
    if "alpha" in outputs:
        channels.append(covered.to(scene.faces.dtype))
    return torch.cat(channels, -1) if len(channels) > 1 else channels[0]


def background(scene: Scene, like: torch.Tensor) -> torch.Tensor:
    """The background colour (C,) on ``like``'s device, C = like's last dimension."""
    return checks.on_device(checks.background(scene.background, like.shape[-1]), like)
