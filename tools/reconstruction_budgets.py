"""One table of a per-category reconstruction experiment evaluated at several training budgets.

    .venv/bin/python tools/reconstruction_budgets.py OUT.md LABEL=RESULTS_DIR [LABEL=RESULTS_DIR ...]

Each RESULTS_DIR holds the results.json of ``tritonnmr reconstruct eval --per-category`` for one
budget (e.g. ``"1000 steps=results/reconstruction/per-category/steps-1000"``); the table (mean IoU per
model, categories won, training CPU time) is printed and written to OUT.md.
"""
import json
import os
import sys

from tritonnmr.apps.reconstruction.report import budget_table


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        raise SystemExit(__doc__)
    runs = {}
    for arg in argv[1:]:
        label, directory = arg.split("=", 1)
        with open(os.path.join(directory, "results.json")) as fh:
            runs[label] = json.load(fh)
    text = "\n".join(budget_table(runs)) + "\n"
    with open(argv[0], "w") as fh:
        fh.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
