"""The benchmark's results as a table, a plot and JSON."""
import json
import os


def backend_label(row):
    """The backend's name, with the strategy for z-buffer rows ("triton (face z-buffer)")."""
    if row.get("stage", "render") == "z-buffer":
        return f"{row['backend']} ({row.get('raster', 'binned')} z-buffer)"
    if row.get("gradient", "blurred_edge") == "soft":
        return f"{row['backend']} (soft, sigma {row['sigma']:g})"
    if row.get("gradient", "blurred_edge") != "blurred_edge":
        return f"{row['backend']} ({row['gradient']})"
    return row["backend"]


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


def write_work_model(out, quick=False):
    """``tritonnmr bench --work``: the work model's table, plot and JSON in ``out``."""
    from . import workmodel
    _, markdown, plotted = workmodel.main(out, quick)
    print(markdown)
    print(f"wrote {out}/results.json, results.md" + (", results.png" if plotted else " (no matplotlib: no plot)"))
    return 0
