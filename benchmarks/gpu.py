"""On a GPU, run this first: every GPU check of tritonnmr in one command, results in one folder.

    python -m benchmarks.gpu [--out DIR] [--budget SECONDS]      (from the repository root)

Needs a CUDA machine with torch and triton (and pytest, hypothesis, numba for the tests); nothing is
installed or downloaded, so it runs where no package registry can be reached. In about 8 minutes on an
H100 / H200, compilation included, it

1. runs the tests that compare ``backend="triton"`` with ``"torch"`` on CUDA tensors (the kernels
   compiled, not interpreted): the Blender teapot pixel for pixel, every blurred-edge case, the
   degenerate and empty inputs, mixed-size batches through the Renderer, property-based scenes, the
   bit-identical backward, autocast in float16 and bfloat16, and CUDA's own count of host syncs in a
   training step;
2. times the benchmark grid (tritonnmr/bench/cases.py): the Triton kernels against the torch reference and
   the pixel-loop forward, and PyTorch3D and nvdiffrast where they are installed (a one-line notice
   each where not), within the time left;
3. writes ``benchmarks/results/gpu-<date>-<device>/``: results.json (device, commit, triton and torch
   versions, the tests' outcome, every timing), results.md and results.png.

Without CUDA it says so in one line and exits with status 2. Exit status 1 when a test failed.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = ["tests/test_triton.py", "tests/test_gpu_readiness.py", "tests/test_backend_fuzz.py",
         "tests/test_pipeline.py::test_a_list_of_meshes_renders_and_differentiates_as_each_alone"]
BUDGET = 480       # seconds for the whole check (8 minutes)
TEST_SHARE = 0.55  # of the budget for the tests; the benchmark gets what is left


def _folder(device_name):
    return f"gpu-{time.strftime('%Y-%m-%d')}-" + re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-").lower()


def metadata():
    """Where and with what the check ran."""
    from tritonnmr.bench.provenance import metadata as base
    import triton
    props = torch.cuda.get_device_properties(0)
    return dict(base(torch.device("cuda")), triton=triton.__version__, python=platform.python_version(),
                capability=f"sm_{props.major}{props.minor}", multiprocessors=props.multi_processor_count,
                memory_gb=round(props.total_memory / 2 ** 30, 1), cuda=torch.version.cuda)


def run_tests(out, seconds):
    """pytest on TESTS in a child process (JUnit XML into ``out``): {passed, failed, skipped, errors,
    seconds, failures: [first line of each]}."""
    report = os.path.join(out, "tests.xml")
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
               "-W", "ignore::pytest.PytestUnknownMarkWarning"] + TESTS
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds,
                              env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
        tail = done.stdout[-3000:]
    except subprocess.TimeoutExpired as expired:
        tail = (expired.stdout or b"")[-3000:]
        tail = tail.decode() if isinstance(tail, bytes) else tail
        tail += f"\n(stopped after {seconds:.0f} s)"
    result = dict(passed=0, failed=0, skipped=0, errors=0, seconds=round(time.perf_counter() - start, 1),
                  failures=[], output_tail=tail)
    if os.path.exists(report):
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            kinds = {child.tag for child in case}
            if "failure" in kinds or "error" in kinds:
                node = case.find("failure") if "failure" in kinds else case.find("error")
                result["failed" if "failure" in kinds else "errors"] += 1
                result["failures"].append(f"{name}: {(node.get('message') or '').splitlines()[0][:300]}")
            elif "skipped" in kinds:
                result["skipped"] += 1
            else:
                result["passed"] += 1
    else:
        result["errors"] += 1
        result["failures"].append("pytest wrote no report (see output_tail)")
    return result


def gpu_cases():
    """The GPU grid of tritonnmr/bench/cases.py, ordered so that the most telling cases come first."""
    from tritonnmr import bench
    cases = bench.grid(False, torch.device("cuda"))
    order = {"teapot": 0, "sphere": 1}
    return sorted(cases, key=lambda c: (c.batch > 1, order[c.mesh], c.faces, c.image_size, c.raster != "binned"))


def run_benchmark(seconds, log):
    """Rows of the benchmark cases that fit in ``seconds`` (with the peers' rows), and notices."""
    from tritonnmr import bench
    device = torch.device("cuda")
    cases = gpu_cases()
    peers, notices = bench.peer_cases(cases, device)
    cases += peers
    rows, start, skipped = [], time.perf_counter(), 0
    for case in cases:
        if time.perf_counter() - start > seconds:
            skipped += 1
            continue
        try:
            rows.append(bench.run_case(case, device, repeats=5))
        except torch.cuda.OutOfMemoryError:
            notices.append(f"out of memory: {case}")
            torch.cuda.empty_cache()
        except Exception as error:  # noqa: BLE001 -- a peer or a case failing is reported, not fatal
            notices.append(f"{case.backend} {case.mesh} {case.image_size}: {type(error).__name__}: {error}")
        log(f"  {len(rows)}/{len(cases)} cases timed")
    if skipped:
        notices.append(f"{skipped} of {len(cases)} cases skipped: over the time budget")
    return bench.add_speedups(rows), notices


def to_markdown(meta, tests, rows, notices):
    from tritonnmr import bench
    lines = [f"# GPU check: {meta['device']} ({meta['capability']}, {meta['multiprocessors']} SMs)", "",
             f"commit {meta['commit']}, {meta['date']}; torch {meta['torch']} (CUDA {meta['cuda']}), "
             f"triton {meta['triton']}, Python {meta['python']}", "",
             f"## Tests: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
             f"{tests['skipped']} skipped ({tests['seconds']} s)", ""]
    lines += [f"- {f}" for f in tests["failures"]] or ["All passed."]
    lines += ["", "## Benchmark", ""] + [f"- {n}" for n in notices] + ["", bench.to_markdown(rows, meta)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="results folder (default benchmarks/results/gpu-<date>-<device>)")
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds for the whole check")
    parser.add_argument("--skip-tests", action="store_true", help="the benchmark only")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("python -m benchmarks.gpu: no CUDA GPU here (torch.cuda.is_available() is False); nothing was run",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    sys.path.insert(0, ROOT)
    meta = metadata()
    out = args.out or os.path.join(ROOT, "benchmarks", "results", _folder(meta["device"]))
    os.makedirs(out, exist_ok=True)
    log = lambda message: print(f"[{time.perf_counter() - start:5.0f} s] {message}", flush=True)  # noqa: E731
    log(f"{meta['device']}, torch {meta['torch']}, triton {meta['triton']}, commit {meta['commit']} -> {out}")
    tests = dict(passed=0, failed=0, skipped=0, errors=0, seconds=0, failures=["not run (--skip-tests)"])
    if not args.skip_tests:
        log(f"1/2 tests on CUDA: {' '.join(TESTS)}")
        tests = run_tests(out, args.budget * TEST_SHARE)
        log(f"    {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, {tests['skipped']} skipped")
        for failure in tests["failures"]:
            log(f"    {failure}")
    log("2/2 benchmark")
    rows, notices = run_benchmark(max(args.budget - (time.perf_counter() - start) - 15, 30), log)
    for notice in notices:
        log(f"    {notice}")
    from tritonnmr import bench
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"meta": meta, "tests": tests, "notices": notices, "rows": rows}, fh, indent=1)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(to_markdown(meta, tests, rows, notices))
    bench.plot(rows, os.path.join(out, "results.png"))
    log(f"wrote {out}/results.json, results.md, results.png")
    return 1 if tests["failed"] or tests["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
