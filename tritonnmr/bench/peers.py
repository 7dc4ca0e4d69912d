"""Peer renderers for the benchmark (optional: none is a dependency of tritonnmr).

On the CPU: Mitsuba 3 (below) and PyTorch3D (``pytorch3d``, its CPU build from its repository, see
benchmarks/README.md); on a GPU: PyTorch3D and nvdiffrast's rasterizer with its ``antialias`` op
(``nvdiffrast``), each timed on the benchmark's own teapot and camera. PyTorch3D's forward rows are its
hard rasterizer (tritonnmr's forward is the hard z-buffer; the silhouettes are equal pixel for pixel),
its forward + backward rows its soft silhouette (the hard one has no gradient). Each peer says in one
line why it cannot run where it cannot.

Mitsuba 3 (``pip install mitsuba drjit``; its ``llvm_ad_rgb`` variant needs a system LLVM, e.g.
``apt-get install libllvm19`` and ``DRJIT_LIBLLVM_PATH=/usr/lib/x86_64-linux-gnu/libLLVM-19.so``):
the benchmark's teapot and camera as a black mesh in front of a constant white environment, rendered
with the ``direct_projective`` integrator (projective sampling of visibility discontinuities, the
physically based way to differentiate a silhouette), and the gradient of the summed image with
respect to the vertex positions. The image is 1 - coverage, so this is the silhouette gradient.
"""
import math
import os
import tempfile

DEFAULT_LLVM = "/usr/lib/x86_64-linux-gnu/libLLVM-19.so"


def mitsuba_unavailable():
    """None when Mitsuba's ``llvm_ad_rgb`` variant can run here, else a one-line reason."""
    if "DRJIT_LIBLLVM_PATH" not in os.environ and os.path.exists(DEFAULT_LLVM):
        os.environ["DRJIT_LIBLLVM_PATH"] = DEFAULT_LLVM
    try:
        import mitsuba as mi
    except ImportError:
        return "Mitsuba 3 is not installed (pip install mitsuba drjit; see benchmarks/README.md)"
    try:
        mi.set_variant("llvm_ad_rgb")
    except Exception as error:  # a missing or unusable LLVM: Dr.Jit says why
        return f"Mitsuba's llvm_ad_rgb variant cannot start ({str(error).splitlines()[0]}); set DRJIT_LIBLLVM_PATH"
    return None


def _write_obj(path, vertices, faces):
    with open(path, "w") as fh:
        fh.writelines(f"v {x:.7g} {y:.7g} {z:.7g}\n" for x, y, z in vertices.tolist())
        fh.writelines(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces.tolist())


