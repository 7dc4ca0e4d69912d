"""Benchmark cases and their runner, shared by ``tritonnmr bench`` and the pytest-benchmark suites.

A case renders a mesh (the teapot, or a generated UV sphere with about N faces) with a look_at
camera, anti-aliasing on, for one backend, forward only or forward + backward, as silhouettes or
textured RGB. Times are medians of several runs (CUDA-synchronised wall time, and process CPU time);
speed-ups over the torch reference compare CPU time on the CPU, wall time on a GPU; memory is the
peak CUDA allocation (not reported on the CPU, where the resident set says little about one render).
"""
import json
import math
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass

import torch

import tritonnmr as nr


CPU_PEERS = ("mitsuba-1spp", "mitsuba-4spp")  # Mitsuba 3, direct_projective (tritonnmr/peers.py)
GPU_PEERS = ("pytorch3d", "nvdiffrast")  # PyTorch3D's soft silhouette, nvdiffrast's antialias (peers.py)
PEERS = CPU_PEERS + GPU_PEERS


@dataclass(frozen=True)
class Case:
    mesh: str          # "teapot" or "sphere"
    faces: int         # target face count (spheres)
    image_size: int
    batch: int
    mode: str          # "silhouettes" | "rgb"
    backend: str       # "torch" | "triton" | "numba" | PEERS
    passes: str        # "forward" | "forward+backward"
    raster: str = "binned"  # triton's forward z-buffer: "binned" | "face" | "pixel-loop" (kernels.RASTER_STRATEGIES)


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
        v, f = nr.load_obj(nr.data_path("teapot.obj"), device=device)
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
    renderer = nr.Renderer(image_size=case.image_size, camera_mode="look_at", backend=backend)
    renderer.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
    tex = torch.rand(case.batch, f.shape[1], 2, 2, 2, 3, device=device)
    backward = case.passes == "forward+backward"
    v = v.requires_grad_(backward)
    if case.backend in GPU_PEERS:  # the same teapot and camera, silhouette gradient to the vertices
        from tritonnmr import peers
        make = peers.pytorch3d_silhouette_step if case.backend == "pytorch3d" else peers.nvdiffrast_silhouette_step
        return make(v[:1], f[0], case.image_size, renderer.eye, case.passes), f.shape[1]
    if case.backend in CPU_PEERS:
        from tritonnmr import peers
        spp = int(case.backend.split("-")[1][:-len("spp")])
        step, _ = peers.mitsuba_silhouette_step(v[0], f[0], case.image_size, spp, renderer.eye, case.passes,
                                                threads=torch.get_num_threads())
        return step, f.shape[1]
    if case.backend == "triton" and case.raster == "pixel-loop":  # forward only: the z-buffer alone
        from tritonnmr import kernels
        screen = nr.vertices_to_faces(renderer.transform(v), nr.fill_back(f)[0]).detach().contiguous()
        size = case.image_size * 2
        return (lambda: kernels.rasterize_fragments_with("pixel-loop", screen, size, size, 0.1, 100.0)), f.shape[1]

    def step():
        if case.mode == "silhouettes":
            out = renderer(v, f, mode="silhouettes")
        else:
            out = renderer(v, f, tex)[0]
        if backward:
            out.sum().backward()
            v.grad = None
        return out
    if case.backend == "triton":  # each step runs with the case's forward strategy, then puts the old one back
        from tritonnmr import kernels
        plain = step

        def step():
            with kernels.raster_strategy(case.raster):
                return plain()
    return step, f.shape[1]


