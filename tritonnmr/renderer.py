"""The Renderer module: neural_renderer's constructor, attributes and methods, plus ``backend``.

One path from mesh to image (each step a small function elsewhere in the package):
meshes -> ``mesh.batch`` (lists / padded / unbatched to one padded batch, checked once) ->
``fill_back`` -> per-face light in world space (``lights``) -> camera space (``camera``) ->
face corners -> near-plane clipping (``clip``) -> projection to the screen -> ``render_faces``
(fragments, shading x light, blurred-edge gradient, flip, anti-aliasing).
"""
import math

import torch
from torch import nn

from . import backends, camera, checks, clip, lights, mesh, precision
from .rasterize import render_faces
from .shading import VertexColorShader, as_shader, attribute_tensors, default_shader

CAMERA_MODES = ("look_at", "look", "projection", "none")
_MODES = (None, "rgb", "silhouettes", "depth")


class Renderer(nn.Module):
    """Differentiable mesh renderer (Kato et al. 2018), a drop-in for ``neural_renderer.Renderer``.

    Every argument is also an attribute that can be changed after construction (``renderer.eye =
    ...``, ``renderer.backend = "torch"``). camera_mode: 'look_at' (camera at ``eye`` looking at the
    origin), 'look' (at ``eye`` along ``camera_direction``), 'projection' (K, R, t, dist_coeffs,
    orig_size, as (B, 3, 3), (B, 3, 3), (B, 1, 3), (B, 5), int or (height, width)), or 'none'
    (vertices already in screen space: x in [-1, 1] across the width, y in [-1, 1] up the height,
    z the depth). image_size: int or (height, width); pixels are square: for look_at/look the
    viewing angle spans the shorter side. backend: 'auto' (Triton on CUDA tensors, the numba CPU
    backend or the PyTorch reference on CPU tensors), 'torch', 'triton' or 'numba'.

    Meshes: vertices (B, V, 3) and faces (B, F, 3) int (rows of -1 are padding), lists of per-mesh
    (V_i, 3) / (F_i, 3) tensors, or one unbatched mesh. Faces crossing the near plane are clipped
    (with perspective) instead of being drawn mirrored.
    """

    def __init__(self, image_size=256, anti_aliasing=True, background_color=(0, 0, 0), fill_back=True,
                 camera_mode="projection", K=None, R=None, t=None, dist_coeffs=None, orig_size=1024,
                 perspective=True, viewing_angle=30, camera_direction=(0, 0, 1), near=0.1, far=100,
                 light_intensity_ambient=0.5, light_intensity_directional=0.5,
                 light_color_ambient=(1, 1, 1), light_color_directional=(1, 1, 1),
                 light_direction=(0, 1, 0), backend="auto"):
        super().__init__()
        checks.image_size(image_size)
        self.image_size = image_size
        self.anti_aliasing = anti_aliasing
        self.background_color = background_color
        self.fill_back = fill_back
        self.camera_mode = checks.choice("camera_mode", camera_mode, CAMERA_MODES)
        self.K, self.R, self.t = K, R, t
        self.dist_coeffs = dist_coeffs
        self.orig_size = orig_size
        self.perspective = perspective
        self.viewing_angle = camera.viewing_angle(viewing_angle)
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

    # -- settings, checked once per call (they are plain attributes a user may have changed) ------
    def _options(self):
        size = checks.image_size(self.image_size)
        checks.near_far(self.near, self.far)
        checks.choice("backend", self.backend, backends.BACKENDS)
        return dict(image_size=size, anti_aliasing=bool(self.anti_aliasing), near=self.near, far=self.far,
                    backend=self.backend)

    # -- the path from mesh to screen ------------------------------------------------------------
    def _prepare(self, vertices, faces, textures=None, shader=None):
        vertices, faces, textures = mesh.batch(vertices, faces, textures)
        checks.same_device(vertices=vertices, faces=faces)
        B, V = vertices.shape[:2]
        if textures is not None:
            shader = as_shader(shader) if shader is not None else None
            builtin = shader is None or isinstance(shader, VertexColorShader)
            if torch.is_tensor(textures) and builtin:
                textures = checks.texture_like(textures, B, faces.shape[1], V)
                checks.same_device(vertices=vertices, textures=textures)
                if textures.dim() == 3:  # per-vertex colours -> per face-vertex (B, F, 3, C)
                    textures = mesh.gather(textures, faces)
            shader = shader or default_shader(textures, self.rasterizer_eps)
            textures = shader.check(textures, B, faces.shape[1])
            checks.same_device(vertices=vertices, **attribute_tensors(textures))
        if self.fill_back:
            faces, textures = mesh.fill_back(faces, textures, shader)
        return vertices, faces, textures, shader

    def transform(self, vertices, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """World-space vertices (B, V, 3) -> screen space (x, y in NDC, z depth) for the camera
        (points only: no clipping; the render methods clip faces at the near plane)."""
        vertices = checks.vertices(vertices)
        cam = self._camera(vertices, (K, R, t, dist_coeffs, orig_size))
        height, width = checks.image_size(self.image_size)
        return self._project(self._to_camera(vertices, cam), cam, height, width)

    def _camera(self, vertices, camera_args):
        """Validated camera parameters for this call."""
        mode = checks.choice("camera_mode", self.camera_mode, CAMERA_MODES)
        cam = {"mode": mode}
        if mode in ("look_at", "look"):
            cam["eye"] = checks.vector3("eye", self.eye, vertices, vertices.shape[0])
            if mode == "look":
                cam["direction"] = checks.vector3("camera_direction", self.camera_direction, vertices,
                                                  vertices.shape[0])
            if self.perspective:
                cam["angle"] = camera.viewing_angle(self.viewing_angle)
        elif mode == "projection":
            K, R, t, dist_coeffs, orig_size = camera_args
            K, R, t = (self.K if K is None else K), (self.R if R is None else R), (self.t if t is None else t)
            if K is None or R is None or t is None:
                raise ValueError("camera_mode='projection' needs K, R and t (pass them to the Renderer or "
                                 "to render), or use camera_mode='look_at'")
            cam["K"], cam["R"], cam["t"], cam["dist"] = camera.camera_matrices(
                vertices, K, R, t, self.dist_coeffs if dist_coeffs is None else dist_coeffs)
            cam["orig_size"] = camera.orig_size_pair(self.orig_size if orig_size is None else orig_size)
        return cam

    def _to_camera(self, points, cam):
        if cam["mode"] == "look_at":
            return camera.look_at_camera(points, cam["eye"], torch.zeros_like(cam["eye"]),
                                         checks.on_device((camera.UP,), cam["eye"]))
        if cam["mode"] == "look":
            return camera.look_at_camera(points, cam["eye"], cam["eye"] + cam["direction"],
                                         checks.on_device((camera.UP,), cam["eye"]))
        if cam["mode"] == "projection":
            return camera.to_camera(points, cam["R"], cam["t"])
        return points

    def _project(self, points, cam, height, width):
        if cam["mode"] == "projection":
            return camera.pinhole(points, cam["K"], cam["dist"], cam["orig_size"])
        if cam["mode"] in ("look_at", "look"):  # square pixels, perspective or orthographic
            if "angle" in cam:
                points = camera.divide(points, cam["angle"])
            return camera.fit_aspect(points, height, width)
        return points

    def _camera_faces(self, vertices, faces, camera_args):
        """(camera, camera-space faces (B, F, 3, 3) with padding rows made null, padding mask (B, F))."""
        cam = self._camera(vertices, camera_args)
        corners = mesh.gather(self._to_camera(vertices, cam), faces)
        pad = mesh.padding(faces)
        return cam, torch.where(pad[..., None, None], checks.on_device(clip._NULL, corners), corners), pad

    def _z_clip(self):
        """The depth of the clipping plane: near, or a small positive depth when near is 0."""
        return self.near if self.near > 0 else 1e-5

    def _screen_faces(self, corners, cam, clipped, height, width):
        """Screen-space faces (B, F', 3, 3) of camera-space ``corners``, clipped at the near plane when
        ``clipped``, and the map back to the mesh's faces (None when nothing was clipped)."""
        parent = None
        if clipped:
            corners, parent_face, matrix = clip.near_plane(corners, self._z_clip())
            parent = (parent_face, matrix)
        B, nf = corners.shape[:2]
        screen = self._project(corners.reshape(B, nf * 3, 3), cam, height, width).reshape(B, nf, 3, 3)
        return screen, parent

    def _render(self, vertices, faces, textures, camera_args, outputs, shader=None):
        options = self._options()
        height, width = options["image_size"]
        # geometry, rasterization and the blurred edge run in float32 whatever autocast says (the
        # shading too: every output is float32); every check of the call is read in one go
        with precision.float32(precision.device_of(vertices, faces)), checks.gathered() as pending:
            vertices, faces, textures, shader = self._prepare(vertices, faces, textures, shader)
            light, background = None, None
            if "rgb" in outputs:
                background = checks.background(self.background_color)
            if "rgb" in outputs and getattr(shader, "lit", False):
                light = lights.face_light(mesh.gather(vertices, faces), self.light_intensity_ambient,
                                          self.light_intensity_directional, self.light_color_ambient,
                                          self.light_color_directional, self.light_direction, check_faces=False)
            cam, corners, pad = self._camera_faces(vertices, faces, camera_args)
            perspective = "angle" in cam or cam["mode"] == "projection"  # only a perspective view clips
            (behind,) = pending.read(clip.behind(corners, self._z_clip(), ignore=pad) if perspective
                                     else corners.new_zeros((), dtype=torch.bool))
            screen, parent = self._screen_faces(corners, cam, behind, height, width)
            eps = self.rasterizer_eps if "rgb" in outputs else 1e-4
            return render_faces(screen, textures, shader=shader, eps=eps, background_color=background,
                                outputs=outputs, light=light, parent=parent, **options)

    # -- public methods --------------------------------------------------------------------------
    def render_silhouettes(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """Silhouettes (B, H, W) in [0, 1] of meshes vertices (B, V, 3), faces (B, F, 3) int."""
        return self._render(vertices, faces, None, (K, R, t, dist_coeffs, orig_size), ("alpha",))["alpha"]

    def render_depth(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """Depth maps (B, H, W): camera-space z of the nearest face, ``far`` where empty."""
        return self._render(vertices, faces, None, (K, R, t, dist_coeffs, orig_size), ("depth",))["depth"]

    def render(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None, orig_size=None,
               shader=None):
        """(rgb (B, C, H, W), depth (B, H, W), alpha (B, H, W)) of lit, textured meshes.

        textures: per-face cubes (B, F, T, T, T, C), per-vertex colours (B, V, C) (Gouraud shading),
        UV maps (:class:`tritonnmr.UVMap`, as ``load_obj(..., texture_format="uv")`` gives), or lists
        of these per mesh; ``shader`` plugs in your own (see :mod:`tritonnmr.shading`).
        """
        if textures is None:
            raise ValueError("textures is required for render(); use render_silhouettes for masks")
        out = self._render(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), ("rgb", "depth", "alpha"),
                           shader)
        return out["rgb"], out["depth"], out["alpha"]

    def render_rgb(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None,
                   orig_size=None, shader=None):
        """RGB images (B, C, H, W) only."""
        if textures is None:
            raise ValueError("textures is required for render_rgb()")
        return self._render(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), ("rgb",), shader)["rgb"]

    def forward(self, vertices, faces, textures=None, mode=None, K=None, R=None, t=None, dist_coeffs=None,
                orig_size=None):
        """mode None: (rgb, depth, alpha); 'rgb', 'silhouettes' or 'depth': that map alone."""
        checks.choice("mode", mode, _MODES)
        cam = dict(K=K, R=R, t=t, dist_coeffs=dist_coeffs, orig_size=orig_size)
        if mode == "silhouettes":
            return self.render_silhouettes(vertices, faces, **cam)
        if mode == "depth":
            return self.render_depth(vertices, faces, **cam)
        if mode == "rgb":
            return self.render_rgb(vertices, faces, textures, **cam)
        return self.render(vertices, faces, textures, **cam)
