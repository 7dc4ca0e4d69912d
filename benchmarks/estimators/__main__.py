"""``python -m benchmarks.estimators [--quick] [--only TASK ...] [--out DIR]`` (from the repository root).

Without ``--quick``: about an hour of CPU on one thread; writes ``benchmarks/results/estimators-<date>/``.
``--quick`` is the same study at toy sizes (a minute or two), into ``out/estimators-quick/``.
"""
import argparse
import os
import sys
import time
from dataclasses import replace

from . import FULL, QUICK, estimators
from .study import configuration_line, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.estimators", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="toy sizes and budgets: checks the plumbing in a minute or two")
    p.add_argument("--only", nargs="+", choices=FULL.tasks, default=None, help="run these tasks only")
    p.add_argument("--out", default=None, help="results folder (default: benchmarks/results/estimators-<date>/, "
                   "or out/estimators-quick/ with --quick)")
    p.add_argument("--work", default=os.path.join(ROOT, "out", "estimators-work"),
                   help="the reconstruction's dataset and checkpoints (not results)")
    args = p.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.only:
        settings = replace(settings, tasks=tuple(args.only))
    out = args.out or (os.path.join(ROOT, "out", "estimators-quick") if args.quick else
                       os.path.join(ROOT, "benchmarks", "results", f"estimators-{time.strftime('%Y-%m-%d')}"))
    work = args.work + ("-quick" if args.quick else "")
    print(f"estimators: {', '.join(e.label for e in estimators(settings.sigmas))}; {configuration_line(settings)}")
    paths = run(settings, out, work, progress=print)
    print("wrote " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
