"""The benchmark's cases: what is rendered, by which backend, and the function that runs one.

A case renders a mesh (the teapot, or a generated UV sphere with about N faces) with a look_at camera,
anti-aliasing on, for one backend, forward only or forward + backward, as silhouettes or textured
RGB (stage "render"); or runs the forward z-buffer alone (stage "z-buffer"), where the Triton
backend's binned z-buffer is compared with the face-parallel and pixel-loop strategies
(``zbuffers``). Peers (Mitsuba 3 on the CPU; PyTorch3D and nvdiffrast on a GPU) render the same
teapot silhouette from the same camera (``peers``).
"""
import math
from dataclasses import dataclass

import torch

from .. import backends, defaults
from ..camera import DEFAULT_DISTANCE, get_points_from_angles
from ..io import data_path, load_obj
from ..mesh import fill_back, vertices_to_faces
from ..defaults import FAR as DEFAULT_FAR, NEAR as DEFAULT_NEAR
from ..renderer import Renderer
from . import peers, zbuffers

CPU_PEERS = ("mitsuba-1spp", "mitsuba-4spp")  # Mitsuba 3, direct_projective (peers.py)
GPU_PEERS = ("pytorch3d", "nvdiffrast")  # PyTorch3D (hard forward, soft silhouette; on the CPU too), nvdiffrast
PEERS = CPU_PEERS + GPU_PEERS
EYE = (DEFAULT_DISTANCE, 30, 45)  # the benchmark camera: distance, elevation, azimuth


@dataclass(frozen=True)
class Case:
    mesh: str          # "teapot" or "sphere"
    faces: int         # target face count (spheres)
    image_size: int
    batch: int
    mode: str          # "silhouettes" | "rgb"
    backend: str       # "torch" | "triton" | "numba" | PEERS
    passes: str        # "forward" | "forward+backward"
    raster: str = "binned"  # the z-buffer stage's strategy: zbuffers.STRATEGIES
    stage: str = "render"   # "render" (the whole Renderer) | "z-buffer" (rasterize_fragments alone)
    gradient: str = "blurred_edge"  # the estimator (tritonnmr.gradients.ESTIMATORS)
    sigma: float = defaults.SOFT_SIGMA  # gradient="soft": the sigmoid's sharpness (gamma: the default)


SOFT_SIGMAS = (1e-5, 1e-4, 1e-3)  # the soft rows' sigmas: about 0.1, 0.4 and 1.2 pixels' reach at 256^2


def uv_sphere(num_faces):
    """A closed UV sphere with about ``num_faces`` triangles: vertices (V, 3), faces (F, 3) int64."""
    n = max(3, int(round(math.sqrt(num_faces / 2))))  # rings = segments = n -> 2 n (n - 1) faces
    lat = torch.linspace(0, math.pi, n + 1)[1:-1]
    lon = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    ring = torch.stack([torch.sin(la) * torch.cos(lo), torch.cos(la), torch.sin(la) * torch.sin(lo)], -1)
    vertices = torch.cat([torch.tensor([[0.0, 1, 0]]), ring.reshape(-1, 3), torch.tensor([[0.0, -1, 0]])])
    idx = torch.arange(n)
    nxt = (idx + 1) % n
    faces = [torch.stack([torch.zeros(n, dtype=torch.long), 1 + nxt, 1 + idx], 1)]  # top cap
    for r in range(n - 2):
        a, b = 1 + r * n + idx, 1 + r * n + nxt
        c, d = a + n, b + n
        faces += [torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)]
    last = len(vertices) - 1
    base = 1 + (n - 2) * n
    faces.append(torch.stack([torch.full((n,), last), base + idx, base + nxt], 1))  # bottom cap
    return vertices, torch.cat(faces)


def case_mesh(case, device):
    """(vertices (B, V, 3), faces (B, F, 3)) of a benchmark case's mesh, repeated case.batch times, on ``device``."""
    if case.mesh == "teapot":
        v, f = load_obj(data_path("teapot.obj"), device=device)
    else:
        v, f = uv_sphere(case.faces)
        v = v * 0.9
    v = v[None].repeat(case.batch, 1, 1).to(device)
    f = f[None].repeat(case.batch, 1, 1).to(device)
    return v, f


