"""Wall time of reconstruction training on one process against several, on this machine's CPU cores.

    .venv/bin/python tools/reconstruction_scaling.py OUT_DIR [--repeats 3] [--steps 200] [--models mesh,voxel]

Cases (the --quick configuration, 200 steps at its batch of 16):
  one category    `reconstruct train --categories car`: 1 process x 2 threads against
                  `torchrun --nproc-per-node 2` x 1 thread (DistributedDataParallel, 8 objects a rank);
  per category    `reconstruct train --per-category` over 4 categories: the same two launches (the
                  2 ranks train 2 categories each).
Each launch runs from scratch (--restart) and is timed whole (start-up included); the repeats of the
two launches alternate, so a busy machine slows both alike, and medians are reported. Writes
OUT_DIR/results.json and results.md, and prints the table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from tritonnmr.bench.provenance import metadata
from tritonnmr.reconstruction import checkpoints
from tritonnmr.reconstruction.per_category import model_path
from tritonnmr.reconstruction.shapes import CATEGORIES

CLI = [sys.executable, "-m", "tritonnmr.cli", "reconstruct"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
            "tritonnmr.cli", "reconstruct"]
ONE = "car"
FOUR = ["airplane", "car", "chair", "table"]
LAUNCHES = {"1 rank x 2 threads": (CLI, 2), "2 ranks x 1 thread": (TORCHRUN, 1)}


def _timed(command, env):
    """-> wall seconds of ``command``; raises with its stderr's tail when it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def _train_command(prefix, threads, kind, data, out, steps, per_category):
    categories = ",".join(FOUR) if per_category else ONE
    return prefix + ["train", "--model", kind, "--quick", "--iterations", str(steps), "--data", data, "--out", out,
                     "--categories", categories, "--threads", str(threads), "--restart"] + \
        (["--per-category"] if per_category else [])


def _checkpoints(out, kind, per_category):
    by_name = {name: c for c, (name, _) in CATEGORIES.items()}
    if per_category:
        return [checkpoints.read_checkpoint(model_path(out, by_name[n], kind)) for n in FOUR]
    return [checkpoints.read_checkpoint(os.path.join(out, f"{kind}.pt"))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--models", default="mesh,voxel")
    args = parser.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS="1")  # --threads sets each launch's threads
    work = tempfile.mkdtemp(prefix="recon-scaling-")
    data = os.path.join(work, "data")
    subprocess.run(CLI + ["make-data", "--quick", "--categories", ",".join(FOUR), "--out", data], env=env,
                   check=True, capture_output=True)
    rows = []
    for kind in args.models.split(","):
        for per_category in (False, True):
            times = {name: [] for name in LAUNCHES}
            loads, trained = [], {}
            for _ in range(args.repeats):
                for name, (prefix, threads) in LAUNCHES.items():
                    out = os.path.join(work, kind, str(per_category), name.split()[0])
                    loads.append(os.getloadavg()[0])
                    times[name].append(_timed(_train_command(prefix, threads, kind, data, out, args.steps,
                                                             per_category), env))
                    ckpts = _checkpoints(out, kind, per_category)
                    trained[name] = {"steps": [c["iteration"] for c in ckpts],
                                     "train_loop_seconds": round(sum(c["history"]["seconds"] for c in ckpts), 1),
                                     "final_iou_last_20_steps": [round(sum(c["history"]["iou"][-20:]) / 20, 4)
                                                                 for c in ckpts]}
                    print(f"{kind} {'per-category x4' if per_category else 'one category'} {name}: "
                          f"{times[name][-1]:.1f} s", flush=True)
            medians = {name: statistics.median(t) for name, t in times.items()}
            one, two = medians["1 rank x 2 threads"], medians["2 ranks x 1 thread"]
            rows.append({"model": kind, "case": f"per category, {len(FOUR)} categories" if per_category else
                         "one category", "wall_seconds": times, "median_wall_seconds": medians,
                         "speed_up_2_ranks": round(one / two, 2), "load_average_1min": loads, "trained": trained})
    meta = metadata(torch.device("cpu"))
    result = {"commit": meta["commit"], "date": meta["date"], "device": meta["device"], "cores": os.cpu_count(),
              "torch": torch.__version__, "steps": args.steps, "repeats": args.repeats,
              "configuration": "--quick (batch 16, width 16, dim 128, anti-aliased 64x64 silhouettes, numba backend)",
              "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    lines = [f"Reconstruction training, --quick, {args.steps} steps; {result['device']}, {result['cores']} cores; "
             f"median of {args.repeats} launches each (start-up included); commit {meta['commit']}.", "",
             "| model | case | 1 rank x 2 threads | 2 ranks x 1 thread | speed-up |", "|---|---|---|---|---|"]
    for row in rows:
        m = row["median_wall_seconds"]
        lines.append(f"| {row['model']} | {row['case']} | {m['1 rank x 2 threads']:.1f} s | "
                     f"{m['2 ranks x 1 thread']:.1f} s | {row['speed_up_2_ranks']:.2f}x |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
