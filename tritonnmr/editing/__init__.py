"""Mesh editing through rendered images: 2D-to-3D style transfer and 3D DeepDream.

features (VGG-16, local weights or random fallback) -> objectives (Gram, content, TV, activation)
-> edit (the optimisation loop over vertices and textures); style_images makes style pictures.
"""
from .edit import DREAM_LAYER, STYLE_LAYERS, deep_dream, edit_mesh, style_transfer
from .features import LAYER_NAMES, VGG16Features
from .objectives import activation_norm, content_loss, gram, style_loss, tv_loss
from .style_images import STYLES

__all__ = ["DREAM_LAYER", "LAYER_NAMES", "STYLES", "STYLE_LAYERS", "VGG16Features", "activation_norm", "content_loss",
           "deep_dream", "edit_mesh", "gram", "style_loss", "style_transfer", "tv_loss"]
