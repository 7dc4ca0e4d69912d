"""CPU benchmark: the numba backend at 1 and 2 threads against the torch reference, with Mitsuba 3 and
PyTorch3D as peers where they are installed, and the CPU path's goals checked, all in one run.

    .venv/bin/python -m benchmarks.cpu_numba [--quick] [--repeats N] [--baseline DIR] [--out DIR]

- One thread (torch, numba, Dr.Jit and PyTorch3D each set to one): process CPU time, the median of
  several runs after a warm-up run, so a busy machine inflates it far less than wall time.
- Two threads (torch and numba both at 2, the default on 2 cores): wall time and CPU time, medians;
  the speed-up is the 1-thread wall time over the 2-thread one, measured case by case in this run.
- The ceiling: two 1-thread processes running the teapot step at once, one per core, against one alone:
  the speed-up a perfectly parallel step could reach on this machine at this time.
- Under load: the same steps at 2 threads while a busy loop holds the second core (after LOAD_WARMUP
  steps under it), against the 1-thread wall time without it.
- The reconstruction step (32 silhouettes of the 1,280-face sphere at 64^2, anti-aliased, the
  IoU loss, forward and backward) on one thread, in child processes taking turns with a checkout
  of another commit (``--baseline DIR``, e.g. the code before a change), so that both are measured
  under the same load.

Scenes: the bundled teapot (2,464 faces, 4,928 with fill_back) and UV spheres, look_at camera at
distance 2.732, elevation 30, azimuth 45, anti-aliasing on (256 renders 512 x 512 inside), texture cubes
T = 2 for RGB; the loss is the sum of rgb and alpha (RGB) or of the silhouette. Mitsuba renders the same
teapot silhouette (``direct_projective``, 1 or 4 samples per pixel, gradient to the vertex positions);
PyTorch3D its hard rasterizer (forward rows) and its soft silhouette (forward + backward rows), the
same camera (tritonnmr/bench/peers.py). The machine is shared: its load average and the time it takes
to wake a sleeping thread are recorded with the results. Results go to
``benchmarks/results/cpu-<date>-numba/`` (results.json, results.md, results.png).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import torch

import tritonnmr as nr
from tritonnmr import bench
from tritonnmr.bench import peers, provenance

EYE = bench.EYE  # distance, elevation, azimuth
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEEDUP_GOAL, CPU_GOAL, LOAD_GOAL, RECON_GOAL_MS = 1.8, 1.1, 1.5, 80.0  # issue 28's goals
# steps run after the busy loop starts before the loaded ones are timed: with torch at 2 threads the first
# one to three take 2-3x longer while the scheduler settles where torch's pool threads run
LOAD_WARMUP = 3


def _mesh(mesh, faces):
    if mesh == "teapot":
        return nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    v, f = bench.uv_sphere(faces)
    return v * 0.9, f


def renderer_step(backend, mesh, faces, size, mode, passes, batch=1):
    """One render (and backward) of the case with the tritonnmr ``backend``; returns (step, F)."""
    v, f = _mesh(mesh, faces)
    v, f = v[None].repeat(batch, 1, 1), f[None].repeat(batch, 1, 1)
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend=backend)
    r.eye = nr.get_points_from_angles(*EYE)
    textures = torch.rand(batch, f.shape[1], 2, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    backward = passes == "forward+backward"
    v = v.requires_grad_(backward)

    def step():
        if mode == "silhouettes":
            loss = r(v, f, mode="silhouettes").sum()
        else:
            rgb, _, alpha = r(v, f, textures)
            loss = rgb.sum() + alpha.sum()
        if backward:
            loss.backward()
            v.grad = None
    return step, f.shape[1]


def measure(step, repeats, warmup=1):
    """{"cpu_ms", "wall_ms"}: medians over ``repeats`` runs after ``warmup``."""
    for _ in range(warmup):
        step()
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        step()
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    return dict(cpu_ms=statistics.median(cpu), wall_ms=statistics.median(wall))


def measure_interleaved(step, settings, repeats, warmup=1):
    """{setting: {"cpu_ms", "wall_ms"}} for each (numba threads, torch threads) ``setting``, the settings
    taking turns run by run, so that a change in the machine's load reaches all of them alike."""
    for setting in settings:
        _threads(*setting)
        for _ in range(warmup):
            step()
    cpu, wall = {s: [] for s in settings}, {s: [] for s in settings}
    for _ in range(repeats):
        for setting in settings:
            _threads(*setting)
            c, w = time.process_time(), time.perf_counter()
            step()
            cpu[setting].append((time.process_time() - c) * 1000)
            wall[setting].append((time.perf_counter() - w) * 1000)
    _threads(1, 1)
    return {s: dict(cpu_ms=statistics.median(cpu[s]), wall_ms=statistics.median(wall[s])) for s in settings}


