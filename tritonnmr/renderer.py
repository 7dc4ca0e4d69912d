"""The Renderer module: neural_renderer's constructor, attributes and methods, plus ``backend``."""
import math

import torch
from torch import nn

from . import backends, camera, checks, lights, mesh
from .rasterize import rasterize_rgbad
from .shading import default_shader

CAMERA_MODES = ("look_at", "look", "projection", "none")


class Renderer(nn.Module):
    """Differentiable mesh renderer (Kato et al. 2018), a drop-in for ``neural_renderer.Renderer``.

    Every argument is also an attribute that can be changed after construction (``renderer.eye =
    ...``, ``renderer.backend = "torch"``). camera_mode: 'look_at' (camera at ``eye`` looking at the
    origin), 'look' (at ``eye`` along ``camera_direction``), 'projection' (K, R, t, dist_coeffs,
    orig_size, as (B, 3, 3), (B, 3, 3), (B, 1, 3), (B, 5), int), or 'none' (vertices already in
    screen space: x, y in [-1, 1], z the depth). backend: 'auto' (Triton on CUDA tensors, the
    PyTorch reference on CPU ones), 'torch' or 'triton'.
    """

    def __init__(self, image_size=256, anti_aliasing=True, background_color=(0, 0, 0), fill_back=True,
                 camera_mode="projection", K=None, R=None, t=None, dist_coeffs=None, orig_size=1024,
                 perspective=True, viewing_angle=30, camera_direction=(0, 0, 1), near=0.1, far=100,
                 light_intensity_ambient=0.5, light_intensity_directional=0.5,
                 light_color_ambient=(1, 1, 1), light_color_directional=(1, 1, 1),
                 light_direction=(0, 1, 0), backend="auto"):
        super().__init__()
        self.image_size = checks.image_size(image_size)
        self.anti_aliasing = anti_aliasing
        self.background_color = list(background_color)
        self.fill_back = fill_back
        self.camera_mode = checks.choice("camera_mode", camera_mode, CAMERA_MODES)
        self.K, self.R, self.t = K, R, t
        self.dist_coeffs = dist_coeffs
        self.orig_size = orig_size
        self.perspective = perspective
        self.viewing_angle = viewing_angle
        self.eye = [0, 0, -(1.0 / math.tan(math.radians(viewing_angle)) + 1)]
        self.camera_direction = list(camera_direction)
        checks.near_far(near, far)
        self.near, self.far = near, far
        self.light_intensity_ambient = light_intensity_ambient
        self.light_intensity_directional = light_intensity_directional
        self.light_color_ambient = light_color_ambient
        self.light_color_directional = light_color_directional
        self.light_direction = light_direction
        self.rasterizer_eps = 1e-3
        self.backend = checks.choice("backend", backend, backends.BACKENDS)

    # -- the path from mesh to screen ------------------------------------------------------------
    def _prepare(self, vertices, faces, textures=None):
        vertices = checks.vertices(vertices)
        faces = checks.faces(faces, vertices.shape[1], vertices.shape[0])
        checks.same_device(vertices=vertices, faces=faces, textures=textures)
        if textures is not None:
            textures = checks.texture_like(textures, *faces.shape[:2], vertices.shape[1])
        if self.fill_back:
            faces, textures = mesh.fill_back(faces, textures)
        if torch.is_tensor(textures) and textures.dim() == 3:
            textures = mesh.vertices_to_faces(textures, faces)  # per-vertex colours -> (B, F, 3, C)
        return vertices, faces, textures

    def transform(self, vertices, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """World-space vertices (B, V, 3) -> screen space (x, y in NDC, z depth) for the camera."""
        mode = checks.choice("camera_mode", self.camera_mode, CAMERA_MODES)
        if mode in ("look_at", "look"):
            if mode == "look_at":
                vertices = camera.look_at(vertices, self.eye)
            else:
                vertices = camera.look(vertices, self.eye, self.camera_direction)
            if self.perspective:
                vertices = camera.perspective(vertices, angle=self.viewing_angle)
        elif mode == "projection":
            K, R, t = (self.K if K is None else K), (self.R if R is None else R), (self.t if t is None else t)
            if K is None or R is None or t is None:
                raise ValueError("camera_mode='projection' needs K, R and t (pass them to the Renderer or "
                                 "to render), or use camera_mode='look_at'")
            vertices = camera.projection(vertices, K, R, t,
                                         self.dist_coeffs if dist_coeffs is None else dist_coeffs,
                                         self.orig_size if orig_size is None else orig_size)
        return vertices

    def _screen_faces(self, vertices, faces, camera_args):
        return mesh.vertices_to_faces(self.transform(vertices, *camera_args), faces)

    def _options(self):
        return dict(image_size=self.image_size, anti_aliasing=self.anti_aliasing, near=self.near,
                    far=self.far, backend=self.backend)

    # -- public methods --------------------------------------------------------------------------
    def render_silhouettes(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """Silhouettes (B, S, S) in [0, 1] of meshes vertices (B, V, 3), faces (B, F, 3) int."""
        vertices, faces, _ = self._prepare(vertices, faces)
        screen = self._screen_faces(vertices, faces, (K, R, t, dist_coeffs, orig_size))
        return rasterize_rgbad(screen, eps=1e-4, return_rgb=False, return_depth=False,
                               **self._options())["alpha"]

    def render_depth(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """Depth maps (B, S, S): camera-space z of the nearest face, ``far`` where empty."""
        vertices, faces, _ = self._prepare(vertices, faces)
        screen = self._screen_faces(vertices, faces, (K, R, t, dist_coeffs, orig_size))
        return rasterize_rgbad(screen, return_rgb=False, return_alpha=False, **self._options())["depth"]

    def render(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None, orig_size=None,
               shader=None):
        """(rgb (B, 3, S, S), depth (B, S, S), alpha (B, S, S)) of lit, textured meshes.

        textures: per-face cubes (B, F, T, T, T, 3), or per-vertex colours (B, V, C) (Gouraud
        shading); ``shader`` plugs in your own (see :mod:`tritonnmr.shading`).
        """
        out = self._render(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), shader, True)
        return out["rgb"], out["depth"], out["alpha"]

    def render_rgb(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None,
                   orig_size=None, shader=None):
        """RGB images (B, 3, S, S) only."""
        return self._render(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), shader, False)["rgb"]

    def _render(self, vertices, faces, textures, camera_args, shader, everything):
        if textures is None:
            raise ValueError("textures is required for render(); use render_silhouettes for masks")
        vertices, faces, textures = self._prepare(vertices, faces, textures)
        world = mesh.vertices_to_faces(vertices, faces)
        shader = shader or default_shader(textures, self.rasterizer_eps)
        textures = shader.check(textures, *faces.shape[:2])
        light = lights.face_light(world, self.light_intensity_ambient, self.light_intensity_directional,
                                        self.light_color_ambient, self.light_color_directional,
                                        self.light_direction)
        shape = (light.shape[0], light.shape[1]) + (1,) * (textures.dim() - 3) + (3,)
        if textures.shape[-1] == 3:
            textures = textures * light.reshape(shape)
        screen = self._screen_faces(vertices, faces, camera_args)
        return rasterize_rgbad(screen, textures, eps=self.rasterizer_eps, background_color=self.background_color,
                               return_alpha=everything, return_depth=everything, shader=shader,
                               **self._options())

    def forward(self, vertices, faces, textures=None, mode=None, K=None, R=None, t=None, dist_coeffs=None,
                orig_size=None):
        """mode None: (rgb, depth, alpha); 'rgb', 'silhouettes' or 'depth': that map alone."""
        checks.choice("mode", mode, (None, "rgb", "silhouettes", "depth"))
        cam = dict(K=K, R=R, t=t, dist_coeffs=dist_coeffs, orig_size=orig_size)
        if mode == "silhouettes":
            return self.render_silhouettes(vertices, faces, **cam)
        if mode == "depth":
            return self.render_depth(vertices, faces, **cam)
        if mode == "rgb":
            return self.render_rgb(vertices, faces, textures, **cam)
        return self.render(vertices, faces, textures, **cam)
