"""The evaluation's report: results.json, results.md (a table) and results.png (a bar chart)."""
import json
import os

import numpy as np

from .chart import bar_chart

TITLES = {"mesh_iou": "mesh (ours)", "voxel_iou": "voxel (PTN-style)", "mean_shape_iou": "mean shape"}


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} min"


def _times_table(times):
    """Markdown lines: training wall and CPU seconds per category and model, and their totals."""
    kinds = [k for k in ("mesh", "voxel") if all(k in t for t in times.values())]
    lines = ["| category | " + " | ".join(f"{k} training, wall / CPU" for k in kinds) + " |",
             "|---" * (len(kinds) + 1) + "|"]
    total = {k: [0.0, 0.0] for k in kinds}
    for name, row in times.items():
        for k in kinds:
            total[k] = [total[k][0] + row[k][0], total[k][1] + row[k][1]]
        lines.append(f"| {name} | " + " | ".join(f"{_duration(row[k][0])} / {_duration(row[k][1])}" for k in kinds)
                     + " |")
    lines.append("| **total** | " + " | ".join(f"{_duration(total[k][0])} / {_duration(total[k][1])}" for k in kinds)
                 + " |")
    return lines


def write_report(categories, config, out_dir, device, commit, extra=None, times=None):
    """Write results.json, results.md and results.png (bar chart) to ``out_dir``; -> the JSON dict.

    categories: {name: {'mesh_iou': x, 'voxel_iou': y, 'mean_shape_iou': z}} (as :func:`.evaluation.evaluate`
    gives); config, device, commit and ``extra`` are recorded in results.json. ``times``
    ({name: {kind: (wall seconds, CPU seconds)}}, per-category models) adds a table of training times."""
    os.makedirs(out_dir, exist_ok=True)
    keys = [k for k in ("mesh_iou", "voxel_iou", "mean_shape_iou") if all(k in r for r in categories.values())]
    mean = {k: float(np.mean([r[k] for r in categories.values()])) for k in keys}
    result = {"config": config, "commit": commit, "device": device, "categories": categories, "mean": mean,
              **(extra or {})}
    if times:
        result["train_seconds"] = {name: {k: {"wall": w, "cpu": c} for k, (w, c) in row.items()}
                                   for name, row in times.items()}
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    lines = ["| category | " + " | ".join(TITLES[k] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in list(categories.items()) + [("**mean**", mean)]:
        best = max(row[k] for k in keys)
        lines.append(f"| {name} | " + " | ".join((f"**{row[k]:.3f}**" if row[k] == best else f"{row[k]:.3f}")
                                                 for k in keys) + " |")
    if "mesh_iou" in keys and "voxel_iou" in keys:
        wins = sum(r["mesh_iou"] > r["voxel_iou"] for r in categories.values())
        lines.append(f"\nThe mesh model beats the voxel model in {wins} of {len(categories)} categories.")
    if times:
        lines += ["", "Training time per model (this process's wall clock / CPU time):", ""] + _times_table(times)
    with open(os.path.join(out_dir, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    bar_chart({name: {TITLES[k]: row[k] for k in keys} for name, row in categories.items()}, "voxel IoU",
              os.path.join(out_dir, "results.png"))
    return result


def budget_table(runs):
    """Markdown lines comparing evaluations of one experiment at several training budgets.

    runs: {label (e.g. '1000 steps'): results.json dict of a per-category evaluation}. Per budget:
    mean IoU of each model and of the mean shape, in how many categories the mesh model beats the
    voxel model, in how many each model beats the mean shape, and the total training CPU time."""
    lines = ["| budget | mesh (ours) | voxel (PTN-style) | mean shape | mesh beats voxel | mesh beats mean shape "
             "| voxel beats mean shape | training CPU, mesh / voxel |", "|---" * 8 + "|"]
    for label, result in runs.items():
        rows = result["categories"].values()
        mean = result["mean"]
        count = lambda a, b: sum(r[a] > r[b] for r in rows)  # noqa: E731
        cpu = {k: sum(t[k]["cpu"] for t in result.get("train_seconds", {}).values()) for k in ("mesh", "voxel")}
        lines.append(f"| {label} | {mean['mesh_iou']:.3f} | {mean['voxel_iou']:.3f} | {mean['mean_shape_iou']:.3f} "
                     f"| {count('mesh_iou', 'voxel_iou')} of {len(rows)} | {count('mesh_iou', 'mean_shape_iou')} "
                     f"| {count('voxel_iou', 'mean_shape_iou')} | {_duration(cpu['mesh'])} / {_duration(cpu['voxel'])} |")
    return lines