def cases(quick):
    """(mesh, faces, size, batch, mode, passes) of the run; the goal cases come first."""
    fb = "forward+backward"
    out = [("teapot", 2464, 256, 1, m, p) for m in ("rgb", "silhouettes") for p in ("forward", fb)]
    out.append(("teapot", 2464, 256, 8, "rgb", fb))
    if quick:
        return out
    out += [("teapot", 2464, 512, 1, m, fb) for m in ("rgb", "silhouettes")]
    out += [("teapot", 2464, 128, 8, "silhouettes", fb)]
    out += [("sphere", n, 256, 1, "silhouettes", fb) for n in (10_000, 100_000)]
    return out


class BusyCore:
    """A process spinning on the last core (``with BusyCore(): ...``), the neighbour of the load goal."""

    def __enter__(self):
        code = ("import os\nos.sched_setaffinity(0, {%d})\nwhile True:\n    pass\n" % (os.cpu_count() - 1))
        self.process = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def wake_latency_ms(samples=50):
    """The median time (ms) from handing a sleeping thread work to it running: what a parallel pass
    pays before its second thread helps."""
    ready, started = threading.Event(), []

    def worker():
        while True:
            ready.wait()
            started.append(time.perf_counter())
            ready.clear()
    threading.Thread(target=worker, daemon=True).start()
    gaps = []
    for _ in range(samples):
        time.sleep(0.005)
        t = time.perf_counter()
        ready.set()
        while len(started) < len(gaps) + 1:
            time.sleep(0)
        gaps.append((started[-1] - t) * 1000)
    return statistics.median(gaps)


def load_average():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _threads(numba_threads, torch_threads):
    bench.set_threads(numba_threads)  # numba's pool (and torch's), then torch's own
    torch.set_num_threads(torch_threads)


