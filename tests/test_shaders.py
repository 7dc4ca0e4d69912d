"""The shader interface: the README's hello triangle and a third shader in plain PyTorch."""
import pytest
import torch

import tritonnmr as nr


def test_hello_triangle_gradient_pulls_toward_the_target():
    vertices = torch.tensor([[[-0.6, -0.5, 2.0], [0.7, -0.4, 2.0], [0.0, 0.7, 2.0]]], requires_grad=True)
    faces = torch.tensor([[[0, 1, 2]]])
    colours = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]])
    renderer = nr.Renderer(image_size=64, camera_mode="none")
    rgb, depth, alpha = renderer(vertices, faces, colours)
    assert rgb.shape == (1, 3, 64, 64) and alpha.sum() > 300
    target = torch.zeros(1, 64, 64)
    target[:, 10:54, 10:54] = 1
    loss = ((alpha - target) ** 2).sum()
    loss.backward()
    g = vertices.grad[0]
    # the target square reaches lower than the triangle: the bottom vertices are pulled down
    assert g[0, 1] > 0 and g[1, 1] > 0
    # and the gradient is a descent direction: a step that moves the vertices ~1.5 pixels lowers the loss
    step = 0.05 * g / g[:, :2].norm(dim=-1).max()
    with torch.no_grad():
        _, _, moved = renderer(vertices - step, faces, colours)
    assert ((moved - target) ** 2).sum() < loss - 20


class NormalShader(nr.Shader):
    """Flat shading by face normal, written with torch ops only."""

    def check(self, attributes, batch, num_faces):
        return attributes

    def shade(self, fragments, normals, backend="auto"):
        fi = fragments.face_index.clamp(min=0)
        b = torch.arange(fi.shape[0], device=fi.device)[:, None, None]
        return normals[b, fi] * 0.5 + 0.5


def test_a_plain_torch_shader_plugs_in_and_gets_gradients():
    faces = torch.tensor([[[[-0.9, -0.9, 2.0], [0.9, -0.9, 2.0], [0.0, 0.9, 2.0]],
                           [[-0.3, -0.3, 1.0], [0.3, -0.3, 1.0], [0.0, 0.3, 1.0]]]], requires_grad=True)
    normals = torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]]], requires_grad=True)
    rgb = nr.rasterize(faces, normals, 16, anti_aliasing=False, shader=NormalShader(), backend="torch")
    assert torch.allclose(rgb[0, :, 8, 8], torch.tensor([0.5, 0.5, 1.0]))    # the small, nearer face
    assert torch.allclose(rgb[0, :, 12, 3], torch.tensor([1.0, 0.5, 0.5]))  # the big face
    assert torch.all(rgb[0, :, 0, 0] == 0)                                   # background
    weights = torch.rand(16, 16, generator=torch.Generator().manual_seed(0))
    (rgb[:, 0] * weights).sum().backward()
    # red = 0.5 n_x + 0.5 on each face's pixels: d loss / d n_x = 0.5 * (the weights on that face's pixels)
    big = (rgb[0] == torch.tensor([1.0, 0.5, 0.5])[:, None, None]).all(0)
    small = (rgb[0] == torch.tensor([0.5, 0.5, 1.0])[:, None, None]).all(0)
    assert normals.grad[0, 0, 0].item() == pytest.approx(0.5 * weights[big].sum().item(), rel=1e-5)
    assert normals.grad[0, 1, 0].item() == pytest.approx(0.5 * weights[small].sum().item(), rel=1e-5)
    assert torch.all(normals.grad[0, :, 1:] == 0)  # green and blue do not enter the loss
    assert faces.grad[0, :, :, :2].abs().sum() > 0 and torch.all(faces.grad[0, :, :, 2] == 0)  # edges move