class _PeakRSS:
    """Samples the process's resident set size in a thread; ``peak`` is the growth over the start."""

    def __enter__(self):
        self.base = self.peak_rss = self._rss()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop:
            self.peak_rss = max(self.peak_rss, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()
        self.peak = self.peak_rss - self.base


def run_case(case, device, repeats=5, warmup=1):
    """{"median_ms", "ms_per_1k_faces", "peak_mb", ...} for one case."""
    step, num_faces = make_step(case, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times, cpu_times = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append((time.perf_counter() - t) * 1000)
        cpu_times.append((time.process_time() - c) * 1000)
    # peak memory where it can be measured exactly (CUDA's allocator); a CPU process's resident set
    # grows and shrinks with the allocator's caching and says little about one render
    peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20 if device.type == "cuda" else None
    median = statistics.median(times)
    return dict(asdict(case), faces=num_faces, median_ms=median, ms_per_1k_faces=median / (num_faces / 1000),
                peak_mb=peak, repeats=repeats, cpu_ms=statistics.median(cpu_times), device_type=device.type)


def cpu_backends():
    """The CPU backends to time: the torch reference, and the numba backend when numba imports."""
    from tritonnmr import backends
    return ("torch", "numba") if backends.available("numba") else ("torch",)


def peer_cases(cases, device=torch.device("cpu")):
    """(the peers' cases beside each batch-1 teapot silhouette case of ``cases``, one-line notices of
    the peers that cannot run here). On the CPU: Mitsuba 3 at 1 and 4 spp; on a GPU: PyTorch3D and
    nvdiffrast."""
    from tritonnmr import peers
    keys = sorted({(c.image_size, c.passes) for c in cases
                   if (c.mesh, c.mode, c.batch, c.backend) == ("teapot", "silhouettes", 1, "torch")})
    if device.type == "cuda":
        available, notices = [], []
        for name in GPU_PEERS:
            reason = peers.gpu_peer_unavailable(name, device)
            if reason:
                notices.append(reason)
            else:
                available.append(name)
    else:
        reason = peers.mitsuba_unavailable()
        available, notices = ([], [reason]) if reason else (list(CPU_PEERS), [])
    return [Case("teapot", 2464, s, 1, "silhouettes", peer, p) for s, p in keys for peer in available], notices


def grid(quick, device):
    """The cases of a run: ``quick`` is a few seconds on a CPU; the full grid is meant for a GPU."""
    backends = cpu_backends() if device.type == "cpu" else ("torch", "triton")
    cases = []
    passes = ("forward", "forward+backward")
    if quick:
        for s in (64, 128, 256):
            cases += [Case("teapot", 2464, s, 1, m, b, p)
                      for b in backends for m in ("silhouettes", "rgb") for p in passes]
        cases += [Case("sphere", 10000, 128, 1, "silhouettes", b, p) for b in backends for p in passes]
        cases += [Case("teapot", 2464, 128, 8, "silhouettes", b, p) for b in backends for p in passes]
        return cases
    for s in (64, 128, 256, 512, 1024):
        cases += [Case("teapot", 2464, s, 1, m, b, p) for b in backends for m in ("silhouettes", "rgb") for p in passes]
    for n in (10_000, 100_000, 1_000_000):
        for b in backends:
            if b == "torch" and n > 100_000 and device.type == "cpu":
                continue
            cases += [Case("sphere", n, 256, 1, "silhouettes", b, p) for p in passes]
    cases.append(Case("sphere", 1_000_000, 1024, 1, "silhouettes", "triton", "forward+backward"))
    for batch in (1, 8, 32):
        cases += [Case("teapot", 2464, 256, batch, m, b, p) for b in backends for m in ("silhouettes", "rgb")
                  for p in passes]
    if device.type == "cuda":  # the other forward strategies beside the binned default
        cases += [Case("teapot", 2464, s, 1, "silhouettes", "triton", p, "face")
                  for s in (64, 256, 1024) for p in passes]
        cases += [Case("sphere", n, s, 1, "silhouettes", "triton", "forward", "face")
                  for n in (10_000, 100_000, 1_000_000) for s in (256, 1024)]
        cases += [Case("teapot", 2464, s, 1, "silhouettes", "triton", "forward", "pixel-loop") for s in (64, 256)]
        cases += [Case("sphere", 10_000, 256, 1, "silhouettes", "triton", "forward", "pixel-loop")]
    return cases


def select_raster(cases, raster):
    """The cases whose triton rows use forward strategy ``raster`` ("all": every case); other
    backends' rows stay."""
    return [c for c in cases if raster == "all" or c.backend != "triton" or c.raster == raster]


def _timing(row):
    """The time a speed-up compares: process CPU time on the CPU (a busy machine inflates wall time
    far more), CUDA-synchronised wall time on a GPU."""
    return row["cpu_ms"] if row.get("device_type") == "cpu" and row.get("cpu_ms") else row["median_ms"]


def add_speedups(rows):
    """Speed-up of each row over the torch backend's row for the same case, measured in this run."""
    key = lambda r: (r["mesh"], r["faces"], r["image_size"], r["batch"], r["mode"], r["passes"])  # noqa: E731
    ref = {key(r): _timing(r) for r in rows if r["backend"] == "torch"}
    for r in rows:
        base = ref.get(key(r))
        r["speedup_vs_torch"] = base / _timing(r) if base else None
    return rows


def backend_label(row):
    """"triton (binned)" etc. for triton rows, the backend's name otherwise."""
    return f"triton ({row.get('raster', 'binned')})" if row["backend"] == "triton" else row["backend"]


def to_markdown(rows, meta):
    head = ("| mesh | faces | size | batch | mode | passes | backend | median ms | ms / 1k faces | "
            "x torch | peak MB | CPU ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['mesh']} | {r['faces']} | {r['image_size']} | {r['batch']} | {r['mode']} | {r['passes']} | "
             f"{backend_label(r)} | {r['median_ms']:.1f} | {r['ms_per_1k_faces']:.2f} | "
             f"{'-' if r['speedup_vs_torch'] is None else format(r['speedup_vs_torch'], '.1f')} | "
             f"{'-' if r.get('peak_mb') is None else format(r['peak_mb'], '.0f')} | "
             f"{format(r['cpu_ms'], '.1f') if r.get('cpu_ms') is not None else '-'} |" for r in rows]
    return (f"Device: {meta['device']}; torch {meta['torch']}; commit {meta['commit']}; {meta['date']}\n\n"
            + head + "\n".join(lines) + "\n")


def plot(rows, path):
    """time vs faces and vs resolution (log-log), one line per backend and passes."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series = sorted({(backend_label(r), r["passes"]) for r in rows})
    for backend, passes in series:
        sel = [r for r in rows if backend_label(r) == backend and r["passes"] == passes
               and r["mode"] == "silhouettes" and r["batch"] == 1]
        sizes = [r["image_size"] for r in sel if r["mesh"] == "sphere"]
        face_size = max(set(sizes), key=sizes.count) if sizes else None
        by_faces = sorted((r["faces"], r["median_ms"]) for r in sel if r["image_size"] == face_size)
        by_size = sorted((r["image_size"], r["median_ms"]) for r in sel if r["mesh"] == "teapot")
        label = f"{backend}, {passes}"
        if len(by_faces) > 1:
            axes[0].plot(*zip(*by_faces), "o-", label=label)
        if len(by_size) > 1:
            axes[1].plot(*zip(*by_size), "o-", label=label)
    for ax, xlabel in zip(axes, ("faces", "image size (pixels per side)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("median ms")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:  # a grid with one size or one face count: nothing to draw along this axis
            ax.text(0.5, 0.5, "no series with two or more points", ha="center", transform=ax.transAxes)
    axes[0].set_title("silhouettes, batch 1: time vs faces")
    axes[1].set_title("teapot silhouettes, batch 1: time vs resolution")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(rows, meta, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=2)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(to_markdown(rows, meta))
    return plot(rows, os.path.join(out, "results.png"))


def set_threads(n):
    """Use ``n`` threads in torch and in numba's pool (Mitsuba follows torch's count in make_step)."""
    torch.set_num_threads(n)
    from tritonnmr import backends
    if backends.available("numba"):
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def write_work_model(out, quick=False):
    """``tritonnmr bench --work``: the work model's table, plot and JSON in ``out``."""
    from . import workmodel
    _, markdown, plotted = workmodel.main(out, quick)
    print(markdown)
    print(f"wrote {out}/results.json, results.md" + (", results.png" if plotted else " (no matplotlib: no plot)"))
    return 0