def make_step(case, device):
    """A function that runs the case once (and the number of faces it renders)."""
    v, f = case_mesh(case, device)
    backend = "torch" if case.backend in PEERS else case.backend
    renderer = Renderer(image_size=case.image_size, camera_mode="look_at", backend=backend, gradient=case.gradient,
                        sigma=case.sigma)
    renderer.eye = get_points_from_angles(*EYE)
    tex = torch.rand(case.batch, f.shape[1], 2, 2, 2, 3, device=device)
    backward = case.passes == "forward+backward"
    v = v.requires_grad_(backward)
    if case.backend == "pytorch3d" and case.passes == "forward":  # its hard rasterizer: the same pixels
        return peers.pytorch3d_hard_step(v[:1], f[0], case.image_size, renderer.eye), f.shape[1]
    if case.backend in GPU_PEERS:  # the same teapot and camera, silhouette gradient to the vertices
        make = peers.pytorch3d_silhouette_step if case.backend == "pytorch3d" else peers.nvdiffrast_silhouette_step
        return make(v[:1], f[0], case.image_size, renderer.eye, case.passes), f.shape[1]
    if case.backend in CPU_PEERS:
        spp = int(case.backend.split("-")[1][:-len("spp")])
        step, _ = peers.mitsuba_silhouette_step(v[0], f[0], case.image_size, spp, renderer.eye, case.passes,
                                                threads=torch.get_num_threads())
        return step, f.shape[1]
    if case.stage == "z-buffer":  # forward only: the z-buffer of the anti-aliased (2x) image alone
        screen = vertices_to_faces(renderer.transform(v), fill_back(f)[0]).detach().contiguous()
        size = case.image_size * 2
        if case.backend == "triton":
            return (lambda: zbuffers.rasterize_fragments(screen, size, size, DEFAULT_NEAR, DEFAULT_FAR,
                                                         case.raster)), f.shape[1]
        op = backends.op("rasterize_fragments", case.backend, device)
        return (lambda: op(screen, size, size, DEFAULT_NEAR, DEFAULT_FAR)), f.shape[1]

    def step():
        if case.mode == "silhouettes":
            out = renderer(v, f, mode="silhouettes")
        else:
            out = renderer(v, f, tex)[0]
        if backward:
            out.sum().backward()
            v.grad = None
        return out
    return step, f.shape[1]


def cpu_backends():
    """The CPU backends to time: the torch reference, and the numba backend when numba imports."""
    return ("torch", "numba") if backends.available("numba") else ("torch",)


def peer_cases(cases, device=torch.device("cpu")):
    """(the peers' cases beside each batch-1 teapot silhouette case of ``cases``, one-line notices of
    the peers that cannot run here). On the CPU: Mitsuba 3 at 1 and 4 spp and PyTorch3D; on a GPU:
    PyTorch3D and nvdiffrast."""
    keys = sorted({(c.image_size, c.passes) for c in cases if c.stage == "render"
                   and (c.mesh, c.mode, c.batch, c.backend) == ("teapot", "silhouettes", 1, "torch")})
    available, notices = [], []
    if device.type != "cuda":
        reason = peers.mitsuba_unavailable()
        available, notices = ([], [reason]) if reason else (list(CPU_PEERS), [])
    for name in GPU_PEERS if device.type == "cuda" else ("pytorch3d",):
        reason = peers.gpu_peer_unavailable(name, device)
        if reason:
            notices.append(reason)
        else:
            available.append(name)
    return [Case("teapot", 2464, s, 1, "silhouettes", peer, p) for s, p in keys for peer in available], notices


