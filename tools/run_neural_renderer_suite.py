#!/usr/bin/env python
"""Run neural_renderer 1.1.3's own tests and examples against tritonnmr, and report.

    python tools/run_neural_renderer_suite.py PATH/TO/neural_renderer [--out DIR] [--max-steps N]

PATH is a checkout of github.com/daniilidis-group/neural_renderer (its ``tests/`` and
``examples/`` are used; its package is not). Nothing of it is copied into this repository: its
test and example files are copied into a scratch folder (``DIR/work``, since they write their
outputs beside themselves) and run there, each in a fresh child process in which

* ``import neural_renderer`` gives ``tritonnmr`` (``sys.modules`` alias);
* without CUDA, ``Tensor.cuda()`` and ``Module.cuda()`` return their argument unchanged;
* without scikit-image, ``skimage.io.imread``/``imsave`` are provided through imageio
  (imsave writes floats in [0, 1] as ``round(255 x)`` uint8, clipped);
* the examples' fixed ``/tmp/_tmp_*.png`` frame files go to a private folder instead, so that two
  runs on one machine do not mix their frames;
* ``--backend NAME`` makes NAME the default backend of every ``Renderer`` they create;
* ``--max-steps N`` cuts every ``tqdm`` loop (the examples' optimisation and drawing loops) to its
  first N items, for a quick run; the report says so.

Then it compares renders with the reference images shipped in the checkout (``teapot_blender.png``,
``test_depth.png``, ``example4_init.png``, ``example4_ref.png``; example 2's and 4's fitted
silhouettes against ``example2_ref.png`` and ``example4_ref.png``; example 3's result against its
target ``example3_ref.png``), as mean and max absolute difference in 1/255, and writes
``DIR/report.json`` and ``DIR/report.md`` and prints the latter.
"""
import argparse
import glob
import importlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
import unittest

EXAMPLES = {
    1: ("example1.py", ["example1.gif"]),
    2: ("example2.py", ["example2_optimization.gif", "example2_result.gif"]),
    3: ("example3.py", ["example3_result.gif"]),
    4: ("example4.py", ["example4_result.gif"]),
}
TMP_PREFIX = "/tmp/_tmp_"  # the examples write their GIF frames here
_RESULTS = itertools.count()


# ----------------------------------------------------------------------------------------------
# run-time patches (child processes only)
# ----------------------------------------------------------------------------------------------
def _to_uint8(image):
    """skimage-style conversion for writing: floats in [0, 1] -> round(255 x), bool -> 0/255."""
    import numpy as np
    image = np.asarray(image)
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if image.dtype.kind == "f":
        return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return image


def _skimage_shim():
    """A module ``skimage.io`` with imread/imsave on top of imageio (used when skimage is absent)."""
    import imageio.v3 as iio
    import numpy as np

    skimage = types.ModuleType("skimage")
    io = types.ModuleType("skimage.io")
    io.imread = lambda fname, *args, **kwargs: np.asarray(iio.imread(fname))
    io.imsave = lambda fname, arr, *args, **kwargs: iio.imwrite(fname, _to_uint8(arr))
    skimage.io = io
    skimage.__path__ = []  # a package, so `from skimage.io import x` works
    sys.modules["skimage"], sys.modules["skimage.io"] = skimage, io


