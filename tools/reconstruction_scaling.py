"""Wall time of reconstruction training on one process against several, on this machine's CPU cores.

    .venv/bin/python tools/reconstruction_scaling.py OUT_DIR [--repeats 3] [--steps 200] [--models mesh,voxel]

Cases (the --quick configuration, 200 steps at its batch of 16):
  one category    `reconstruct train --categories car`: 1 process x 2 threads against
                  `torchrun --nproc-per-node 2` x 1 thread (DistributedDataParallel, 8 objects a rank);
  per category    `reconstruct train --per-category` over 4 categories: the same two launches (the
                  2 ranks train 2 categories each).
Each launch runs from scratch (--restart) and is timed whole (start-up included), and its training loop
alone (from the checkpoints); the repeats of the two launches alternate, so a busy machine slows both
alike, and each waits (--patience seconds at most) for the machine's load to fall to --quiet-load; the
best (least disturbed) and the median of the repeats are reported, with the load at each start. Writes OUT_DIR/<model>.json for the models measured and results.md
for every <model>.json in OUT_DIR (so the models can be measured in separate runs), and prints it.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from tritonnmr.bench.provenance import metadata
from tritonnmr.apps.reconstruction import checkpoints
from tritonnmr.apps.reconstruction.per_category import model_path
from tritonnmr.apps.reconstruction.shapes import CATEGORIES

CLI = [sys.executable, "-m", "tritonnmr.apps.cli", "reconstruct"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
            "tritonnmr.apps.cli", "reconstruct"]
ONE = "car"
FOUR = ["airplane", "car", "chair", "table"]
LAUNCHES = {"1 rank x 2 threads": (CLI, 2), "2 ranks x 1 thread": (TORCHRUN, 1)}


def _cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command, env):
    """-> (wall seconds, CPU seconds of all its processes) of ``command``; raises with its stderr's tail
    when it fails."""
    start, cpu = time.perf_counter(), _cpu_of_children()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, _cpu_of_children() - cpu


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


def _wait_for_quiet(threshold, patience):
    """Wait (up to ``patience`` seconds) for the 1-minute load average to fall to ``threshold``; -> the load."""
    began = time.time()
    while os.getloadavg()[0] > threshold and time.time() - began < patience:
        time.sleep(10)
    return os.getloadavg()[0]


def _measure(kind, per_category, data, work, args, env):
    """One table row: every repeat of the two launches, alternating."""
    times, cpus, loops = ({name: [] for name in LAUNCHES} for _ in range(3))
    loads, trained = [], {}
    for _ in range(args.repeats):
        for name, (prefix, threads) in LAUNCHES.items():
            out = os.path.join(work, kind, str(per_category), name.split()[0])
            loads.append(_wait_for_quiet(args.quiet_load, args.patience))
            wall, cpu = _timed(_train_command(prefix, threads, kind, data, out, args.steps, per_category), env)
            times[name].append(wall)
            cpus[name].append(cpu)
            ckpts = _checkpoints(out, kind, per_category)
            ranks = 2 if prefix is TORCHRUN else 1  # rank r trained categories r, r + 2, ...: they ran side by side
            loops[name].append(max(sum(c["history"]["seconds"] for c in ckpts[r::ranks]) for r in range(ranks)))
            trained[name] = {"steps": [c["iteration"] for c in ckpts],
                             "mean_soft_iou_last_20_steps": [round(sum(c["history"]["iou"][-20:]) / 20, 4)
                                                             for c in ckpts]}
            print(f"{kind} {'per-category x4' if per_category else 'one category'} {name}: {wall:.1f} s, CPU "
                  f"{cpu:.1f} s (training loop {loops[name][-1]:.1f} s), load {loads[-1]:.1f}", flush=True)
    one, two = LAUNCHES
    row = {"model": kind, "case": f"per category, {len(FOUR)} categories" if per_category else "one category",
           "repeats": args.repeats, "wall_seconds": times, "cpu_seconds": cpus, "training_loop_seconds": loops,
           "median_cpu_seconds": {n: statistics.median(t) for n, t in cpus.items()},
           "load_average_1min": loads, "trained": trained}
    for label, pick in (("best", min), ("median", statistics.median)):
        launch, loop = ({n: pick(t) for n, t in d.items()} for d in (times, loops))
        row[f"{label}_wall_seconds"], row[f"{label}_training_loop_seconds"] = launch, loop
        row[f"{label}_speed_up_2_ranks"] = round(launch[one] / launch[two], 2)
        row[f"{label}_speed_up_2_ranks_training_loop"] = round(loop[one] / loop[two], 2)
    return row


def _table(out):
    """results.md from every OUT/<model>.json there."""
    runs = [json.load(open(os.path.join(out, n))) for n in sorted(os.listdir(out)) if n.endswith(".json")
            and n != "results.json"]
    first = runs[0]
    one, two = LAUNCHES
    lines = [f"Reconstruction training, `--quick` (batch 16 in all, so 8 a rank on two ranks), {first['steps']} steps "
             f"from scratch; {first['device']}, {first['cores']} cores, shared with other work (the 1-minute load "
             "average at each launch's start is in the JSON files). The two launches alternate; the best of the "
             "repeats (the least disturbed) and, in brackets, their median.", "",
             f"| model | case | repeats | {one}: launch / training loop | {two}: launch / training loop "
             "| speed-up of 2 ranks: launch / loop | CPU of a launch, 1 rank / 2 ranks | commit |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for row in run["rows"]:
            b, m = "best", "median"

            def cell(name):
                return (f"{row[b + '_wall_seconds'][name]:.1f} s / {row[b + '_training_loop_seconds'][name]:.1f} s "
                        f"({row[m + '_wall_seconds'][name]:.0f} / {row[m + '_training_loop_seconds'][name]:.0f})")
            lines.append(f"| {row['model']} | {row['case']} | {row['repeats']} | {cell(one)} | {cell(two)} | "
                         f"{row[b + '_speed_up_2_ranks']:.2f}x / {row[b + '_speed_up_2_ranks_training_loop']:.2f}x "
                         f"({row[m + '_speed_up_2_ranks']:.2f} / {row[m + '_speed_up_2_ranks_training_loop']:.2f}) | "
                         f"{row['median_cpu_seconds'][one]:.0f} s / {row['median_cpu_seconds'][two]:.0f} s | "
                         f"{run['commit']} |")
    lines += ["", "Launch: the whole command, start-up included (torchrun's agent and two Python processes that "
              "import torch, against one). Training loop: the steps alone (rank 0's clock; per category, the sum over "
              "the categories a rank trained, for the rank that took longest; on several ranks, rank 0 has compiled "
              "the kernels before its clock starts). CPU: user + system time of all the launch's processes "
              "(median), which a busy machine changes less than wall time."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(text)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--models", default="mesh,voxel")
    parser.add_argument("--quiet-load", type=float, default=1.0,
                        help="before each launch, wait for the 1-minute load average to fall to this")
    parser.add_argument("--patience", type=float, default=300, help="seconds to wait for it at most")
    args = parser.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS="1")  # --threads sets each launch's threads
    work = tempfile.mkdtemp(prefix="recon-scaling-")
    data = os.path.join(work, "data")
    subprocess.run(CLI + ["make-data", "--quick", "--categories", ",".join(FOUR), "--out", data], env=env,
                   check=True, capture_output=True)
    meta = metadata(torch.device("cpu"))
    os.makedirs(args.out, exist_ok=True)
    for kind in args.models.split(","):
        rows = [_measure(kind, per_category, data, work, args, env) for per_category in (False, True)]
        with open(os.path.join(args.out, f"{kind}.json"), "w") as fh:
            json.dump({"commit": meta["commit"], "date": meta["date"], "device": meta["device"],
                       "cores": os.cpu_count(), "torch": torch.__version__, "steps": args.steps,
                       "configuration": "--quick (batch 16, width 16, dim 128, anti-aliased 64x64 silhouettes, "
                                        "the two-view loss, numba backend)", "rows": rows}, fh, indent=2)
    print(_table(args.out), end="")


if __name__ == "__main__":
    main()