def _zbuffer_cases():
    """The forward z-buffer strategies side by side (GPU only): each against the torch reference's."""
    cases = []
    for mesh, n, sizes, strategies in (("teapot", 2464, (64, 256, 1024), zbuffers.STRATEGIES),
                                       ("sphere", 10_000, (256,), zbuffers.STRATEGIES),
                                       ("sphere", 100_000, (256, 1024), ("binned", "face")),
                                       ("sphere", 1_000_000, (256, 1024), ("binned", "face"))):
        for s in sizes:
            loops = [r for r in strategies if r != "pixel-loop" or s <= 256]  # pixels x faces: small only
            cases += [Case(mesh, n, s, 1, "silhouettes", "triton", "forward", r, "z-buffer") for r in loops]
            if n <= 100_000:
                cases.append(Case(mesh, n, s, 1, "silhouettes", "torch", "forward", "binned", "z-buffer"))
    return cases


def grid(quick, device):
    """The cases of a run: ``quick`` is a few seconds on a CPU; the full grid is meant for a GPU."""
    names = cpu_backends() if device.type == "cpu" else ("torch", "triton")
    cases = []
    passes = ("forward", "forward+backward")
    if quick:
        for s in (64, 128, 256):
            cases += [Case("teapot", 2464, s, 1, m, b, p) for b in names for m in ("silhouettes", "rgb") for p in passes]
        cases += [Case("sphere", 10000, 128, 1, "silhouettes", b, p) for b in names for p in passes]
        cases += [Case("teapot", 2464, 128, 8, "silhouettes", b, p) for b in names for p in passes]
        cases += [Case("teapot", 2464, 64, 1, "silhouettes", b, "forward+backward", gradient=g)
                  for g in ("soft", "analytic") for b in names]
        return cases
    for s in (64, 128, 256, 512, 1024):
        cases += [Case("teapot", 2464, s, 1, m, b, p) for b in names for m in ("silhouettes", "rgb") for p in passes]
    for n in (10_000, 100_000, 1_000_000):
        for b in names:
            if b == "torch" and n > 100_000 and device.type == "cpu":
                continue
            cases += [Case("sphere", n, 256, 1, "silhouettes", b, p) for p in passes]
    cases.append(Case("sphere", 1_000_000, 1024, 1, "silhouettes", "triton", "forward+backward"))
    for batch in (1, 8, 32):
        cases += [Case("teapot", 2464, 256, batch, m, b, p) for b in names for m in ("silhouettes", "rgb")
                  for p in passes]
    if device.type == "cuda":
        cases += _zbuffer_cases()
        cases += [Case(mesh, n, s, 1, "silhouettes", b, "forward+backward", gradient="soft", sigma=sigma)
                  for mesh, n in (("teapot", 2464), ("sphere", 100_000)) for s in (256, 1024) for b in names
                  for sigma in SOFT_SIGMAS if b != "torch" or (s == 256 and n < 100_000)]
        cases += [Case(mesh, n, s, 1, m, b, "forward+backward", gradient="analytic")
                  for mesh, n in (("teapot", 2464), ("sphere", 100_000)) for s in (256, 1024)
                  for m in ("silhouettes", "rgb") for b in names if b != "torch" or (s == 256 and n < 100_000)]
    else:
        cases += [Case("teapot", 2464, s, 1, m, b, "forward+backward", gradient="soft", sigma=sigma)
                  for s in (64, 256) for m in ("silhouettes", "rgb") for b in names for sigma in SOFT_SIGMAS
                  if b != "torch" or s == 64]
        cases += [Case("teapot", 2464, s, 1, m, b, "forward+backward", gradient="analytic")
                  for s in (64, 256) for m in ("silhouettes", "rgb") for b in names if b != "torch" or s == 64]
    return cases


def select_gradient(cases, gradient):
    """The cases of estimator ``gradient`` ("all": every case)."""
    return [c for c in cases if gradient == "all" or c.gradient == gradient]


def select_raster(cases, raster):
    """The cases whose triton z-buffer rows use strategy ``raster`` ("all": every case); every other
    row stays."""
    return [c for c in cases if raster == "all" or c.stage != "z-buffer" or c.backend != "triton" or c.raster == raster]
