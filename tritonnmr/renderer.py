"""The Renderer module: neural_renderer's constructor, attributes and methods, plus ``backend``.

One path from mesh to image (each step a small function elsewhere in the package):
meshes -> ``mesh.batch`` (lists / padded / unbatched to one padded batch, checked once) ->
``fill_back`` -> per-face light in world space (``lights``) -> camera space (``camera.make``: an
object per camera mode) -> face corners -> near-plane clipping (``clip``) -> projection to the
screen -> ``render.render_faces`` (fragments, shading x light, blurred-edge gradient, flip,
anti-aliasing).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

from . import backends, camera, checks, clip, defaults, gradients, lights, mesh, precision
from .render import render_faces
from .shading import VertexColorShader, as_shader, attribute_tensors, default_shader

CAMERA_MODES = camera.MODES
_MODES = (None, "rgb", "silhouettes", "depth")
ImageSize = Union[int, Tuple[int, int]]


class Renderer(nn.Module):
    """Differentiable mesh renderer (Kato et al. 2018), a drop-in for ``neural_renderer.Renderer``.

    Every argument is also an attribute that can be changed after construction (``renderer.eye =
    ...``, ``renderer.backend = "torch"``). camera_mode: 'look_at' (camera at ``eye`` looking at the
    origin), 'look' (at ``eye`` along ``camera_direction``), 'projection' (K, R, t, dist_coeffs,
    orig_size, as (B, 3, 3), (B, 3, 3), (B, 1, 3), (B, 5), int or (height, width)), or 'none'
    (vertices already in screen space: x in [-1, 1] across the width, y in [-1, 1] up the height,
    z the depth). image_size: int or (height, width); pixels are square: for look_at/look the
    viewing angle spans the shorter side. backend: 'auto' (Triton on CUDA tensors, the numba CPU
    backend or the PyTorch reference on CPU tensors), 'torch', 'triton' or 'numba'. gradient: the
    estimator of the rgb and alpha gradients, 'blurred_edge' (the paper's, the default) or 'soft'
    (SoftRas's, with ``sigma`` and ``gamma``; see :mod:`tritonnmr.gradients`).

    Meshes: vertices (B, V, 3) and faces (B, F, 3) int (rows of -1 are padding), lists of per-mesh
    (V_i, 3) / (F_i, 3) tensors, or one unbatched mesh. Faces crossing the near plane are clipped
    (with perspective) instead of being drawn mirrored. Under ``torch.autocast`` everything runs,
    and every output comes back, in float32.
    """

    def __init__(self, image_size: ImageSize = defaults.IMAGE_SIZE, anti_aliasing: bool = defaults.ANTI_ALIASING,
                 background_color: Sequence[float] = defaults.BACKGROUND_COLOR, fill_back: bool = True,
                 camera_mode: str = "projection", K=None, R=None, t=None, dist_coeffs=None,
                 orig_size: ImageSize = defaults.ORIG_SIZE, perspective: bool = True,
                 viewing_angle: float = defaults.VIEWING_ANGLE, camera_direction: Sequence[float] = defaults.CAMERA_DIRECTION,
                 near: float = defaults.NEAR, far: float = defaults.FAR,
                 light_intensity_ambient: float = defaults.LIGHT_INTENSITY_AMBIENT,
                 light_intensity_directional: float = defaults.LIGHT_INTENSITY_DIRECTIONAL,
                 light_color_ambient: Sequence[float] = defaults.LIGHT_COLOR,
                 light_color_directional: Sequence[float] = defaults.LIGHT_COLOR,
                 light_direction: Sequence[float] = defaults.LIGHT_DIRECTION, backend: str = "auto",
                 gradient: str = "blurred_edge", sigma: float = defaults.SOFT_SIGMA, gamma: float = defaults.SOFT_GAMMA):
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
        self.rasterizer_eps = defaults.RGB_EPS
        self.backend = checks.choice("backend", backend, backends.BACKENDS)
        gradients.options(gradient, defaults.RGB_EPS, sigma, gamma)
        self.gradient, self.sigma, self.gamma = gradient, sigma, gamma

    # -- settings, checked once per call (they are plain attributes a user may have changed) ------
    def _options(self, outputs):
        size = checks.image_size(self.image_size)
        checks.near_far(self.near, self.far)
        checks.choice("backend", self.backend, backends.BACKENDS)
        eps = self.rasterizer_eps if "rgb" in outputs else defaults.SILHOUETTE_EPS
        return dict(image_size=size, anti_aliasing=bool(self.anti_aliasing), near=self.near, far=self.far,
                    backend=self.backend, gradient=self.gradient,
                    options=gradients.options(self.gradient, eps, self.sigma, self.gamma))

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
                    textures = mesh.gather(textures, faces, self.backend)
            shader = shader or default_shader(textures, self.rasterizer_eps)
            textures = shader.check(textures, B, faces.shape[1])
            checks.same_device(vertices=vertices, **attribute_tensors(textures))
        if self.fill_back:
            faces, textures = mesh.fill_back(faces, textures, shader, self.backend)
        return vertices, faces, textures, shader

    def transform(self, vertices: torch.Tensor, K=None, R=None, t=None, dist_coeffs=None,
                  orig_size=None) -> torch.Tensor:
        """World-space vertices (B, V, 3) -> screen space (x, y in NDC, z depth) for the camera
        (points only: no clipping; the render methods clip faces at the near plane)."""
        vertices = checks.vertices(vertices)
        cam = self._camera(vertices, (K, R, t, dist_coeffs, orig_size))
        height, width = checks.image_size(self.image_size)
        return cam.project(cam.to_view(vertices), height, width)

    def _camera(self, vertices, camera_args):
        """This call's checked camera (camera.make), from the settings and the render's own K, R, t,
        dist_coeffs, orig_size (which override the Renderer's)."""
        K, R, t, dist_coeffs, orig_size = (own if own is not None else mine for own, mine in
                                           zip(camera_args, (self.K, self.R, self.t, self.dist_coeffs, self.orig_size)))
        return camera.make(self.camera_mode, vertices, eye=self.eye, direction=self.camera_direction,
                           perspective=self.perspective, angle=self.viewing_angle, K=K, R=R, t=t,
                           dist_coeffs=dist_coeffs, orig_size=orig_size)

    def _z_clip(self):
        """The depth of the clipping plane: near, or defaults.MIN_CLIP_DEPTH when near is 0."""
        return self.near if self.near > 0 else defaults.MIN_CLIP_DEPTH

    def _clipped_faces(self, corners, cam, height, width):
        """Screen-space faces (B, F', 3, 3) of camera-space ``corners`` clipped at the near plane, and
        the map back to the mesh's faces."""
        corners, parent_face, matrix = clip.near_plane(corners, self._z_clip())
        B, nf = corners.shape[:2]
        screen = cam.project(corners.reshape(B, nf * 3, 3), height, width).reshape(B, nf, 3, 3)
        return screen, (parent_face, matrix)

    def _render(self, vertices, faces, textures, camera_args, outputs, shader=None):
        options = self._options(outputs)
        height, width = options["image_size"]
        # geometry, rasterization and the blurred edge run in float32 whatever autocast says (the
        # shading too: every output is float32); every check of the call is read in one go
        with precision.float32(precision.device_of(vertices, faces)), checks.gathered() as pending:
            vertices, faces, textures, shader = self._prepare(vertices, faces, textures, shader)
            light, background = None, None
            if "rgb" in outputs:
                background = checks.background(self.background_color)
            if "rgb" in outputs and getattr(shader, "lit", False):
                light = lights.face_light(mesh.gather(vertices, faces, self.backend), self.light_intensity_ambient,
                                          self.light_intensity_directional, self.light_color_ambient,
                                          self.light_color_directional, self.light_direction, check_faces=False,
                                          backend=self.backend)
            cam = self._camera(vertices, camera_args)
            view = cam.to_view(vertices)
            pad = mesh.padding(faces)
            depths = mesh.gather(view.detach()[..., 2:], faces, self.backend)[..., 0]
            (behind,) = pending.read(clip.any_behind(depths, self._z_clip(), ignore=pad) if cam.clips
                                     else pad.new_zeros(()))
            if behind:
                corners = torch.where(pad[..., None, None], checks.on_device(clip._NULL, view),
                                      mesh.gather(view, faces, self.backend))
                screen, parent = self._clipped_faces(corners, cam, height, width)
            else:  # no face to clip: project the vertices, then gather them (padding rows: zeros, culled);
                # a vertex nearer than the plane belongs to no face: it is moved to z = 1, so that its
                # projection (a division by its depth) cannot make a NaN gradient
                if cam.clips:
                    view = torch.where(view[..., 2:] < self._z_clip(), checks.on_device(clip._NULL, view), view)
                screen, parent = mesh.gather(cam.project(view, height, width), faces, self.backend), None
            return render_faces(screen, textures, shader=shader, background_color=background, outputs=outputs,
                                light=light, parent=parent, indices=faces, **options)

    # -- public methods --------------------------------------------------------------------------
    def render_silhouettes(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None,
                           orig_size=None) -> torch.Tensor:
        """Silhouettes (B, H, W) in [0, 1] of meshes vertices (B, V, 3), faces (B, F, 3) int."""
        return self._render(vertices, faces, None, (K, R, t, dist_coeffs, orig_size), ("alpha",))["alpha"]

    def render_depth(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None) -> torch.Tensor:
        """Depth maps (B, H, W): camera-space z of the nearest face, ``far`` where empty."""
        return self._render(vertices, faces, None, (K, R, t, dist_coeffs, orig_size), ("depth",))["depth"]

    def render(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None, orig_size=None,
               shader=None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
                   orig_size=None, shader=None) -> torch.Tensor:
        """RGB images (B, C, H, W) only."""
        if textures is None:
            raise ValueError("textures is required for render_rgb()")
        return self._render(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), ("rgb",), shader)["rgb"]

    def forward(self, vertices, faces, textures=None, mode: Optional[str] = None, K=None, R=None, t=None,
                dist_coeffs=None, orig_size=None):
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
