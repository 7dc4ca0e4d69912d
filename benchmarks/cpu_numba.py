"""CPU benchmark: the numba backend against the torch reference, with Mitsuba 3 as a peer.

    .venv/bin/python -m benchmarks.cpu_numba [--quick] [--repeats N] [--out DIR]

Every number is process CPU time (``time.process_time``) on one thread (torch, numba and Dr.Jit
each set to one), the median of several runs after a warm-up run, so a busy machine inflates it
far less than wall time. Scenes: the bundled teapot (2,464 faces, 4,928 with fill_back) and UV
spheres, look_at camera at distance 2.732, elevation 30, azimuth 45, anti-aliasing on (so 256
renders 512 x 512 inside), texture cubes T = 2 for RGB; the loss is the sum of rgb and alpha (RGB)
or of the silhouette. Mitsuba renders the same teapot and camera as a black mesh before a white
environment with ``direct_projective`` at 256 x 256 and 1 or 4 samples per pixel, and
differentiates the summed image with respect to the vertex positions (see tritonnmr/peers.py);
its rows say "skipped" with the reason when Mitsuba is not installed.

Also measured: the numba backend's first-call compile time, in a fresh process with an empty
numba cache (cold) and again with the cache it wrote (cached). Results go to
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
import time

import torch

import tritonnmr as nr
from tritonnmr import bench
from tritonnmr.bench import peers, provenance

EYE = (nr.DEFAULT_DISTANCE, 30, 45)  # distance, elevation, azimuth


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
    """(median CPU ms, peak resident-set growth MB) over ``repeats`` runs after ``warmup``."""
    for _ in range(warmup):
        step()
    times = []
    with bench.PeakRSS() as rss:
        for _ in range(repeats):
            start = time.process_time()
            step()
            times.append((time.process_time() - start) * 1000)
    return statistics.median(times), rss.peak / 2 ** 20


def cases(quick):
    """(mesh, faces, size, batch, mode, passes) of the run."""
    out = [("teapot", 2464, 256, 1, m, p) for m in ("rgb", "silhouettes") for p in ("forward", "forward+backward")]
    if quick:
        return out
    out += [("teapot", 2464, 512, 1, m, p) for m in ("rgb", "silhouettes") for p in ("forward", "forward+backward")]
    out += [("teapot", 2464, 128, 8, "silhouettes", p) for p in ("forward", "forward+backward")]
    out += [("sphere", n, 256, 1, "silhouettes", p) for n in (10_000, 100_000) for p in ("forward", "forward+backward")]
    return out


def run(quick=False, repeats=5, log=print):
    bench.set_threads(1)
    rows = []
    for mesh, faces, size, batch, mode, passes in cases(quick):
        base = None
        for backend in ("torch", "numba"):
            step, nf = renderer_step(backend, mesh, faces, size, mode, passes, batch)
            ms, mb = measure(step, max(1, repeats // 2) if backend == "torch" else repeats)
            base = base or ms
            rows.append(dict(mesh=mesh, faces=nf, image_size=size, batch=batch, mode=mode, passes=passes,
                             backend=backend, cpu_ms=ms, peak_mb=mb, speedup_vs_torch=base / ms))
            log(_line(rows[-1]))
    reason = peers.mitsuba_unavailable()
    if reason:
        log(f"Mitsuba peer skipped: {reason}")
    v, f = _mesh("teapot", 0)
    ref = {(r["passes"]): r["cpu_ms"] for r in rows
           if (r["mesh"], r["image_size"], r["mode"], r["backend"]) == ("teapot", 256, "silhouettes", "torch")}
    for spp in (1, 4):
        for passes in ("forward", "forward+backward"):
            row = dict(mesh="teapot", faces=f.shape[0], image_size=256, batch=1, mode="silhouettes", passes=passes,
                       backend=f"mitsuba {spp} spp", cpu_ms=None, peak_mb=None, speedup_vs_torch=None,
                       note=reason)
            if not reason:
                step, _ = peers.mitsuba_silhouette_step(v, f, 256, spp, nr.get_points_from_angles(*EYE), passes)
                row["cpu_ms"], row["peak_mb"] = measure(lambda: step(), repeats, warmup=2)
                row["speedup_vs_torch"] = ref[passes] / row["cpu_ms"] if passes in ref else None
                row.pop("note")
            rows.append(row)
            log(_line(rows[-1]))
    return rows


def _line(r):
    ms = "skipped" if r["cpu_ms"] is None else f"{r['cpu_ms']:.1f} ms"
    return f"{r['mesh']} {r['faces']} {r['image_size']}^2 x{r['batch']} {r['mode']} {r['passes']} {r['backend']}: {ms}"


_JIT_CHILD = r"""
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
import torch
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
ops.sample_cubes_backward(fi, w, ops.sample_cubes(fi, w, tex, 1e-3), tex.shape, 1e-3)
att = torch.rand(2, 20, 3, 3, generator=g)
ops.interpolate_backward(fi, w, ops.interpolate(fi, w, att), att.shape)
uvs, mat = torch.rand(2, 20, 3, 2, generator=g), torch.zeros(2, 20, dtype=torch.int64)
texels, table = torch.rand(16, 3, generator=g), torch.tensor([[0, 4, 4]])
ops.sample_uv_backward(fi, w, uvs, mat, texels, table, 0, ops.sample_uv(fi, w, uvs, mat, texels, table, 0))
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
    meta = dict(device=f"{model} ({platform.machine()}, {os.cpu_count()} cores), one thread, process CPU time",
                torch=torch.__version__, numba=numba.__version__, commit=commit, date=time.strftime("%Y-%m-%d"))
    try:
        import mitsuba
        meta["mitsuba"] = mitsuba.__version__
    except ImportError:
        pass
    return meta


