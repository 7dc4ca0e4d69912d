"""2D-to-3D style transfer and 3D DeepDream: optimise a mesh's vertices and textures through the
renderer so its images, seen from random viewpoints, match a style image's Gram matrices or excite
a feature layer (the paper's section 4.2). Both share :func:`edit_mesh`.
"""
import time

import torch

from ... import Renderer, get_points_from_angles
from ...camera import DEFAULT_DISTANCE
from ..fitting import FitResult, optimize
from ..media import to_uint8
from . import objectives
from .features import resize

# Default layers per (network, pretrained): those whose Gram matrices define a style ("rgb" is the
# pixels' own colour moments) and those DeepDream excites. Random filters make sense only near the
# pixels (deeper random layers add noise); README.md gives the measurements behind each choice.
STYLE_LAYERS = {("efficientnet-lite0", True): ("stem", "stage2", "stage3", "stage4", "stage5"),
                ("efficientnet-lite0", False): ("rgb", "stem", "stage1", "stage2"),
                ("vgg16", True): ("rgb", "relu1_2", "relu2_2", "relu3_3", "relu4_3"),
                ("vgg16", False): ("rgb", "relu1_2", "relu2_2")}
DREAM_LAYERS = {("efficientnet-lite0", True): ("stage3", "stage4", "stage6"),
                ("efficientnet-lite0", False): ("stage2",),
                ("vgg16", True): ("relu4_3",), ("vgg16", False): ("relu3_3",)}


def _views(count, generator, elevation_range):
    """Eyes (count, 3) at random azimuths and elevations in ``elevation_range`` (degrees)."""
    azimuth = torch.rand(count, generator=generator) * 360
    lo, hi = elevation_range
    elevation = lo + torch.rand(count, generator=generator) * (hi - lo)
    return get_points_from_angles(torch.full((count,), DEFAULT_DISTANCE), elevation, azimuth)


FIXED_VIEWS = get_points_from_angles(torch.full((4,), DEFAULT_DISTANCE), torch.full((4,), 30.0),
                                     torch.tensor([0.0, 90.0, 180.0, 270.0]))


def edit_mesh(objective, vertices, faces, iterations=200, image_size=128, texture_size=4,
              lambda_content=2.0, lambda_tv=10.0, lr_vertices=0.002, lr_textures=0.1, views=2,
              elevation_range=(0.0, 40.0), frame_every=5, background=(1.0, 1.0, 1.0), backend="auto",
              seed=0, progress=True, desc="edit"):
    """Optimise vertex displacements and per-face texture cubes (texture_size^3, through a sigmoid,
    starting grey) to minimise ``objective(rgb, alpha)`` + lambda_content * content +
    lambda_tv * total variation, on ``views`` random viewpoints per step.

    objective(rgb, alpha) -> scalar, rgb (B, 3, S, S), alpha (B, S, S).
    vertices (1, V, 3), faces (1, F, 3).
    The metrics' loss_initial / loss_final are the objective on four fixed views (azimuths 0, 90,
    180, 270 at elevation 30) before and after."""
    device = vertices.device
    original = vertices.detach()
    displacement = torch.nn.Parameter(torch.zeros_like(original))
    raw = torch.nn.Parameter(torch.zeros(1, faces.shape[1], *(texture_size,) * 3, 3, device=device))
    renderer = Renderer(image_size=image_size, camera_mode="look_at", anti_aliasing=False,
                        background_color=list(background), backend=backend)
    generator = torch.Generator().manual_seed(seed)

    def render(eyes):
        renderer.eye = eyes.to(device)
        b = eyes.shape[0]
        v = (original + displacement).expand(b, -1, -1)
        rgb, _, alpha = renderer(v, faces.expand(b, -1, -1), torch.sigmoid(raw).expand(b, *raw.shape[1:]))
        return rgb, alpha

    parts = {}

    def step():
        rgb, alpha = render(_views(views, generator, elevation_range))
        main = objective(rgb, alpha)
        content = objectives.content_loss(original + displacement, original)
        tv = objectives.tv_loss(rgb)
        parts.update(content=content.item(), tv=tv.item())
        return main + lambda_content * content + lambda_tv * tv

    shown = []

    def frame():  # the camera turns 6 degrees between frames
        shown.append(len(shown))
        eye = torch.tensor(get_points_from_angles(DEFAULT_DISTANCE, 30.0, 6.0 * shown[-1])).view(1, 3)
        with torch.no_grad():
            return to_uint8(render(eye)[0][0])

    with torch.no_grad():
        initial = objective(*render(FIXED_VIEWS)).item()
    start = time.time()
    groups = [{"params": [displacement], "lr": lr_vertices}, {"params": [raw], "lr": lr_textures}]
    losses, frames, interrupted = optimize(step, groups, iterations, lr_textures, frame, frame_every, progress, desc)
    with torch.no_grad():
        final = objective(*render(FIXED_VIEWS)).item()
    vertices_out = (original + displacement).detach()
    metrics = {"iterations": len(losses), "loss_initial": initial, "loss_final": final,
               "total_loss_first": losses[0] if losses else None, "total_loss_last": losses[-1] if losses else None,
               "content_final": parts.get("content"), "tv_final": parts.get("tv"),
               "max_displacement": displacement.detach().norm(dim=-1).max().item(), "seconds": time.time() - start}
    return FitResult(metrics, frames, losses, interrupted, vertices=vertices_out, textures=torch.sigmoid(raw).detach())


