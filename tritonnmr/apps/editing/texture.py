"""2D texture synthesis from a style image's Gram matrices, and the dominant orientation of an
image's gradients: together a check that a feature network carries a style's structure (the
direction of its stripes), not only its colours.

Orientation: the structure tensor J = sum over pixels of g g^T, g = the luminance gradient (x to
the right, y up as the image is seen) by Scharr's 3 x 3 kernels, chosen for their rotational
symmetry (central differences read 30-degree stripes of period 8 as 34 degrees; Scharr's as 30.0). Its leading eigenvector is the gradients' dominant direction,
at 0.5 atan2(2 Jxy, Jxx - Jyy); stripes run at right angles to it. Coherence (l1 - l2) / (l1 + l2)
of the eigenvalues is 1 for perfect stripes and 0 for an image with no preferred direction.
"""
import math

import torch
import torch.nn.functional as F

from . import objectives

# d/dx, x to the right (cross-correlation as F.conv2d computes it); d/dy (y up) is minus its transpose
SCHARR_X = ((-3.0, 0.0, 3.0), (-10.0, 0.0, 10.0), (-3.0, 0.0, 3.0))

SYNTHESIS_SEED = 0
START_NOISE = 0.1  # std of the starting logits around grey: a noise image, as Gatys et al. start from


def orientation(image: torch.Tensor) -> tuple:
    """image (3, H, W) or (H, W) -> (angle of the stripes in degrees in [0, 180), anticlockwise
    from horizontal as seen; coherence in [0, 1])."""
    grey = (image.mean(0) if image.dim() == 3 else image).detach().float().cpu()[None, None]
    kx = torch.tensor(SCHARR_X)
    gx, gy = F.conv2d(grey, kx[None, None]), F.conv2d(grey, -kx.t()[None, None])
    jxx, jyy, jxy = (gx * gx).sum().item(), (gy * gy).sum().item(), (gx * gy).sum().item()
    gradient = 0.5 * math.degrees(math.atan2(2 * jxy, jxx - jyy))
    spread = math.hypot(jxx - jyy, 2 * jxy)
    return (gradient + 90.0) % 180.0, spread / (jxx + jyy) if jxx + jyy > 0 else 0.0


def angle_error(a: float, b: float) -> float:
    """The angle in [0, 90] degrees between two undirected orientations."""
    return abs((a - b + 90.0) % 180.0 - 90.0)


def synthesize(style: torch.Tensor, network, layers, size: int = 64, steps: int = 300, lr: float = 0.05,
               seed: int = SYNTHESIS_SEED) -> tuple:
    """Gatys-style texture synthesis: an image (3, size, size), as sigmoid(logits) starting from
    seeded noise around grey, optimised with Adam so that its Gram matrices over ``layers`` of
    ``network`` match those of ``style`` (3, size, size) in [0, 1]. -> (image, [loss per step])."""
    features = objectives.style_features(network, layers)
    with torch.no_grad():
        targets = {name: objectives.gram(f) for name, f in features(style[None]).items()}
    generator = torch.Generator().manual_seed(seed)
    logits = torch.nn.Parameter(torch.randn(1, 3, size, size, generator=generator).to(style.device) * START_NOISE)
    optimizer = torch.optim.Adam([logits], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = objectives.style_loss(features(torch.sigmoid(logits)), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return torch.sigmoid(logits).detach()[0], losses


__all__ = ["angle_error", "orientation", "synthesize"]
