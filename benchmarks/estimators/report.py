"""The study's results as ``results.json``, ``results.md`` and ``results.png``, each with the commit,
device, date and configuration."""
import json
import math
import os

from . import CONVERGED, IOU_GOAL

SMOOTH = 10  # the texture panel's running mean (steps)


def _num(x, fmt=".3f"):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _table(head, rows):
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]) + "\n"


def _header(results):
    m, s = results["meta"], results["settings"]
    cpu = ", ".join(f"{k} {v:.0f} s" for k, v in results["cpu_seconds"].items())
    changed = m.get("changed_files")
    if changed is None:
        state = " (not measured in a git checkout)"
    else:
        state = f" plus uncommitted changes to {', '.join(changed)}" if changed else ""
    return (f"Commit {m['commit']}{state}; {m['cpu'] or m['device']}, {m['cores']} cores, one used; torch "
            f"{m['torch']}, numba {m['numba']}; {m['date']}. Backend "
            f"numba, one thread; times are process CPU time. CPU time per task: {cpu}.\n\n"
            f"Configuration: soft at sigma {', '.join(f'{x:g}' for x in s['sigmas'])} (gamma 1e-4); shape fit "
            f"{s['shape_size']}², {s['shape_steps']} steps; camera fit {s['camera_size']}², {s['camera_steps']} "
            f"steps; texture fit {s['texture_size']}², {s['texture_steps']} steps; reconstruction "
            f"{len(s['recon_categories'])} categories, {s['recon_objects']} training objects each, "
            f"{s['recon_steps']} steps, soft at sigma {', '.join(f'{x:g}' for x in s['recon_sigmas'])}; "
            f"gradient quality {s['quality_supersample']}² samples a pixel, step {s['quality_step_px']} px.\n")


def _shape(r):
    rows = [(k, _num(v["iou_initial"]), _num(v["iou_final"]), v["steps_to_goal"] if v["steps_to_goal"] is not None
             else "not reached", _num(v["cpu_seconds"], ".0f")) for k, v in r.items()]
    return "## 1. Shape to a silhouette (example 2)\n\n" + _table(
        ["estimator", "IoU at the start", "final IoU", f"steps to IoU {IOU_GOAL}", "CPU s"], rows)


def _camera(r):
    first = next(iter(r.values()))
    n = len(first["starts"])
    summary = [(k, f"{round(v['converged_fraction'] * n)} of {n}", _num(v["median_eye_error"]),
                _num(v["cpu_seconds"], ".0f")) for k, v in r.items()]
    head = ["start", "IoU at the start"] + list(r)
    per_start = [[f"{i + 1}. {s['label']}", _num(s["iou_initial"])]
                 + [(_num(v["starts"][i]["eye_error"]) + (" ✓" if v["starts"][i]["converged"] else ""))
                    for v in r.values()] for i, s in enumerate(first["starts"])]
    return ("## 2. Camera pose (example 4)\n\nConverged: the final eye within "
            f"{CONVERGED:.0%} of the true eye's distance from it. Eye error: |eye − true eye| / |true eye|.\n\n"
            + _table(["estimator", "converged", "median eye error", "CPU s"], summary)
            + "\nFinal eye error by start (✓: converged):\n\n" + _table(head, per_start))


def _texture(r):
    rows = [(k, _num(v["error_initial"], ".4f"), _num(v["error_final"], ".4f"), _num(v["error_interior_final"], ".4f"),
             _num(v["error_edge_floor"], ".4f"), _num(v["cpu_seconds"], ".0f")) for k, v in r.items()]
    return ("## 3. Texture (example 3)\n\nSquared RGB distance per teapot pixel, 8 views; the edge floor is what "
            "a perfect texture leaves at the anti-aliased edge.\n\n"
            + _table(["estimator", "error at the start", "final error", "final error, interior pixels",
                      "edge floor", "CPU s"], rows))


def _reconstruction(r):
    first = next(iter(r.values()))
    names = list(first["categories"])
    rows = [[k] + [_num(v["categories"][c]["voxel_iou"][-1]) for c in names] + [_num(v["mean_voxel_iou"][-1]),
            " → ".join(_num(x) for x in v["mean_voxel_iou"]), _num(v["cpu_seconds"], ".0f")] for k, v in r.items()]
    rows.append(["mean shape (baseline)"] + [_num(first["categories"][c]["mean_shape_iou"]) for c in names]
                + [_num(sum(first["categories"][c]["mean_shape_iou"] for c in names) / len(names)), "", ""])
    steps = ", ".join(str(s) for s in first["steps"])
    return ("## 4. Reconstruction from silhouettes (mesh model, one model per category)\n\n"
            f"Voxel IoU on the test objects (4 input views each) after {first['steps'][-1]} steps; the mean after "
            f"{steps} steps.\n\n"
            + _table(["estimator"] + names + ["mean", "mean by round", "CPU s"], rows))