def mitsuba_silhouette_step(vertices, faces, image_size, spp, eye, passes="forward+backward", threads=1):
    """A function that renders the silhouette once with Mitsuba (and back-propagates to the vertices
    when ``passes`` is "forward+backward"); returns (step, scene parameters).

    vertices (V, 3) float and faces (F, 3) int64 torch tensors (one mesh), image_size in pixels
    (square), spp samples per pixel, eye (3,) the look_at camera position (looking at the origin,
    up +y, 60 degree field of view: tritonnmr's default 30 degree half-angle). x is mirrored so that
    the picture matches tritonnmr's (Mitsuba's camera x axis points left). ``threads``: Dr.Jit's
    thread count (1 for the one-thread CPU comparison; None keeps its default).
    """
    reason = mitsuba_unavailable()
    if reason:
        raise RuntimeError(reason)
    import drjit as dr
    import mitsuba as mi
    if threads is not None:
        dr.set_thread_count(threads)
    mirrored = vertices.detach().cpu().clone()
    mirrored[:, 0] = -mirrored[:, 0]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mesh.obj")
        _write_obj(path, mirrored, faces.cpu())
        scene = mi.load_dict({
            "type": "scene",
            # no indirect visibility (shadows, reflections) to differentiate here: Mitsuba itself
            # recommends sppi = 0 then (its indirect-silhouette search costs seconds and finds nothing)
            "integrator": {"type": "direct_projective", "sppi": 0},
            "sensor": {
                "type": "perspective", "fov": 2 * 30.0, "fov_axis": "x",
                "to_world": mi.ScalarTransform4f().look_at(origin=[-float(eye[0]), float(eye[1]), float(eye[2])],
                                                           target=[0, 0, 0], up=[0, 1, 0]),
                "film": {"type": "hdrfilm", "width": image_size, "height": image_size,
                         "rfilter": {"type": "box"}, "pixel_format": "rgb", "sample_border": True},
                "sampler": {"type": "independent", "sample_count": spp},
            },
            "light": {"type": "constant", "radiance": {"type": "rgb", "value": 1.0}},
            "mesh": {"type": "obj", "filename": path, "face_normals": True,
                     "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": 0.0}}},
        })
    params = mi.traverse(scene)
    key = "mesh.vertex_positions"
    backward = passes == "forward+backward"
    seed = [0]

    def step():
        seed[0] += 1
        if backward:
            dr.enable_grad(params[key])
            params.update()
            image = mi.render(scene, params, spp=spp, seed=seed[0])
            dr.backward(dr.sum(image, axis=None) / 3)
            grad = dr.grad(params[key])
            dr.eval(grad)
            dr.disable_grad(params[key])
            return image, grad
        image = mi.render(scene, spp=spp, seed=seed[0])
        dr.eval(image)
        return image, None
    return step, params



# ----------------------------------------------------------------------------------------------
# GPU peers: PyTorch3D (soft silhouette) and nvdiffrast (rasterize + antialias)
# ----------------------------------------------------------------------------------------------
SOFT_SIGMA = 1e-4       # PyTorch3D's soft silhouette: the sigma and gamma its examples use,
SOFT_GAMMA = 1e-4
SOFT_FACES_PER_PIXEL = 50  # and 50 faces kept per pixel
GPU_PEERS = ("pytorch3d", "nvdiffrast")


def gpu_peer_unavailable(name, device):
    """None when peer ``name`` ("pytorch3d", "nvdiffrast") can run on ``device``, else a one-line reason:
    PyTorch3D runs on either (its CPU build: ``FORCE_CUDA=0``), nvdiffrast on CUDA only."""
    import torch
    if name == "nvdiffrast" and torch.device(device).type != "cuda":
        return "nvdiffrast runs on CUDA devices only"
    try:
        if name == "pytorch3d":
            import pytorch3d.renderer  # noqa: F401
        else:
            import nvdiffrast.torch  # noqa: F401
    except ImportError as error:
        return f"{name} is not installed ({error}; see benchmarks/README.md)"
    return None


def _camera_space(vertices, eye):
    """tritonnmr's look_at camera space (x right, y up, z depth) of world vertices (1, V, 3)."""
    from ..camera import look_at
    return look_at(vertices, eye)


def _pytorch3d_view(vertices, eye):
    """PyTorch3D's view space of world vertices (1, V, 3) seen from tritonnmr's look_at camera at ``eye``:
    tritonnmr's camera space (x right, y up, z depth) with x negated, as PyTorch3D's camera space is
    right-handed (+x to the left, +y up, +z into the picture); (V, 3)."""
    import torch
    return _camera_space(vertices, eye)[0] * torch.tensor([-1.0, 1.0, 1.0], device=vertices.device)


def _pytorch3d_rasterizer(image_size, angle, radius, faces_per_pixel, device):
    """PyTorch3D's MeshRasterizer with the identity camera (the vertices are given in its view space),
    a field of view of 2 x ``angle`` (tritonnmr's is the half-angle) and tritonnmr's near and far."""
    import torch
    from pytorch3d.renderer import FoVPerspectiveCameras, MeshRasterizer, RasterizationSettings
    from .. import defaults
    cameras = FoVPerspectiveCameras(device=device, fov=2 * angle, znear=defaults.NEAR, zfar=defaults.FAR,
                                    R=torch.eye(3, device=device)[None], T=torch.zeros(1, 3, device=device))
    settings = RasterizationSettings(image_size=image_size, blur_radius=radius, faces_per_pixel=faces_per_pixel)
    return MeshRasterizer(cameras=cameras, raster_settings=settings)


