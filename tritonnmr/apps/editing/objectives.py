"""Losses on rendered images for mesh editing: style (Gram matrices), content, total variation, dream."""
import torch.nn.functional as F

RGB = "rgb"  # the pseudo-layer of the pixels themselves: its Gram matrix is the colours' second moments


def gram(features, mask=None):
    """Gram matrices (B, C, C) of feature maps (B, C, H, W): G = F F^T / (H W), F = (B, C, H W).

    With ``mask`` (B, H', W') in [0, 1] (e.g. the mesh's alpha), resized by area to (H, W), each
    position is weighted by it: G = F diag(m) F^T / sum(m), the statistics of the masked part only."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    if mask is None:
        return f @ f.transpose(1, 2) / (h * w)
    m = F.interpolate(mask[:, None], size=(h, w), mode="area").reshape(b, 1, h * w)
    return (f * m) @ f.transpose(1, 2) / m.sum(-1, keepdim=True).clamp(min=1e-6)


def style_loss(features, targets, mask=None):
    """Sum over layers of the relative squared error of the Gram matrices, ||G - S||^2 / ||S||^2,
    averaged over the batch; ``targets`` are the style image's Gram matrices (1, C, C) per layer,
    ``mask`` optionally restricts the rendered images' statistics to the mesh (see :func:`gram`).
    Dividing by ||S||^2 weighs the layers alike whatever their scale (pretrained or random)."""
    total = 0.0
    for name, target in targets.items():
        g = gram(features[name], mask)
        total = total + ((g - target) ** 2).sum((1, 2)).mean() / (target ** 2).sum().clamp(min=1e-12)
    return total


def style_features(network, layers):
    """A function images (B, 3, H, W) -> {layer: features} for ``layers`` of ``network`` (a
    FeatureNetwork), where the layer "rgb" is the images themselves. The names are checked now."""
    cnn = [name for name in layers if name != RGB]
    if cnn:
        network.check_layers(cnn)

    def features(images):
        out = network.features(images, cnn) if cnn else {}
        if RGB in layers:
            out[RGB] = images
        return out
    return features


def tv_loss(images):
    """Total variation: mean squared difference of vertically and horizontally neighbouring pixels."""
    dy = images[..., 1:, :] - images[..., :-1, :]
    dx = images[..., :, 1:] - images[..., :, :-1]
    return (dy ** 2).mean() + (dx ** 2).mean()


def content_loss(vertices, original):
    """Mean over vertices of the squared distance to the original mesh's vertices."""
    return ((vertices - original) ** 2).sum(-1).mean()


def activation_norm(features, layer):
    """Mean squared activation of ``layer``: what DeepDream maximises."""
    return (features[layer] ** 2).mean()