def run(quick=False, repeats=5, log=print):
    """Per case: the reference (1 thread), numba at 1 thread, numba at 2 threads with torch at 1 (the
    library's own threads) and with torch at 2 too (a user's default), each idle and with a busy
    neighbour core."""
    rows = []
    for mesh, faces, size, batch, mode, passes in cases(quick):
        row = dict(mesh=mesh, image_size=size, batch=batch, mode=mode, passes=passes, load=load_average())
        _threads(1, 1)
        step, row["faces"] = renderer_step("torch", mesh, faces, size, mode, passes, batch)
        row["torch_ms"] = measure(step, max(1, repeats // 2))["cpu_ms"]  # (seconds a run)
        step, row["faces"] = renderer_step("numba", mesh, faces, size, mode, passes, batch)
        # one thread and the library's two take turns; torch's own 2 threads come after them, since its
        # idle OpenMP workers keep spinning into whatever runs next (a 1-thread run would pay their CPU)
        timed = measure_interleaved(step, [(1, 1), (2, 1)], repeats)
        one = timed[1, 1]
        row.update(numba_ms=one["cpu_ms"], numba_wall_ms=one["wall_ms"])
        for name, torch_threads in (("numba2", 1), ("both2", 2)):
            _threads(2, torch_threads)
            two = timed[2, 1] if torch_threads == 1 else measure(step, repeats)
            with BusyCore():
                loaded = measure(step, repeats, warmup=LOAD_WARMUP)
            row.update({f"{name}_wall_ms": two["wall_ms"], f"{name}_cpu_ms": two["cpu_ms"],
                        f"{name}_loaded_wall_ms": loaded["wall_ms"], f"{name}_speedup": one["wall_ms"] / two["wall_ms"],
                        f"{name}_cpu_ratio": two["cpu_ms"] / one["cpu_ms"],
                        f"{name}_load_ratio": loaded["wall_ms"] / one["wall_ms"]})
        _threads(1, 1)
        rows.append(row)
        log(_line(row))
    return rows


def peer_rows(repeats, log=print):
    """Mitsuba 3 and PyTorch3D on the teapot silhouette at 256^2, one thread (skipped with the reason)."""
    bench.set_threads(1)
    v, f = _mesh("teapot", 0)
    eye = nr.get_points_from_angles(*EYE)
    out = []
    reason = peers.mitsuba_unavailable()
    for spp in (1, 4):
        for passes in ("forward", "forward+backward"):
            row = dict(peer=f"Mitsuba 3, {spp} spp", passes=passes, note=reason)
            if not reason:
                step, _ = peers.mitsuba_silhouette_step(v, f, 256, spp, eye, passes)
                row["cpu_ms"] = measure(step, repeats, warmup=2)["cpu_ms"]
            out.append(row)
            log(f"peer {row}")
    reason = peers.gpu_peer_unavailable("pytorch3d", "cpu")
    for passes in ("forward", "forward+backward"):
        name = "PyTorch3D, hard" if passes == "forward" else \
            f"PyTorch3D, soft ({peers.SOFT_FACES_PER_PIXEL} faces/pixel)"
        row = dict(peer=name, passes=passes, note=reason)
        if not reason:
            if passes == "forward":
                row["cpu_ms"] = measure(peers.pytorch3d_hard_step(v[None], f, 256, eye), max(1, repeats // 2))["cpu_ms"]
            else:  # about 10 s a run: two runs, no warm-up (compiled code: nothing to warm)
                row["cpu_ms"] = measure(peers.pytorch3d_silhouette_step(v[None], f, 256, eye, passes), 2, 0)["cpu_ms"]
        out.append(row)
        log(f"peer {row}")
    return out


_RECON_CHILD = r"""
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
import numba
numba.set_num_threads(1)
torch.set_num_threads(1)
import tritonnmr as nr
try:
    from tritonnmr.apps.reconstruction import data, losses, shapes
except ImportError:  # a checkout from before tritonnmr/apps
    from tritonnmr.reconstruction import data, losses, shapes
v, f = shapes.icosphere(3)
B = 32
vertices = (v * 0.5)[None].repeat(B, 1, 1).requires_grad_(True)
faces = f[None].expand(B, -1, -1)
r = data.camera(anti_aliasing=True)
r.eye = data.viewpoints(torch.arange(B) % data.VIEWS)
target = (torch.rand(B, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
def step():
    losses.iou_loss(r(vertices, faces, mode="silhouettes"), target).backward()
    vertices.grad = None
for _ in range(3):
    step()
times = []
for _ in range(int(sys.argv[1])):
    c = time.process_time()
    step()
    times.append((time.process_time() - c) * 1000)
print(json.dumps(dict(cpu_ms=statistics.median(times), file=nr.__file__)))
"""


def reconstruction_step(baseline=None, rounds=5, steps=10, log=print):
    """{"cpu_ms": this checkout's median, "baseline_ms", "baseline": DIR}: the reconstruction step on one
    thread in child processes, this checkout's and ``baseline``'s taking turns ``rounds`` times."""
    checkouts = {"cpu_ms": ROOT} if baseline is None else {"cpu_ms": ROOT, "baseline_ms": os.path.abspath(baseline)}
    medians = {key: [] for key in checkouts}
    for _ in range(rounds):
        for key, path in checkouts.items():
            env = dict(os.environ, PYTHONPATH=path, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
            done = subprocess.run([sys.executable, "-c", _RECON_CHILD, str(steps)], env=env, cwd=path,
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["file"].startswith(path), result["file"]
            medians[key].append(result["cpu_ms"])
    out = {key: statistics.median(values) for key, values in medians.items()}
    out.update(rounds=rounds, steps=steps, baseline=baseline)
    log(f"reconstruction step: {out}")
    return out


_PAIR_CHILD = r"""
import json, os, statistics, sys, time
os.sched_setaffinity(0, {int(sys.argv[2])})
import torch
torch.set_num_threads(1)
from benchmarks.cpu_numba import renderer_step
step, _ = renderer_step("numba", "teapot", 2464, 256, "rgb", "forward+backward")
for _ in range(3):
    step()
sys.stdout.write("ready\n")
sys.stdout.flush()
sys.stdin.readline()
times = []
for _ in range(int(sys.argv[1])):
    w = time.perf_counter()
    step()
    times.append((time.perf_counter() - w) * 1000)
print(json.dumps(dict(wall_ms=statistics.median(times))))
"""


def two_copies(rounds=3, steps=15):
    """The most two threads could give on this machine now: 2 x the step time of one 1-thread process
    alone over that of two such processes at once, one per core (no shared work, no GIL, no waiting:
    what is left is what the cores share, caches, memory, clock), for the teapot 256², RGB, forward +
    backward, the rounds' median; None on one core."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        return None
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=ROOT)

    def together(on):
        children = [subprocess.Popen([sys.executable, "-c", _PAIR_CHILD, str(steps), str(core)], env=env, cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for core in on]
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # all warm: start them at once
            child.stdin.write("go\n")
            child.stdin.flush()
        walls = [json.loads(child.communicate()[0].strip().splitlines()[-1])["wall_ms"] for child in children]
        return statistics.mean(walls)
    ratios = [2 * together(cores[:1]) / together(cores[:2]) for _ in range(rounds)]
    return statistics.median(ratios)


def _line(r):
    return (f"{_case_name(r)}: torch {_ms(r['torch_ms'])} ms, numba {r['numba_ms']:.1f} ms; 2 numba threads "
            f"{r['numba2_wall_ms']:.1f} ms ({r['numba2_speedup']:.2f}x, busy {r['numba2_load_ratio']:.2f}x), "
            f"torch too {r['both2_wall_ms']:.1f} ms ({r['both2_speedup']:.2f}x, busy {r['both2_load_ratio']:.2f}x)")


_JIT_CHILD = r"""
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
import torch
import tritonnmr as nr
from tritonnmr.backends import numba as ops
imported = time.perf_counter() - wall
g = torch.Generator().manual_seed(0)
faces = torch.rand(2, 20, 3, 3, generator=g) * 2 - 1
faces[..., 2] += 2
fi, w, d = ops.rasterize_fragments(faces, 16, 12, 0.1, 100.0)
ops.depth_backward(faces, fi, w, d, d)
image = torch.rand(2, 16, 12, 4, generator=g)
ops.edge_backward(faces, fi, image, image, 1e-3)
tex = torch.rand(2, 20, 2, 2, 2, 3, generator=g)
ops.sample_cubes_backward(fi, w, ops.sample_cubes(fi, w, tex, 1e-3), tex, 1e-3)
att = torch.rand(2, 20, 3, 3, generator=g)
ops.interpolate_backward(fi, w, ops.interpolate(fi, w, att), att)
uvs, mat = torch.rand(2, 20, 3, 2, generator=g), torch.zeros(2, 20, dtype=torch.int64)
texels, table = torch.rand(16, 3, generator=g), torch.tensor([[0, 4, 4]])
ops.sample_uv_backward(fi, w, ops.sample_uv(fi, w, uvs, texels, mat, table, 0), uvs, texels, mat, table, 0)
v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
v = v[None].requires_grad_()
rgb, _, alpha = nr.Renderer(image_size=32, camera_mode="look_at")(v, f[None], torch.rand(1, f.shape[0], 2, 2, 2, 3))
(rgb.sum() + alpha.sum()).backward()
print(json.dumps(dict(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu, import_s=imported)))
"""


def jit_times():
    """First use of every op in a fresh process: with an empty numba cache, then with the cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
        out = {}
        for name in ("cold", "cached"):
            done = subprocess.run([sys.executable, "-c", _JIT_CHILD], env=env, capture_output=True, text=True,
                                  check=True)
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def metadata():
    import numba
    commit = provenance.metadata(torch.device("cpu"))["commit"]
    model = "CPU"
    if os.path.exists("/proc/cpuinfo"):
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        model = names[0] if names else model
    meta = dict(device=f"{model} ({platform.machine()}, {os.cpu_count()} cores)", torch=torch.__version__,
                numba=numba.__version__, commit=commit, date=time.strftime("%Y-%m-%d"),
                wake_latency_ms=wake_latency_ms(), two_copies=two_copies())
    for name in ("mitsuba", "pytorch3d"):
        try:
            meta[name] = __import__(name).__version__
        except ImportError:
            pass
    return meta


def _ms(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.{digits}f}"


def _case_name(r):
    what = "RGB" if r["mode"] == "rgb" else "silhouettes"
    batch = f" x {r['batch']}" if r["batch"] > 1 else ""
    mesh = "teapot" if r["mesh"] == "teapot" else f"sphere {r['faces'] // 1000}k faces"
    return f"{mesh} {r['image_size']}²{batch}, {what}, {r['passes'].replace('+', ' + ')}"


def _tick(r):
    """A case in three short lines, for the plot."""
    mesh = "teapot" if r["mesh"] == "teapot" else f"sphere {r['faces'] // 1000}k"
    batch = f" x{r['batch']}" if r["batch"] > 1 else ""
    return (f"{mesh} {r['image_size']}²{batch}\n{'RGB' if r['mode'] == 'rgb' else 'silhouettes'}\n"
            f"{'fwd+bwd' if '+' in r['passes'] else 'fwd'}")


def _ceiling(meta):
    if meta.get("two_copies") is None:
        return ""
    return (f" Two 1-thread copies of the teapot 256² RGB step, one per core, run at {meta['two_copies']:.2f}x the "
            "throughput of one alone: the most two threads can give on this machine (what the cores share: "
            "caches, memory, clock).")


def to_markdown(rows, peer, recon, meta, jit):
    versions = ", ".join(f"{k} {meta[k]}" for k in ("torch", "numba", "mitsuba", "pytorch3d") if k in meta)
    loads = [r["load"] for r in rows if r.get("load") is not None]
    head = (f"{meta['device']}; {versions}; commit {meta['commit']}; {meta['date']}. Load average during the run "
            f"{min(loads):.1f} to {max(loads):.1f} (other sessions share the machine); waking a sleeping thread "
            f"takes {meta['wake_latency_ms']:.2f} ms here (median).{_ceiling(meta)}\n\n"
            "One thread: process CPU time (torch and numba at 1), ms. Two threads: wall time, ms, numba at 2 with "
            "torch at 1 (the library's own threads), then with torch at 2 as well (a user's default); speed-up = "
            "1-thread wall / 2-thread wall (1 and 2 numba threads taking turns run by run); CPU = 2-thread / 1-thread "
            "CPU time; busy = 2-thread wall time with a busy loop on the other core / 1-thread wall time. "
            "Medians.\n\n"
            "| case | torch reference | numba, 1 thread | x torch | 2 numba threads | speed-up | CPU | busy "
            "| and 2 torch threads | speed-up | CPU | busy |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        x = f"{r['torch_ms'] / r['numba_ms']:.0f}×" if r.get("torch_ms") else "-"
        cells = " | ".join(f"{_ms(r[f'{n}_wall_ms'])} | {r[f'{n}_speedup']:.2f}× | {r[f'{n}_cpu_ratio']:.2f}× | "
                           f"{r[f'{n}_load_ratio']:.2f}×" for n in ("numba2", "both2"))
        lines.append(f"| {_case_name(r)} | {_ms(r.get('torch_ms'))} | {_ms(r['numba_ms'])} | {x} | {cells} |")
    teapot = {r["passes"]: r["numba_ms"] for r in rows
              if (r["mesh"], r["image_size"], r["batch"], r["mode"]) == ("teapot", 256, 1, "silhouettes")}
    peers_md = ("\n\nPeers, teapot 256² silhouettes, one thread, CPU time (tritonnmr renders 512² inside and pools; "
                "PyTorch3D's hard rasterizer and Mitsuba render 256²):\n\n"
                "| peer | forward | forward + backward | tritonnmr (numba) is faster by |\n|---|---|---|---|\n")
    names = list(dict.fromkeys(p["peer"].split(",")[0] for p in peer))
    for name in names:
        for label in dict.fromkeys(p["peer"] for p in peer if p["peer"].startswith(name)):
            got = {p["passes"]: p for p in peer if p["peer"] == label}
            cells, ratios = [], []
            for passes in ("forward", "forward+backward"):
                p = got.get(passes)
                if p is None:
                    cells.append("")
                elif p.get("cpu_ms") is None:
                    cells.append("skipped")
                else:
                    cells.append(f"{_ms(p['cpu_ms'])} ms")
                    if passes in teapot:
                        ratios.append(f"{p['cpu_ms'] / teapot[passes]:,.0f}× ({passes.replace('+', ' + ')})")
            peers_md += f"| {label} | {cells[0]} | {cells[1]} | {', '.join(ratios) or '-'} |\n"
    notes = sorted({p["note"] for p in peer if p.get("note")})
    if notes:
        peers_md += "\n" + "\n".join(f"Skipped: {n}." for n in notes) + "\n"
    recon_md = ""
    if recon:
        recon_md = (f"\nThe reconstruction step (32 x 64² silhouettes of the 1,280-face sphere, anti-aliased, IoU loss, "
                    f"forward + backward), one thread, CPU time, median of {recon['rounds']} child processes x "
                    f"{recon['steps']} steps: **{recon['cpu_ms']:.1f} ms** (goal ≤ {RECON_GOAL_MS:.0f} ms)")
        if recon.get("baseline_ms"):
            recon_md += (f"; the baseline checkout ({recon['baseline']}), taking turns with it: "
                         f"{recon['baseline_ms']:.1f} ms ({recon['baseline_ms'] / recon['cpu_ms']:.2f}× slower)")
        recon_md += ".\n"
    tail = ""
    if jit:
        tail = ("\nnumba first use of every op in a fresh process (import included): "
                f"cold cache {jit['cold']['wall_s']:.1f} s wall / {jit['cold']['cpu_s']:.1f} s CPU, "
                f"cached {jit['cached']['wall_s']:.1f} s wall / {jit['cached']['cpu_s']:.1f} s CPU.\n")
    return head + "\n".join(lines) + peers_md + recon_md + tail


def plot(rows, peer, path):
    """Grouped bars (log scale): ms per case for the torch reference, numba at 1 thread (CPU) and at 2
    threads (wall), and the peers on the teapot silhouette rows."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = [("torch reference (1 thread, CPU)", "torch_ms"), ("numba, 1 thread (CPU)", "numba_ms"),
              ("numba 2 threads, torch 1 (wall)", "numba2_wall_ms"),
              ("numba 2 threads, torch 1, busy neighbour (wall)", "numba2_loaded_wall_ms"),
              ("numba and torch 2 threads (wall)", "both2_wall_ms")]
    labels = [p["peer"] for p in peer if p.get("cpu_ms")]
    labels = list(dict.fromkeys(labels))
    width = 0.8 / (len(series) + len(labels))
    fig, ax = plt.subplots(figsize=(13, 5.5))
    for i, (label, key) in enumerate(series):
        xs = [j + i * width for j, r in enumerate(rows) if r.get(key)]
        ax.bar(xs, [r[key] for r in rows if r.get(key)], width, label=label, color=f"C{i}")
    for k, label in enumerate(labels):
        pts = [(j, p["cpu_ms"]) for j, r in enumerate(rows) for p in peer
               if p["peer"] == label and p.get("cpu_ms") and p["passes"] == r["passes"]
               and (r["mesh"], r["image_size"], r["batch"], r["mode"]) == ("teapot", 256, 1, "silhouettes")]
        if pts:
            ax.bar([j + (len(series) + k) * width for j, _ in pts], [ms for _, ms in pts], width, label=label,
                   color=f"C{len(series) + k}")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [_tick(r) for r in rows], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms (median)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    measured = [name for name in ("Mitsuba 3", "PyTorch3D") if any(label.startswith(name) for label in labels)]
    ax.set_title("tritonnmr on a 2-core CPU: torch reference, numba at 1 and 2 threads"
                 + "".join(f", {name}" for name in measured))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the teapot goal cases only")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (torch reference: half)")
    parser.add_argument("--baseline", metavar="DIR", help="a checkout of another commit to time the reconstruction "
                                                          "step against (e.g. git archive COMMIT | tar -x -C DIR)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results/cpu-<date>-numba)")
    parser.add_argument("--no-jit", action="store_true", help="skip the compile-time measurement")
    parser.add_argument("--plot-only", metavar="JSON", help="redraw results.png and results.md from a results.json")
    args = parser.parse_args(argv)
    if args.baseline and not os.path.isdir(os.path.join(args.baseline, "tritonnmr")):
        print(f"--baseline: {args.baseline} holds no tritonnmr package", file=sys.stderr)
        return 2
    if args.plot_only:
        with open(args.plot_only) as fh:
            saved = json.load(fh)
        folder = os.path.dirname(args.plot_only)
        plot(saved["rows"], saved["peers"], os.path.join(folder, "results.png"))
        with open(os.path.join(folder, "results.md"), "w") as fh:
            fh.write(to_markdown(saved["rows"], saved["peers"], saved["reconstruction"], saved["meta"], saved["jit"]))
        return 0
    meta = metadata()
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"cpu-{meta['date']}-numba")
    jit = None if args.no_jit else jit_times()
    if jit:
        print(f"numba compile: cold {jit['cold']}, cached {jit['cached']}", flush=True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    rows = run(args.quick, args.repeats, log=log)
    peer = peer_rows(args.repeats, log=log)
    recon = reconstruction_step(args.baseline, log=log)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"meta": meta, "jit": jit, "rows": rows, "peers": peer, "reconstruction": recon}, fh, indent=2)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(to_markdown(rows, peer, recon, meta, jit))
    plot(rows, peer, os.path.join(out, "results.png"))
    print(to_markdown(rows, peer, recon, meta, jit))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