def _key(network):
    return network.name, network.pretrained


def style_transfer(vertices, faces, style_image, network, layers=None, lambda_style=1.0,
                   feature_size=None, **options):
    """Match the Gram matrices of ``style_image`` (3, H, W) in [0, 1] over ``layers`` of ``network``
    (a :class:`~tritonnmr.apps.editing.FeatureNetwork`; default: ``STYLE_LAYERS[name, pretrained]``; "rgb"
    is the pixels themselves); the objective is lambda_style * the style loss, its Gram matrices
    taken over the mesh's pixels only (weighted by alpha). The style image is resized to
    ``feature_size`` (default: the image size); the background is its mean colour (unless given).
    Other options as :func:`edit_mesh`. -> FitResult."""
    device = vertices.device
    layers = tuple(layers or STYLE_LAYERS[_key(network)])
    features = objectives.style_features(network, layers)
    options.setdefault("background", tuple(style_image.reshape(3, -1).mean(1).tolist()))
    size = feature_size or options.get("image_size", 128)
    with torch.no_grad():
        targets = {name: objectives.gram(f) for name, f in
                   features(resize(style_image[None].to(device), size)).items()}

    def objective(rgb, alpha):  # the rendering's statistics on the mesh only
        return lambda_style * objectives.style_loss(features(rgb), targets, alpha)

    result = edit_mesh(objective, vertices, faces, desc="style", **options)
    m = result.metrics
    m["layers"] = list(layers)
    result.summary = (f"style loss (Gram matrices of {', '.join(layers)}; 4 fixed views) "
                      f"{_change(m['loss_initial'], m['loss_final'])}; {m['iterations']} steps, {m['seconds']:.0f} s")
    return result


def deep_dream(vertices, faces, network, layers=None, **options):
    """Maximise the sum over ``layers`` of ``network`` of their mean squared activations (default:
    ``DREAM_LAYERS[name, pretrained]``): the objective is its negation. -> FitResult whose metrics
    hold activation_initial / activation_final on the four fixed views."""
    layers = tuple(layers or DREAM_LAYERS[_key(network)])
    network.check_layers(layers)

    def objective(rgb, alpha):
        out = network.features(rgb, layers)
        return -sum(objectives.activation_norm(out, name) for name in layers)

    result = edit_mesh(objective, vertices, faces, desc="dream", **options)
    m = result.metrics
    m["layers"] = list(layers)
    m["activation_initial"], m["activation_final"] = -m["loss_initial"], -m["loss_final"]
    result.summary = (f"mean squared activation of {' + '.join(layers)} (4 fixed views) "
                      f"{_change(-m['loss_initial'], -m['loss_final'])}; {m['iterations']} steps, {m['seconds']:.0f} s")
    return result


def _change(before, after):
    """'a -> b (+x%)', the relative change taken against |before|."""
    percent = f" ({100 * (after - before) / abs(before):+.0f}%)" if before else ""
    return f"{before:.4g} -> {after:.4g}{percent}"


__all__ = ["DREAM_LAYERS", "FIXED_VIEWS", "STYLE_LAYERS", "deep_dream", "edit_mesh", "style_transfer"]
