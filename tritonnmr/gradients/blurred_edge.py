"""The paper's estimator (Kato et al. 2018, section 3.3): the hard image, whose backward moves edges.

Forward: each pixel shows the nearest face's colour at its centre (background where none), and alpha
is coverage. Backward (raster.edge_gradient, one backend op): for each edge and scanline, would moving
the edge over the next pixels lower the loss? Then the vertices get that change divided by the
distance moved. Applied once to rgb and alpha stacked, as the paper's code sums the change over all
channels before deciding.
"""
from ..raster import edge_gradient
from . import hard_image


def render(scene, fragments, outputs, options):
    # one image of the outputs' channels stacked, in order (render.finish_images splits it)
    return {tuple(n for n in ("rgb", "alpha") if n in outputs):
            edge_gradient(hard_image(scene, fragments, outputs), fragments, options.eps, backend=scene.backend)}