def to_markdown(rows, meta, jit):
    head = (f"{meta['device']}; torch {meta['torch']}, numba {meta['numba']}"
            + (f", mitsuba {meta['mitsuba']}" if "mitsuba" in meta else "")
            + f"; commit {meta['commit']}; {meta['date']}\n\n"
            "| mesh | faces | size | batch | mode | passes | backend | CPU ms | x torch | peak MB |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        ms = "skipped" if r["cpu_ms"] is None else f"{r['cpu_ms']:.1f}"
        x = "-" if r["speedup_vs_torch"] is None else f"{r['speedup_vs_torch']:.1f}"
        mb = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        lines.append(f"| {r['mesh']} | {r['faces']} | {r['image_size']} | {r['batch']} | {r['mode']} | "
                     f"{r['passes']} | {r['backend']} | {ms} | {x} | {mb} |")
    tail = ""
    if jit:
        tail = ("\n\nnumba first use of every op in a fresh process (import included): "
                f"cold cache {jit['cold']['wall_s']:.1f} s wall / {jit['cold']['cpu_s']:.1f} s CPU, "
                f"cached {jit['cached']['wall_s']:.1f} s wall / {jit['cached']['cpu_s']:.1f} s CPU.\n")
    return head + "\n".join(lines) + tail


def plot(rows, path):
    """Grouped bars (log scale): CPU ms per case for each backend."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    keys = []
    for r in rows:
        k = (r["mesh"], r["faces"], r["image_size"], r["batch"], r["mode"], r["passes"])
        if k not in keys:
            keys.append(k)
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    ms = {(r["mesh"], r["faces"], r["image_size"], r["batch"], r["mode"], r["passes"], r["backend"]): r["cpu_ms"]
          for r in rows if r["cpu_ms"]}
    fig, ax = plt.subplots(figsize=(13, 5))
    width = 0.2
    colours = {b: f"C{i}" for i, b in enumerate(backends)}
    for j, k in enumerate(keys):
        present = [b for b in backends if k + (b,) in ms]
        for i, b in enumerate(present):  # the group's bars centred on its tick
            ax.bar(j + (i - (len(present) - 1) / 2) * width, ms[k + (b,)], width, color=colours[b],
                   label=b if j == min(jj for jj, kk in enumerate(keys) if kk + (b,) in ms) else None)
    labels = [f"{m} {s}²{'' if b == 1 else f' x{b}'}\n{mode[:3]} {'fwd+bwd' if '+' in p else 'fwd'}"
              + (f"\n{f // 1000}k faces" if m == "sphere" else "") for m, f, s, b, mode, p in keys]
    ax.set_xticks(range(len(keys)), labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("CPU ms (one thread, median)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("tritonnmr on the CPU: torch reference vs numba backend (Mitsuba 3 direct_projective as a peer)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="teapot at 256 only")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (torch: half)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results/cpu-<date>-numba)")
    parser.add_argument("--no-jit", action="store_true", help="skip the compile-time measurement")
    parser.add_argument("--plot-only", metavar="JSON", help="redraw results.png and results.md from a results.json")
    args = parser.parse_args(argv)
    if args.plot_only:
        with open(args.plot_only) as fh:
            saved = json.load(fh)
        folder = os.path.dirname(args.plot_only)
        plot(saved["rows"], os.path.join(folder, "results.png"))
        with open(os.path.join(folder, "results.md"), "w") as fh:
            fh.write(to_markdown(saved["rows"], saved["meta"], saved["jit"]))
        return 0
    meta = metadata()
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"cpu-{meta['date']}-numba")
    jit = None if args.no_jit else jit_times()
    if jit:
        print(f"numba compile: cold {jit['cold']}, cached {jit['cached']}", flush=True)
    rows = run(args.quick, args.repeats, log=lambda s: print(s, flush=True))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"meta": meta, "jit": jit, "rows": rows}, fh, indent=2)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(to_markdown(rows, meta, jit))
    plot(rows, os.path.join(out, "results.png"))
    print(to_markdown(rows, meta, jit))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
