"""Precision of the rendering path: float32 whatever ``torch.autocast`` says.

Under autocast the camera's matrix products would come out in bfloat16 or float16, rounding
screen positions to about 2^-8 (4 pixels at 2048 wide), and the kernels take float32 only. So the
Renderer and the rasterize functions run with autocast off for their tensors' device: geometry,
rasterization, shading and the blurred edge are float32, and so is every image they return.
Inputs in half precision (vertices from a network under autocast, say) are cast to float32 where
they are checked, and their gradients flow back in their own dtype.
"""
import torch


def float32(device):
    """A context with autocast off on ``device``'s type (the Renderer's and rasterize_*'s bodies)."""
    return torch.autocast(device_type=torch.device(device).type, enabled=False)


def device_of(*values, default="cpu"):
    """The device of the first tensor among ``values`` (looking into lists and tuples), else ``default``."""
    for value in values:
        if torch.is_tensor(value):
            return value.device
        if isinstance(value, (list, tuple)):
            found = device_of(*value, default=None)
            if found is not None:
                return found
    return None if default is None else torch.device(default)
