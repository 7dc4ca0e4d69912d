"""Mesh editing through rendered images: 2D-to-3D style transfer and 3D DeepDream.

features (FeatureNetwork: EfficientNet-Lite0 or VGG-16, pretrained or random; efficientnet, vgg hold
the architectures) -> objectives (Gram, content, TV, activation) -> edit (the optimisation loop over
vertices and textures); texture (2D texture synthesis and the gradients' orientation: how the tests
tell structure from colour); style_images makes style pictures; commands holds `style` and `dream`.
"""
from .edit import DREAM_LAYERS, STYLE_LAYERS, deep_dream, edit_mesh, style_transfer
from .features import FeatureNetwork, choose
from .objectives import activation_norm, content_loss, gram, style_loss, tv_loss
from .style_images import STYLES

__all__ = ["DREAM_LAYERS", "FeatureNetwork", "STYLES", "STYLE_LAYERS", "activation_norm", "choose", "content_loss",
           "deep_dream", "edit_mesh", "gram", "style_loss", "style_transfer", "tv_loss"]