def _quality(r):
    labels = list(r["views"][0]["estimators"]) if r["views"] else []
    rows = []
    for v in r["views"]:
        rows.append([f"{v['case']} (el {v['elevation']:g}, az {v['azimuth']:g})", v["image_size"],
                     _num(v["triangle_px"], ".1f"), v["band_vertices"],
                     f"{_num(v['reference']['cosine'])} / {_num(v['reference']['magnitude'], '.2f')}"]
                    + [f"{_num(v['estimators'][k]['cosine'])} / {_num(v['estimators'][k]['magnitude'], '.2f')}"
                       for k in labels])
    mean = ["mean", "", "", "", ""] + [_num(sum(v["estimators"][k]["cosine"] for v in r["views"]) / len(r["views"]))
                                       for k in labels]
    off = max((v["off_band_max"] / v["band_max"] for v in r["views"] if v["band_max"]), default=0.0)
    return ("## 5. Gradient quality\n\nCosine similarity / magnitude ratio of each estimator's vertex gradient "
            "against the finite-difference gradient of the true (area-coverage) loss. Reference: the finite "
            "differences at twice the step against the step (the reference's own noise). Band: the vertices "
            "differenced (near the outline); the largest finite difference outside it is "
            f"{off:.1e} of the largest inside.\n\n"
            + _table(["case (view)", "image", "triangle px", "band vertices", "reference"] + labels, rows + [mean]))


def _cost(r):
    labels = list(dict.fromkeys(x["estimator"] for x in r["rows"]))
    keys = list(dict.fromkeys((x["image_size"], x["mode"]) for x in r["rows"]))
    by = {(x["image_size"], x["mode"], x["estimator"]): x["cpu_ms"] for x in r["rows"]}
    rows = []
    for size, mode in keys:
        base = by.get((size, mode, "blurred_edge"))
        cells = []
        for k in labels:
            ms = by.get((size, mode, k))
            cells.append("not timed" if ms is None else f"{ms:,.1f}" + (f" ({ms / base:.1f}×)" if base and
                                                                           k != "blurred_edge" else ""))
        rows.append([f"{size}²", mode] + cells)
    skipped = "; ".join(f"soft σ={s['sigma']:g} at {s['image_size']}²" for s in r["skipped"])
    return ("## 6. Cost (forward + backward, CPU)\n\nMilliseconds of process CPU time, median of "
            f"{r['rows'][0]['runs'] if r['rows'] else 0} interleaved runs, the teapot (2,464 faces) anti-aliased "
            "(N² renders (2N)²); in brackets, the ratio to the blurred edge."
            + (f" Not timed: {skipped} (about 10⁸ pixel-face pairs, beyond this machine's memory)." if skipped else "")
            + " No GPU was lent to this run: `python -m benchmarks.gpu` times the analytic and soft rows on one.\n\n"
            + _table(["image", "mode"] + labels, rows))


SECTIONS = {"shape": _shape, "camera": _camera, "texture": _texture, "reconstruction": _reconstruction,
            "quality": _quality, "cost": _cost}


def to_markdown(results):
    """The study as markdown: the header, then one section per task that ran."""
    parts = ["# The gradient estimators side by side (`python -m benchmarks.estimators`)\n", _header(results)]
    parts += [SECTIONS[k](results["tasks"][k]) for k in SECTIONS if k in results["tasks"]]
    return "\n".join(parts) + "\n![the estimators side by side](results.png)\n"


def _colours(labels):
    """blurred_edge black, the soft sigmas in blues (darker: larger), analytic red."""
    import matplotlib
    soft = [k for k in labels if k.startswith("soft")]
    blues = matplotlib.colormaps["Blues"]
    out = {k: blues(0.4 + 0.55 * i / max(1, len(soft) - 1)) for i, k in enumerate(soft)}
    out.update({"blurred_edge": "black", "analytic": "tab:red"})
    return out