def install_patches(private_tmp, max_steps=None, backend=None):
    """Make neural_renderer's files run against tritonnmr in this process (see the module doc)."""
    import functools

    import torch

    import tritonnmr
    sys.modules["neural_renderer"] = tritonnmr
    if backend is not None:  # the default backend of every Renderer the scripts make
        init = tritonnmr.Renderer.__init__

        @functools.wraps(init)
        def renderer_init(self, *args, **kwargs):
            kwargs.setdefault("backend", backend)
            init(self, *args, **kwargs)
        tritonnmr.Renderer.__init__ = renderer_init
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    if importlib.util.find_spec("skimage") is None:
        _skimage_shim()
    import skimage.io

    def remap(path):
        path = os.fspath(path)
        return os.path.join(private_tmp, path[len("/tmp/"):]) if path.startswith(TMP_PREFIX) else path

    imsave, imread, real_glob = skimage.io.imsave, skimage.io.imread, glob.glob
    skimage.io.imsave = lambda fname, arr, *a, **k: imsave(remap(fname), _to_uint8(arr), *a, **k)
    skimage.io.imread = lambda fname, *a, **k: imread(remap(fname), *a, **k)
    glob.glob = lambda pattern, *a, **k: real_glob(remap(pattern), *a, **k)

    import tqdm
    real_tqdm = tqdm.tqdm

    def quiet_tqdm(iterable=None, *args, **kwargs):
        if max_steps is not None and iterable is not None:
            iterable = list(iterable)[:max_steps]
        kwargs["disable"] = True
        return real_tqdm(iterable, *args, **kwargs)
    tqdm.tqdm = quiet_tqdm


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Recorder(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.records, self._start = [], 0.0

    def startTest(self, test):
        super().startTest(test)
        self._start = time.time()

    def _add(self, test, status, err=None):
        why = ""
        if err is not None:
            lines = "".join(traceback.format_exception(*err)).strip().splitlines()
            why = lines[-1]
            where = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
            if where:
                why += "  [at " + where[-1] + "]"
        self.records.append({"test": test.id(), "status": status, "why": why,
                             "seconds": round(time.time() - self._start, 2)})

    def addSuccess(self, test):
        super().addSuccess(test)
        self._add(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._add(test, "fail", err)

    def addError(self, test, err):
        super().addError(test, err)
        self._add(test, "error", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.records.append({"test": test.id(), "status": "skip", "why": reason, "seconds": 0.0})


def child_test(path):
    """Run one neural_renderer test module; return one record per test."""
    sys.path.insert(0, os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return [{"test": name, "status": "error", "why": f"import failed: {exc!r}", "seconds": 0.0}]
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = _Recorder()
    suite.run(result)
    return result.records


def child_example(path):
    """Run one example's main() with its default arguments (outputs beside it, in examples/data)."""
    import runpy
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(path))
    start = time.time()
    runpy.run_path(path, run_name="__main__")
    return {"seconds": round(time.time() - start, 1)}


# ----------------------------------------------------------------------------------------------
# comparisons with the shipped reference images (child process, patched)
# ----------------------------------------------------------------------------------------------
def _diff(ours, ref):
    """Mean and max |ours - ref| in 1/255 (both arrays in [0, 1]), over the image and over the object
    (pixels not black in either image)."""
    import numpy as np
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    d = np.abs(ours - ref) * 255.0
    out = {"mean_255": round(float(d.mean()), 3), "max_255": round(float(d.max()), 3)}
    obj = (ours > 0) | (ref > 0)
    if d.ndim == 3:
        obj, d = obj.any(-1), d.mean(-1)
    if obj.any() and not obj.all():
        out.update(object_pixels=int(obj.sum()), object_mean_255=round(float(d[obj].mean()), 3))
    return out


def _iou(a, b):
    import numpy as np
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    return round(float((a & b).sum() / max((a | b).sum(), 1)), 4)


def _gif_frames(path):
    import imageio.v3 as iio
    import numpy as np
    return np.asarray(iio.imread(path, index=None))  # (N, H, W, C) uint8


def child_compare(work):
    import imageio.v3 as iio
    import numpy as np
    import torch

    import tritonnmr as nr
    out = {}
    tests, examples = os.path.join(work, "tests"), os.path.join(work, "examples")
    data = os.path.join(tests, "data")

    # the teapot of the tests' utils.load_teapot_batch, batch 4, mesh in entry 2
    vertices, faces = nr.load_obj(os.path.join(data, "teapot.obj"))
    renderer = nr.Renderer(camera_mode="look_at", image_size=256, anti_aliasing=False)
    with torch.no_grad():
        sil = renderer(vertices[None], faces[None], mode="silhouettes")[0].cpu().numpy()
        depth = renderer(vertices[None], faces[None], mode="depth")[0].cpu().numpy()
    blender = (iio.imread(os.path.join(data, "teapot_blender.png"))[..., :3].min(-1) != 255).astype(np.float32)
    out["silhouette vs teapot_blender.png"] = dict(_diff(sil, blender), pixels_differing=int((sil != blender).sum()))
    depth[depth == depth.max()] = depth.min()
    depth = (depth - depth.min()) / (depth.max() - depth.min())
    ref = iio.imread(os.path.join(data, "test_depth.png")).astype(np.float32) / 255.0
    out["normalised depth vs test_depth.png"] = _diff(depth, ref)

    # example 4's two reference renders: its Model at the initial camera, and at the camera of its
    # make_reference_image. That function cannot be called as it is (in neural_renderer either):
    # Model(filename_obj) reads filename_ref=None, the eye is a registered Parameter that a tuple cannot
    # replace, and it saves a (3, S, S) array as the image; so a fresh look_at Renderer takes the eye.
    ex4 = _load_module(os.path.join(examples, "example4.py"), "example4")
    teapot = os.path.join(examples, "data", "teapot.obj")
    ex4_ref = os.path.join(examples, "data", "example4_ref.png")
    with torch.no_grad():
        model = ex4.Model(teapot, ex4_ref)
        init = model.renderer(model.vertices, model.faces, torch.tanh(model.textures))[0][0].permute(1, 2, 0).cpu().numpy()
        renderer = nr.Renderer(camera_mode="look_at")
        renderer.eye = nr.get_points_from_angles(2.732, 30, -15)
        made = renderer.render(model.vertices, model.faces, torch.tanh(model.textures))[0][0]
        made = made.permute(1, 2, 0).cpu().numpy()
    for name, ours in (("example4_init", init), ("example4_ref", made)):
        ref = iio.imread(os.path.join(examples, "data", name + ".png"))[..., :3] / 255.0
        out[f"example4 Model render vs {name}.png"] = dict(_diff(ours, ref), as_uint8=_diff(_to_uint8(ours) / 255.0, ref))
        iio.imwrite(os.path.join(work, name + "_ours.png"), _to_uint8(ours))

    # the second half of test_load_obj.test_texture (the textured display), which its first half (a car
    # model that large-file-less checkouts lack) may keep from running: rendered for a look, no reference
    display = os.path.join(data, "4e49873292196f02574b5684eaec43e9", "model.obj")
    if os.path.isfile(display):
        v, f, tex = nr.load_obj(display, load_texture=True, texture_size=16)
        renderer = nr.Renderer(camera_mode="look_at")
        renderer.eye = nr.get_points_from_angles(2, 15, -90)
        with torch.no_grad():
            image = renderer.render(v[None], f[None], tex[None])[0][0].permute(1, 2, 0).cpu().numpy()
        iio.imwrite(os.path.join(work, "display_ours.png"), _to_uint8(image))
        out["test_texture's display render (no reference)"] = {
            "faces": int(f.shape[0]), "covered_pixels": int((image.max(-1) > 0).sum()),
            "mean_colour_255": [round(float(c) * 255, 1) for c in image[image.max(-1) > 0].mean(0)]}

    # what the examples produced
    gif = os.path.join(examples, "data", "example1.gif")
    if os.path.isfile(gif):
        frames = _gif_frames(gif)[..., :3] / 255.0
        out["example1 frames"] = {"frames": len(frames), "mean_level_255": round(float(frames.mean() * 255), 2),
                                  "object_mean_255": round(float(frames[frames.max(-1) > 0].mean() * 255), 2)}
    gif = os.path.join(examples, "data", "example2_optimization.gif")
    if os.path.isfile(gif):
        frames = _gif_frames(gif)
        final = frames[-1][..., :3].mean(-1) / 255.0 if frames.ndim == 4 else frames[-1] / 255.0
        first = frames[0][..., :3].mean(-1) / 255.0 if frames.ndim == 4 else frames[0] / 255.0
        ref = iio.imread(os.path.join(examples, "data", "example2_ref.png"))[..., :3].mean(-1) / 255.0
        out["example2 final silhouette vs example2_ref.png"] = dict(
            _diff(final, ref), gif_frames=len(frames), iou_first=_iou(first, ref), iou_final=_iou(final, ref))
    gif = os.path.join(examples, "data", "example3_result.gif")
    if os.path.isfile(gif):
        frames = _gif_frames(gif)[..., :3] / 255.0
        ref = iio.imread(os.path.join(examples, "data", "example3_ref.png"))[..., :3] / 255.0
        # the target is a flat picture: compare where the teapot is drawn (non-black pixels)
        per = [float(np.abs(f - ref)[f.max(-1) > 0].mean() * 255) for f in frames]
        out["example3 result frames vs example3_ref.png (target), on the teapot's pixels"] = {
            "frames": len(frames), "mean_255_frame0": round(per[0], 3), "mean_255_best_frame": round(min(per), 3),
            "mean_255_all_frames": round(sum(per) / len(per), 3)}
    gif = os.path.join(examples, "data", "example4_result.gif")
    if os.path.isfile(gif):
        frames = _gif_frames(gif)[..., :3] / 255.0
        ref = iio.imread(os.path.join(examples, "data", "example4_ref.png"))[..., :3] / 255.0
        out["example4 final frame vs example4_ref.png"] = dict(
            _diff(frames[-1], ref), gif_frames=len(frames),
            silhouette_iou_first=_iou(frames[0].max(-1) > 0, ref.max(-1) > 0),
            silhouette_iou_final=_iou(frames[-1].max(-1) > 0, ref.max(-1) > 0))
    return out


# ----------------------------------------------------------------------------------------------
# parent: copy, spawn, collect, report
# ----------------------------------------------------------------------------------------------
def _spawn(args, step, target, work, timeout):
    result = os.path.join(work, f"result_{next(_RESULTS)}.json")
    log = os.path.join(args.out, "logs", os.path.basename(target or step) + ".log")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", step, "--target", target or "", "--work", work,
           "--result", result, "--private-tmp", os.path.join(work, "tmp")]
    if args.max_steps is not None:
        cmd += ["--max-steps", str(args.max_steps)]
    if args.backend is not None:
        cmd += ["--backend", args.backend]
    cwd = os.path.dirname(target) if target else work
    start = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = "timeout"
        finally:  # a timeout, Ctrl-C or SIGTERM of this process ends the child too
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = round(time.time() - start, 1)
    if os.path.isfile(result):
        with open(result) as fh:
            return json.load(fh), code, elapsed, log
    with open(log) as fh:
        tail = fh.read().strip().splitlines()[-1:] or [""]
    return None, code, elapsed, f"{log}: {tail[0]}"


def _markdown(report):
    lines = [f"# neural_renderer suite against tritonnmr ({report['checkout']})", "",
             f"Renderer backend: {report['backend']}.", ""]
    if report["max_steps"] is not None:
        lines += [f"**Quick run**: every tqdm loop cut to {report['max_steps']} items.", ""]
    if report["tests"]:
        counts = {}
        for t in report["tests"]:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        lines += ["## Tests  (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")", "",
                  "| test | result | s | why |", "|---|---|---|---|"]
        lines += [f"| {t['test']} | {t['status']} | {t['seconds']} | {t['why'].replace('|', '/')} |"
                  for t in report["tests"]]
        lines.append("")
    if report["examples"]:
        lines += ["## Examples", "", "| example | runs | s | outputs | why |", "|---|---|---|---|---|"]
        for e in report["examples"]:
            lines.append(f"| {e['example']} | {e['status']} | {e['seconds']} | {', '.join(e['outputs'])} | "
                         f"{e['why']} |")
        lines.append("")
    if report["comparisons"]:
        lines += ["## Against the reference images (|ours - ref| in 1/255)", "", "| what | numbers |", "|---|---|"]
        for k, v in report["comparisons"].items():
            lines.append(f"| {k} | {json.dumps(v)} |")
        lines.append("")
    return "\n".join(lines)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through _spawn, which kills the running child


def main_parent(args):
    signal.signal(signal.SIGTERM, _terminate)
    checkout = os.path.abspath(args.checkout)
    for part in ("tests", "examples"):
        if not os.path.isdir(os.path.join(checkout, part)):
            raise FileNotFoundError(f"checkout: {checkout} has no {part}/ folder; is it a neural_renderer checkout?")
    args.out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="nr_suite_"))
    work = os.path.join(args.out, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "tmp"))
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    for part in ("tests", "examples"):
        shutil.copytree(os.path.join(checkout, part), os.path.join(work, part))
    report = {"checkout": checkout, "max_steps": args.max_steps, "backend": args.backend or "default",
              "tests": [], "examples": [], "comparisons": {}}

    if args.only in (None, "tests"):
        for path in sorted(glob.glob(os.path.join(work, "tests", "test_*.py"))):
            records, code, elapsed, log = _spawn(args, "test", path, work, args.timeout)
            if records is None:
                records = [{"test": os.path.basename(path), "status": "error", "seconds": elapsed,
                            "why": f"child exit {code}: {log}"}]
            for r in records:  # a data file missing from the checkout is not tritonnmr's failure: say so
                missing = [w for w in r["why"].split() if w.startswith(work)]
                if r["status"] == "error" and missing and not os.path.exists(missing[0].rstrip(",:")):
                    rel = os.path.relpath(missing[0].rstrip(",:"), work)
                    if not os.path.exists(os.path.join(checkout, rel)):
                        r["why"] = f"data file absent from the checkout ({rel}); " + r["why"]
            report["tests"] += records
            for r in records:
                print(f"{r['status']:5s} {r['test']}  {r['why']}", flush=True)
    if args.only in (None, "examples"):
        for number in args.examples:
            script, outputs = EXAMPLES[number]
            path = os.path.join(work, "examples", script)
            res, code, elapsed, log = _spawn(args, "example", path, work, args.timeout)
            made = [o for o in outputs if os.path.isfile(os.path.join(work, "examples", "data", o))]
            entry = {"example": number, "status": "runs" if res is not None else "fails", "seconds": elapsed,
                     "outputs": made, "why": "" if res is not None else f"child exit {code}: {log}"}
            report["examples"].append(entry)
            print(f"example {number}: {entry['status']} in {elapsed} s {made} {entry['why']}", flush=True)
            for o in made:
                shutil.copy(os.path.join(work, "examples", "data", o), os.path.join(args.out, o))
    res, code, elapsed, log = _spawn(args, "compare", None, work, args.timeout)
    report["comparisons"] = res if res is not None else {"error": f"child exit {code}: {log}"}
    for name in ("example4_init_ours.png", "example4_ref_ours.png", "display_ours.png"):
        if os.path.isfile(os.path.join(work, name)):
            shutil.copy(os.path.join(work, name), os.path.join(args.out, name))

    with open(os.path.join(args.out, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    text = _markdown(report)
    with open(os.path.join(args.out, "report.md"), "w") as fh:
        fh.write(text + "\n")
    print(text)
    print(f"\n(written to {args.out})")
    failed = [t for t in report["tests"] if t["status"] in ("fail", "error")]
    return 1 if failed or any(e["status"] != "runs" for e in report["examples"]) else 0


def main_child(args):
    install_patches(args.private_tmp, args.max_steps, args.backend)
    os.makedirs(args.private_tmp, exist_ok=True)
    if args.child == "test":
        result = child_test(args.target)
    elif args.child == "example":
        result = child_example(args.target)
    else:
        result = child_compare(args.work)
    with open(args.result, "w") as fh:
        json.dump(result, fh)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", nargs="?", help="a neural_renderer checkout (with tests/ and examples/)")
    parser.add_argument("--out", help="folder for the report, outputs and logs (default: a new temp folder)")
    parser.add_argument("--only", choices=("tests", "examples"), help="run only the tests or only the examples")
    parser.add_argument("--examples", default="1,2,3,4", help="which examples, e.g. 1,4 (default 1,2,3,4)")
    parser.add_argument("--max-steps", type=int, default=None, help="cut every tqdm loop to N items (quick run)")
    parser.add_argument("--backend", help="default backend of every Renderer the scripts make "
                        "(e.g. numba, torch; default: tritonnmr's own default)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per test module / example")
    parser.add_argument("--child", choices=("test", "example", "compare"), help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--private-tmp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return main_child(args)
    if not args.checkout:
        parser.error("the path of a neural_renderer checkout is required")
    try:
        args.examples = [int(x) for x in args.examples.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--examples must be numbers from 1 to 4 separated by commas, got {args.examples!r}")
    if not set(args.examples) <= set(EXAMPLES):
        parser.error(f"--examples must be numbers from 1 to 4, got {args.examples}")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be >= 1")
    return main_parent(args)


if __name__ == "__main__":
    sys.exit(main())
