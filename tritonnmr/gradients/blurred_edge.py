"""The paper's estimator (Kato et al. 2018, section 3.3): the hard image, whose backward moves edges.

Forward: each pixel shows the nearest face's colour at its centre (background where none), and alpha
is coverage. Backward (raster.edge_gradient, one backend op): for each edge and scanline, would moving
the edge over the next pixels lower the loss? Then the vertices get that change divided by the
distance moved. Applied once to rgb and alpha stacked, as the paper's code sums the change over all
channels before deciding.
"""
import torch

from ..raster import edge_gradient
from . import background, lit_colours


def render(scene, fragments, outputs, options):
    covered = (fragments.face_index >= 0)[..., None]
    channels = []
    if "rgb" in outputs:
        rgb = lit_colours(scene, fragments)
        channels.append(torch.where(covered, rgb, background(scene, rgb)))
    if "alpha" in outputs:
        channels.append(covered.to(scene.faces.dtype))
    image = edge_gradient(torch.cat(channels, -1), fragments, options.eps, backend=scene.backend)
    out, start = {}, 0
    for name, image_part in zip([n for n in ("rgb", "alpha") if n in outputs], channels):
        out[name] = image[..., start:start + image_part.shape[-1]]
        start += image_part.shape[-1]
    return out