def pytorch3d_hard_step(vertices, faces, image_size, eye, angle=30.0):
    """A function running PyTorch3D's hard rasterizer (blur radius 0, the nearest face per pixel) on one
    mesh (vertices (1, V, 3) world space, faces (F, 3)) from tritonnmr's look_at camera at ``eye``, and
    returning its silhouette (1, S, S) float (1 where a face covers the pixel centre; row 0 the top),
    to compare with tritonnmr's forward (anti_aliasing=False: the same pixels)."""
    from pytorch3d.structures import Meshes
    rasterizer = _pytorch3d_rasterizer(image_size, angle, 0.0, 1, vertices.device)
    view = _pytorch3d_view(vertices.detach(), eye)

    def step():
        return (rasterizer(Meshes(verts=[view], faces=[faces])).pix_to_face[..., 0] >= 0).float()
    return step


def pytorch3d_silhouette_step(vertices, faces, image_size, eye, passes="forward+backward", angle=30.0):
    """A function rendering PyTorch3D's soft silhouette of one mesh (vertices (1, V, 3) world space,
    faces (F, 3)) from tritonnmr's look_at camera at ``eye`` (SOFT_SIGMA, SOFT_GAMMA, SOFT_FACES_PER_PIXEL
    faces kept per pixel) and back-propagating the summed silhouette to the vertices when ``passes`` is
    "forward+backward"; the step returns the silhouette (1, S, S)."""
    from pytorch3d.renderer import BlendParams, MeshRenderer, SoftSilhouetteShader
    from pytorch3d.structures import Meshes
    radius = math.log(1.0 / 1e-4 - 1.0) * SOFT_SIGMA  # where the sigmoid of the squared distance is 1e-4
    renderer = MeshRenderer(_pytorch3d_rasterizer(image_size, angle, radius, SOFT_FACES_PER_PIXEL, vertices.device),
                            SoftSilhouetteShader(blend_params=BlendParams(sigma=SOFT_SIGMA, gamma=SOFT_GAMMA)))
    backward = passes == "forward+backward"
    leaf = vertices.detach().clone().requires_grad_(backward)

    def step():
        alpha = renderer(Meshes(verts=[_pytorch3d_view(leaf, eye)], faces=[faces]))[..., 3]
        if backward:
            alpha.sum().backward()
            leaf.grad = None
        return alpha
    return step


def nvdiffrast_silhouette_step(vertices, faces, image_size, eye, passes="forward+backward", angle=30.0,
                               near=0.1, far=100.0):
    """A function rendering nvdiffrast's antialiased silhouette (rasterize, then ``antialias``) of one
    mesh from tritonnmr's look_at camera and back-propagating to the vertices. Clip space from
    tritonnmr's screen space: (x w, y w, z_ndc w, w) with w the depth."""
    import torch
    import nvdiffrast.torch as dr
    device = vertices.device
    context = dr.RasterizeCudaContext(device=device)
    triangles = faces.to(device=device, dtype=torch.int32).contiguous()
    width = math.tan(math.radians(angle))
    backward = passes == "forward+backward"
    leaf = vertices.detach().clone().requires_grad_(backward)

    def step():
        view = _camera_space(leaf, eye)[0]
        w = view[:, 2:3]
        z_ndc = (far + near) / (far - near) - 2 * far * near / ((far - near) * w)
        clip = torch.cat([view[:, :1] / width, view[:, 1:2] / width, z_ndc * w, w], 1)[None].contiguous()
        raster, _ = dr.rasterize(context, clip, triangles, resolution=[image_size, image_size])
        covered = (raster[..., 3:] > 0).float()
        alpha = dr.antialias(covered, raster, clip, triangles)
        if backward:
            alpha.sum().backward()
            leaf.grad = None
        return alpha
    return step
