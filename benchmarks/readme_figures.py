"""The README's table of runs, measured from the current commit in one go, and the table made from
what it measured, so that the README's figures cannot drift from a committed result.

    .venv/bin/python -m benchmarks.readme_figures [--fresh-clone] [--skip-reconstruction] [--out DIR]
    .venv/bin/python -m benchmarks.readme_figures --table     # print the README table from DIR/figures.json

Each command runs as a user runs it: the installed ``tritonnmr`` script, a process of its own.

- ``demo`` with an empty numba cache (a fresh NUMBA_CACHE_DIR: what a first run pays to compile the
  kernels) and again with it warm: wall time.
- the fits at 128 px with ``--threads 1``: the result from metrics.json and the child's process CPU
  time (so a busy machine inflates it little).
- ``bench --quick`` and ``reconstruct run --quick``: wall time, on the machine's default threads; the
  reconstruction's mean IoUs and the categories the mesh model wins, from its results.json.
- ``--fresh-clone``: ``git clone`` of this checkout, ``bash install.sh`` and the README's demo
  command, wall time (packages from the local index the machine has).

Results go to ``benchmarks/results/readme/figures.json`` (with the commit, the date, the machine);
tests/test_readme.py checks that README.md holds the table :func:`table` makes from that file.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results", "readme", "figures.json")
SCRIPT = os.path.join(os.path.dirname(sys.executable), "tritonnmr")
FIT_SIZE = "128"
# the fits of the table: (row name, the command's arguments)
FITS = [("fit shape", ["fit", "shape"]), ("fit texture", ["fit", "texture"]),
        ("fit texture --texture uv", ["fit", "texture", "--texture", "uv"]), ("fit camera", ["fit", "camera"])]


def run(argv, env=None, cwd=ROOT):
    """Run the tritonnmr script with ``argv`` -> (wall s, child CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([SCRIPT, *argv], check=True, cwd=cwd, env=dict(os.environ, **(env or {})),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_demo(work):
    with tempfile.TemporaryDirectory() as cache:
        cold, _ = run(["demo", "--out", os.path.join(work, "demo")], env={"NUMBA_CACHE_DIR": cache})
        warm, _ = run(["demo", "--out", os.path.join(work, "demo")], env={"NUMBA_CACHE_DIR": cache})
    metrics = json.load(open(os.path.join(work, "demo", "fit_shape", "metrics.json")))
    return dict(cold_s=cold, warm_s=warm, iou_initial=metrics["iou_initial"], iou_final=metrics["iou_final"])


def measure_fits(work):
    one = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    rows = {}
    for name, argv in FITS:
        out = os.path.join(work, name.replace(" ", "_"))
        run([*argv, "--image-size", FIT_SIZE, "--threads", "1", "--out", out], env=one)  # warm-up: caches, files
        _, cpu = run([*argv, "--image-size", FIT_SIZE, "--threads", "1", "--out", out], env=one)
        rows[name] = dict(json.load(open(os.path.join(out, "metrics.json"))), cpu_s=cpu)
    return rows


def measure_bench(work):
    wall, _ = run(["bench", "--quick", "--out", os.path.join(work, "bench")])
    return dict(wall_s=wall)


def measure_reconstruction(work):
    out = os.path.join(work, "reconstruction")
    wall, _ = run(["reconstruct", "run", "--quick", "--out", out])
    result = json.load(open(os.path.join(out, "run", "results.json")))
    categories = result["categories"].values()
    wins = sum(c["mesh_iou"] > c["voxel_iou"] for c in categories)
    return dict(wall_s=wall, **result["mean"], mesh_wins=wins, categories=len(result["categories"]))


def measure_fresh_clone(work):
    clone = os.path.join(work, "clone")
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "NUMBA_CACHE_DIR")}
    start = time.perf_counter()
    subprocess.run(["bash", "-c", "bash install.sh && .venv/bin/tritonnmr demo"], check=True, cwd=clone, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dict(wall_s=time.perf_counter() - start)


def machine():
    import platform

    import torch
    names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")] \
        if os.path.exists("/proc/cpuinfo") else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return dict(device=f"{names[0] if names else 'CPU'} ({platform.machine()}, {os.cpu_count()} cores)",
                torch=torch.__version__, commit=commit.strip() + ("+changes" if dirty else ""),
                date=time.strftime("%Y-%m-%d"), load_average=os.getloadavg()[0])


