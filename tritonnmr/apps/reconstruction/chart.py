"""A grouped bar chart of per-category scores (matplotlib, when installed)."""
import numpy as np


def bar_chart(scores, ylabel, path):
    """scores: {category: {series: value}} (every category with the same series) -> a PNG at ``path``.
    -> True, or False when matplotlib is missing (nothing written)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(scores)
    series = list(scores[names[0]]) if names else []
    x = np.arange(len(names))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(10, 4))
    for n, key in enumerate(series):
        ax.bar(x + (n - (len(series) - 1) / 2) * width, [scores[c][key] for c in names], width, label=key)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