def plot(results, path):
    """Six panels, one per task (those that ran), with the commit, device, date and configuration. ->
    False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tasks, m = results["tasks"], results["meta"]
    colour = _colours(results["estimators"])
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    ax = axes.flat
    if "shape" in tasks:
        a = next(ax)
        for k, v in tasks["shape"].items():
            a.plot(v["iou_curve"], color=colour[k], label=k)
        a.axhline(IOU_GOAL, color="grey", lw=0.8, ls=":")
        a.set(title="1. shape (example 2): hard silhouette IoU", xlabel="step", ylabel="IoU")
        a.legend(fontsize=8)
    if "camera" in tasks:
        a = next(ax)
        for j, (k, v) in enumerate(tasks["camera"].items()):
            errors = [s["eye_error"] if s["eye_error"] is not None else float("nan") for s in v["starts"]]
            shift = 0.1 * (j - (len(tasks["camera"]) - 1) / 2)
            a.scatter([i + shift for i in range(len(errors))], errors, color=colour[k], label=k, s=22)
        a.axhline(CONVERGED, color="grey", lw=0.8, ls=":", label=f"converged below {CONVERGED:g}")
        a.set_xticks(range(len(errors)), [str(i + 1) for i in range(len(errors))])
        a.set_yscale("log")
        a.legend(fontsize=7)
        a.set(title="2. camera (example 4): final eye error by start", xlabel="start (numbered as in results.md)",
              ylabel="|eye − true| / |true|")
    if "texture" in tasks:
        a = next(ax)
        for k, v in tasks["texture"].items():  # a random view each step: the running mean of SMOOTH steps
            losses = v["loss_curve"]
            n = min(SMOOTH, len(losses))
            mean = [sum(losses[i:i + n]) / n / losses[0] for i in range(len(losses) - n + 1)]
            a.plot(range(n - 1, len(losses)), mean, color=colour[k], label=f"{k}: error {v['error_final']:.4f}")
        a.set_yscale("log")
        a.set(title=f"3. texture (example 3): loss / first loss, mean of {SMOOTH} steps", xlabel="step")
        a.legend(fontsize=8)
    if "reconstruction" in tasks:
        a = next(ax)
        first = None
        for k, v in tasks["reconstruction"].items():
            a.plot(v["steps"], v["mean_voxel_iou"], marker="o", color=colour[k], label=k)
            first = v
        if first:
            names = list(first["categories"])
            base = sum(first["categories"][c]["mean_shape_iou"] for c in names) / len(names)
            a.axhline(base, color="grey", lw=0.8, ls="--", label="mean shape")
        a.set(title="4. reconstruction: mean voxel IoU, " + ", ".join(first["categories"]) if first else "",
              xlabel="training step", ylabel="voxel IoU")
        a.legend(fontsize=8)
    if "quality" in tasks and tasks["quality"]["views"]:
        a = next(ax)
        views = tasks["quality"]["views"]
        ks = list(views[0]["estimators"])
        width = 0.8 / len(ks)
        for j, k in enumerate(ks):
            a.bar([i + j * width for i in range(len(views))], [v["estimators"][k]["cosine"] for v in views],
                  width, color=colour[k], label=k)
        a.scatter([i + 0.4 - width / 2 for i in range(len(views))], [v["reference"]["cosine"] for v in views],
                  marker="_", color="grey", s=200, label="reference noise")
        a.set_xticks([i + 0.4 - width / 2 for i in range(len(views))],
                     [f"{v['case']}, az {v['azimuth']:g}\n(triangles {v['triangle_px']:.1f} px)" for v in views],
                     fontsize=7, rotation=30, ha="right")
        a.set(title="5. gradient quality: cosine with the true gradient", ylim=(-1, 1.05))
        a.axhline(0, color="grey", lw=0.6)
    if "cost" in tasks:
        a = next(ax)
        rows = [r for r in tasks["cost"]["rows"] if r["mode"] == "silhouettes"]
        for k in dict.fromkeys(r["estimator"] for r in rows):
            sel = [r for r in rows if r["estimator"] == k]
            a.plot([r["image_size"] for r in sel], [r["cpu_ms"] for r in sel], marker="o", color=colour[k], label=k)
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set(title="6. cost: silhouettes, forward + backward (numba, 1 thread)", xlabel="image size N (N²)",
              ylabel="CPU ms")
    for a in ax:
        a.axis("off")
    fig.suptitle(f"tritonnmr gradient estimators, commit {m['commit']}, {m['cpu'] or m['device']} (numba, one "
                 f"thread), {m['date']}\n"
                 f"{results['configuration']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results, out):
    """results.json, results.md and results.png in ``out`` -> the paths written."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, n) for n in ("results.json", "results.md", "results.png")]
    with open(paths[0], "w") as fh:
        json.dump(results, fh, indent=1)
    with open(paths[1], "w") as fh:
        fh.write(to_markdown(results))
    return paths if plot(results, paths[2]) else paths[:2]