def _minutes(seconds):
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def table(figures):
    """The README's markdown table of runs (header included) from a figures.json dict."""
    fits, demo = figures["fits"], figures["demo"]
    rows = ["| run | result | time |", "|---|---|---|"]
    if "fresh_clone" in figures:
        rows.append(f"| `bash install.sh && .venv/bin/tritonnmr demo` in a fresh clone | | "
                    f"{_minutes(figures['fresh_clone']['wall_s'])} |")
    rows.append(f"| `tritonnmr demo` (turntable + shape fit at 128 px) | silhouette IoU {demo['iou_initial']:.3f} → "
                f"{demo['iou_final']:.3f} | {_minutes(demo['cold_s'])} the first time (compiling the kernels), "
                f"{_minutes(demo['warm_s'])} after |")
    for name, _ in FITS:
        r = fits[name]
        if "iou_final" in r:
            result = f"IoU {r['iou_initial']:.3f} → {r['iou_final']:.3f}"
        else:
            result = (f"colour error {r['error_initial']:.3f} → {r['error_final']:.4f} "
                      f"(−{100 * r['error_reduction']:.1f}%); covered pixels {r['error_interior_final']:.5f}")
        if "eye_error_relative" in r:
            result += f"; eye {100 * r['eye_error_relative']:.1f}% of its distance from the true eye"
        rows.append(f"| `tritonnmr {name} --image-size {FIT_SIZE}` | {result} | {r['cpu_s']:.1f} s of CPU |")
    if "bench" in figures:
        rows.append(f"| `tritonnmr bench --quick` | the tables and plots of docs/benchmarks.md | "
                    f"{_minutes(figures['bench']['wall_s'])} |")
    if "reconstruction" in figures:
        r = figures["reconstruction"]
        rows.append(f"| `tritonnmr reconstruct run --quick` | test IoU mesh {r['mesh_iou']:.3f}, voxel "
                    f"{r['voxel_iou']:.3f} (mean shape {r['mean_shape_iou']:.3f}); the mesh model ahead in "
                    f"{r['mesh_wins']} of {r['categories']} | {_minutes(r['wall_s'])} |")
    return "\n".join(rows)


def caption(figures):
    """The line above the table: where and on what it was measured."""
    m = figures["machine"]
    return (f"Measured at commit {m['commit']} on {m['date']}, {m['device']} (shared), by "
            "`python -m benchmarks.readme_figures` (benchmarks/results/readme/figures.json); the fits at one "
            "thread, in process CPU time; the rest in wall time on the default threads:")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=RESULTS, help="figures.json to write (or, with --table, read)")
    p.add_argument("--table", action="store_true", help="print the caption and table from --out and stop")
    p.add_argument("--fresh-clone", action="store_true", help="also time install + demo in a fresh clone")
    p.add_argument("--skip-reconstruction", action="store_true", help="leave out reconstruct run --quick")
    args = p.parse_args(argv)
    if args.table:
        figures = json.load(open(args.out))
        print(caption(figures) + "\n\n" + table(figures))
        return
    work = tempfile.mkdtemp(prefix="readme-figures-")
    try:
        figures = dict(machine=machine())
        steps = [("demo", measure_demo), ("fits", measure_fits), ("bench", measure_bench)]
        steps += [] if args.skip_reconstruction else [("reconstruction", measure_reconstruction)]
        steps += [("fresh_clone", measure_fresh_clone)] if args.fresh_clone else []
        for name, step in steps:
            print(f"{name} ...", flush=True)
            figures[name] = step(work)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(figures, fh, indent=2)
        print(caption(figures) + "\n\n" + table(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
