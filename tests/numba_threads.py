"""Digests of every numba op's results and of the Renderer's gradients, run in a child process.

    NUMBA_NUM_THREADS=N python tests/numba_threads.py

prints one JSON object: for each item (an op's results on a random scene, or a Renderer's images and
gradients on a perturbed teapot, one per estimator), the MD5 of its bytes in each of two runs.
tests/test_numba_backend.py runs it at 1, 2 and 4 threads (torch's thread count set to the same N, so
the glue around the kernels runs on N threads too) and requires the same bytes everywhere. The scenes
are large enough for threads to race: the teapot at 128^2 anti-aliased (256^2 inside, 4,928 faces),
and 3 x 400 random overlapping triangles at 96 x 80.
"""
import hashlib
import json
import os
import sys

import numba
import torch

import tritonnmr as nr
from tritonnmr.backends import numba as ops

THREADS = numba.config.NUMBA_NUM_THREADS


def _digest(values):
    h = hashlib.md5()
    for value in values:
        h.update(value.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def random_scene(seed=0, batch=3, faces=400, height=96, width=80):
    """Screen-space faces (B, F, 3, 3): overlapping, half back-facing, some off the image."""
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(batch, faces, 1, 2, generator=g) * 2 - 1) * 1.2
    offsets = (torch.rand(batch, faces, 3, 2, generator=g) - 0.5) * 0.6
    z = torch.rand(batch, faces, 3, 1, generator=g) * 3 + 0.5
    return torch.cat([centres + offsets, z], -1), height, width


def op_results():
    """{op: its results} for every op of the numba backend on the random scene."""
    faces, H, W = random_scene()
    B, F = faces.shape[:2]
    g = torch.Generator().manual_seed(1)
    near, far = 0.1, 100.0
    out = {}
    face_index, weights, depth = out["rasterize_fragments"] = ops.rasterize_fragments(faces, H, W, near, far)
    bary = out["perspective_barycentrics"] = ops.perspective_barycentrics(faces, face_index, weights, depth)
    image, grad = torch.rand(B, H, W, 4, generator=g), torch.randn(B, H, W, 4, generator=g)
    out["depth_backward"] = ops.depth_backward(faces, face_index, weights, depth, grad[..., 0].contiguous())
    out["edge_backward (4 channels)"] = ops.edge_backward(faces, face_index, image, grad, 1e-3)
    alpha = (face_index >= 0).float()[..., None]
    out["edge_backward (silhouette)"] = ops.edge_backward(faces, face_index, alpha, grad[..., :1].contiguous(), 1e-4)
    textures = torch.rand(B, F, 2, 2, 2, 4, generator=g)
    out["sample_cubes"] = ops.sample_cubes(face_index, bary, textures, 1e-3)
    out["sample_cubes_backward"] = ops.sample_cubes_backward(face_index, bary, grad, textures, 1e-3)
    both_sides = out["fill_back_cubes"] = ops.fill_back_cubes(textures)
    out["fill_back_cubes_backward"] = ops.fill_back_cubes_backward(torch.randn(both_sides.shape, generator=g))
    colours = torch.rand(B, F, 3, 4, generator=g)
    out["interpolate"] = ops.interpolate(face_index, bary, colours)
    out["interpolate_backward"] = ops.interpolate_backward(face_index, bary, grad, colours)
    uvs, texels = torch.rand(B, F, 3, 2, generator=g), torch.rand(64, 4, generator=g)
    material, table = torch.zeros(B, F, dtype=torch.int64), torch.tensor([[0, 8, 8]])
    out["sample_uv"] = ops.sample_uv(face_index, bary, uvs, texels, material, table, 0)
    out["sample_uv_backward"] = ops.sample_uv_backward(face_index, bary, grad, uvs, texels, material, table, 0)
    silhouette = torch.ones(B, F, 3, dtype=torch.bool)
    pair_alpha, edge = out["antialias_pairs"] = ops.antialias_pairs(faces, face_index, depth, silhouette)
    out["antialias"] = ops.antialias(image, pair_alpha)
    out["antialias_backward"] = ops.antialias_backward(faces, image, pair_alpha, edge, grad)
    pairs = out["soft_fragments"] = ops.soft_fragments(faces, H, W, near, far, 0.05)
    pixel, face, d2, pair_depth, pair_bary = pairs
    n = pixel.shape[0]
    out["soft_fragments_backward"] = ops.soft_fragments_backward(
        faces, H, W, pixel, face, torch.randn(n, generator=g), torch.randn(n, generator=g),
        torch.randn(n, 3, generator=g))
    pair_colours, background = torch.rand(n, 3, generator=g), torch.tensor([0.2, 0.3, 0.4])
    blend = (pixel, d2, pair_depth, pair_colours, background, B * H * W, 1e-4, 1e-4, 1e-10, near, far)
    out["soft_blend"] = ops.soft_blend(*blend)
    out["soft_blend_backward"] = ops.soft_blend_backward(*blend, torch.randn(B * H * W, 3, generator=g),
                                                         torch.randn(B * H * W, generator=g))
    world, direction = faces - 1.5, torch.randn(B, 3, generator=g)  # any faces: lit by their normals
    ambient, directional = torch.rand(B, 3, generator=g), torch.rand(B, 3, generator=g)
    out["face_light"] = ops.face_light(world, ambient, directional, direction, 1e-12)
    out["face_light_backward"] = ops.face_light_backward(world, directional, direction, 1e-12,
                                                         torch.randn(B, F, 3, generator=g))
    return {name: value if isinstance(value, tuple) else (value,) for name, value in out.items()}


def renderer_results():
    """{estimator: (images, vertex and texture gradients)} of a perturbed teapot at 128^2, and a
    silhouette loss's vertex gradient."""
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    g = torch.Generator().manual_seed(2)
    v = (v + 0.02 * torch.randn(v.shape, generator=g))[None]
    f = f[None]
    size = 128
    textures = torch.rand(1, f.shape[1], 2, 2, 2, 3, generator=g)
    weights = [torch.randn(1, 3, size, size, generator=g), torch.randn(1, size, size, generator=g),
               torch.randn(1, size, size, generator=g)]
    out = {}
    for gradient in ("blurred_edge", "soft", "analytic"):
        r = nr.Renderer(image_size=size, camera_mode="look_at", gradient=gradient)
        r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
        vertices, tex = v.clone().requires_grad_(), textures.clone().requires_grad_()
        rgb, depth, alpha = r(vertices, f, tex)
        loss = (rgb * weights[0]).sum() + (alpha * weights[1]).sum() + 1e-3 * (depth * weights[2]).sum()
        loss.backward()
        out[f"renderer rgb, depth, alpha ({gradient})"] = (rgb, depth, alpha, vertices.grad, tex.grad)
        vertices = v.clone().requires_grad_()
        ((r(vertices, f, mode="silhouettes") - 0.5 * (weights[1] > 0)) ** 2).sum().backward()
        out[f"renderer silhouettes ({gradient})"] = (vertices.grad,)
    return out


def main():
    torch.set_num_threads(THREADS)
    runs = [{**op_results(), **renderer_results()} for _ in range(2)]
    report = {name: [_digest(run[name]) for run in runs] for name in runs[0]}
    report["threads"] = [THREADS, torch.get_num_threads()]
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
