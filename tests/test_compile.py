"""Every Triton kernel launch the renderer makes compiles for real GPUs (sm_80 and sm_90); no GPU needed.

The other tests run the kernels in Triton's interpreter, which accepts code the real compiler
rejects (module globals that are not ``tl.constexpr``, methods on an int argument that Triton
specialised to the constant 1, ...). So this test

1. RECORDS: runs the renderer through the Triton backend in every mode (texture cubes, vertex
   colours, UV maps in each wrap mode, silhouettes, depth; anti-aliasing on and off; forward and
   backward; batch 2), every forward strategy (binned, face-parallel, pixel loop), a scene whose
   tile lists, pixel lists and edge runs are all cut (the merge and segment-sum kernels), every
   configuration of the tuning table (backends/triton/tuning.py) and the edge kernel's trip-counting variant, with a hook on Triton's launch path that notes each launch's
   kernel (module and name), argument types (tensor dtypes, ints with their values, floats) and
   constexpr values. Nothing here lists kernels: a new or rewritten kernel is recorded as soon as
   something launches it (and ``test_recording_sees_every_kernel`` fails if nothing does);
2. adds, for each recorded launch and each int argument, a variant with that int equal to 1
   (one face, a 1-pixel image, texture size 1: Triton specialises an int equal to 1 to a constant);
3. COMPILES each of them with Triton's own JIT path (``JITFunction.warmup``, which specialises the
   arguments exactly as a real launch does) against a stand-in driver that only reports the target,
   in two worker processes (one per architecture, without TRITON_INTERPRET), and runs the wheel's
   ``ptxas -v`` on the PTX for registers and spills (printed; ``pytest -rP`` shows them).

The worker is this file run as a script: ``python tests/test_compile.py 90 < jobs.json``.
To compile with another triton than the one installed, point TRITONNMR_COMPILE_TRITON at a directory
holding it (``pip install --target DIR triton==3.6.0``): the workers import it first, the recording
keeps the installed one (triton 3.6's interpreter cannot run our loops under numpy >= 2.4: it calls
int() on one-element arrays). TRITONNMR_EXPECT_TRITON=3.6.0 makes the test check the workers' version.
TRITONNMR_LAUNCHES=FILE keeps the recording in FILE: the first run writes it, later runs read it instead of
rendering every mode again (CI compiles twice, with two tritons, from one recording).
"""
import contextlib
import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
import time

ARCHS = (80, 90)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ----------------------------------------------------------------------------------------------
# Launch descriptions (plain JSON, shared by the test and the worker)
# ----------------------------------------------------------------------------------------------
def describe(value):
    """A JSON description of one kernel argument, from which the worker rebuilds an equivalent one."""
    import torch
    if torch.is_tensor(value):
        return {"tensor": str(value.dtype).replace("torch.", "")}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"float": value}
    if value is None or isinstance(value, str):
        return {"value": value}
    raise TypeError(f"cannot describe kernel argument {value!r} ({type(value).__name__}); teach describe()")


def rebuild(desc):
    import torch
    from triton.runtime.jit import MockTensor
    if "tensor" in desc:
        return MockTensor(getattr(torch, desc["tensor"]))  # data_ptr 0: 16-byte aligned, like torch's
    return next(iter(desc.values()))


def launch_record(kernel, args, kwargs):
    """{"module", "name", "args": {parameter: description}, "constexprs": [names], "options": {...}}
    of one launch (options: launch options such as num_warps)."""
    fn = kernel.fn
    params = inspect.signature(fn).parameters
    options = {k: v for k, v in kwargs.items() if k not in params}
    bound = inspect.signature(fn).bind(*args, **{k: v for k, v in kwargs.items() if k in params})
    return {"module": fn.__module__, "name": fn.__qualname__,
            "args": {k: describe(v) for k, v in bound.arguments.items()},
            "constexprs": [k for k, p in params.items() if "constexpr" in str(p.annotation)],
            "options": {k: describe(v) for k, v in options.items()}}


def with_int_variants(records):
    """The records plus, for each int argument (not constexpr) of each, a copy with that int equal
    to 1; no duplicates."""
    jobs, seen = [], set()
    for rec in records:
        variants = [rec]
        for name, desc in rec["args"].items():
            if "int" in desc and desc["int"] != 1 and name not in rec["constexprs"]:
                variants.append(dict(rec, args=dict(rec["args"], **{name: {"int": 1}}), variant=f"{name}=1"))
        for job in variants:
            key = json.dumps({k: job[k] for k in ("module", "name", "args", "options")}, sort_keys=True)
            if key not in seen:
                seen.add(key)
                jobs.append(job)
    return jobs


def summary(job):
    """Kernel name, constexpr values and the int-equal-1 variant, for the report."""
    consts = ",".join(f"{k}={next(iter(job['args'][k].values()))}" for k in job["constexprs"] if k in job["args"])
    return f"{job['name']}[{consts}]" + (f" {job['variant']}" if job.get("variant") else "")


# ----------------------------------------------------------------------------------------------
# The worker: compile jobs for one architecture (run in a process without TRITON_INTERPRET)
# ----------------------------------------------------------------------------------------------
class _TargetOnlyDriver:
    """Stands in for the CUDA driver: the JIT asks it for the target, device and stream; nothing runs."""

    def __init__(self, target):
        self.target = target

    def get_current_target(self):
        return self.target

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0


def _ptxas_usage(ptx):
    """(registers, spill store bytes, spill load bytes) from the wheel's ``ptxas -v``."""
    from triton.backends.nvidia.compiler import get_ptxas
    arch = re.search(r"^\.target\s+sm_(\w+)", ptx, re.M).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as fh:
            fh.write(ptx)
        log = subprocess.run([get_ptxas(int(arch.rstrip("a"))).path, "-v", f"--gpu-name=sm_{arch}", src,
                              "-o", os.path.join(tmp, "k.cubin")], capture_output=True, text=True, check=True).stderr
    regs = re.search(r"Used (\d+) registers", log)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return (int(regs.group(1)) if regs else None,
            int(spills.group(1)) if spills else None, int(spills.group(2)) if spills else None)


APPROXIMATE = re.compile(r"^\s*(div\.full\.f32|div\.approx\.\S+|rcp\.approx\.\S+)\s", re.M)
# a source line may carry this comment to say why an approximate quotient there cannot change a result
APPROXIMATE_OK = "# approximate division:"


def approximate_divisions(ptx):
    """["file:line instruction"] of every approximate division in ``ptx`` (``div.full.f32`` is up to 2 ulp
    off, ``div.approx`` and ``rcp.approx`` more), located by the ``.loc`` line info before it."""
    files = dict(re.findall(r'^\s*\.file\s+(\d+)\s+"([^"]+)"', ptx, re.M))
    sites, where = [], "?"
    for line in ptx.splitlines():
        loc = re.match(r"^\s*\.loc\s+(\d+)\s+(\d+)", line)
        if loc:
            where = f"{files.get(loc.group(1), '?')}:{loc.group(2)}"
        elif APPROXIMATE.match(line):
            sites.append(f"{where} {line.split()[0]}")
    return sorted(set(sites))


def unexplained(sites):
    """The sites whose source line does not carry APPROXIMATE_OK."""
    bad = []
    for site in sites:
        path, line = site.split(" ")[0].rsplit(":", 1)
        try:
            with open(path) as fh:
                text = fh.read().splitlines()[int(line) - 1]
        except (OSError, IndexError, ValueError):
            text = ""
        if APPROXIMATE_OK not in text:
            bad.append(site)
    return bad


def worker(arch, jobs):
    import warnings
    warnings.simplefilter("ignore")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime.driver import driver
    from triton.runtime.jit import JITFunction
    sys.path[:0] = [ROOT, HERE]
    driver.set_active(_TargetOnlyDriver(GPUTarget("cuda", arch, 32)))
    usage = {}  # compiled kernel hash -> ptxas numbers: equal specialisations are measured once
    results = []
    for job in jobs:
        t = time.perf_counter()
        try:
            fn = getattr(importlib.import_module(job["module"]), job["name"])
            if not isinstance(fn, JITFunction):
                raise TypeError(f"{job['module']}.{job['name']} is {type(fn).__name__}, not a JITFunction")
            kwargs = {k: rebuild(v) for k, v in {**job["args"], **job["options"]}.items()}
            kernel = fn.warmup(grid=(1,), **kwargs)
            if kernel.hash not in usage:
                ptx = kernel.asm["ptx"]
                usage[kernel.hash] = _ptxas_usage(ptx) + (approximate_divisions(ptx),)
            regs, stores, loads, approximate = usage[kernel.hash]
            results.append({"ok": True, "hash": kernel.hash, "regs": regs, "spill_stores": stores,
                            "spill_loads": loads, "approximate": approximate,
                            "num_warps": kernel.metadata.num_warps, "seconds": time.perf_counter() - t})
        except Exception as e:  # noqa: BLE001 -- every failure is reported, with its message
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    return {"triton": triton.__version__, "arch": arch, "results": results}


# ----------------------------------------------------------------------------------------------
# The test side
# ----------------------------------------------------------------------------------------------
if __name__ != "__main__":
    import pytest
    import torch

    triton = pytest.importorskip("triton")
    import triton.language as tl

    import tritonnmr as nr
    from tritonnmr import backends

    @contextlib.contextmanager
    def recording():
        """Records every kernel launch (interpreted or compiled) made inside the block."""
        from triton.runtime.jit import JITFunction
        classes = [JITFunction]
        with contextlib.suppress(ImportError):
            from triton.runtime.interpreter import InterpretedFunction
            classes.append(InterpretedFunction)
        launches, originals = [], {cls: cls.__dict__["run"] for cls in classes}

        def hooked(original):
            def run(self, *args, grid, warmup, **kwargs):
                if not warmup:
                    launches.append(launch_record(self, args, kwargs))
                return original(self, *args, grid=grid, warmup=warmup, **kwargs)
            return run

        for cls, original in originals.items():
            cls.run = hooked(original)
        try:
            yield launches
        finally:
            for cls, original in originals.items():
                cls.run = original

    def _render_every_mode(device):
        """Forward and backward through the Triton backend: every mode, anti-aliasing on and off, batch 2."""
        v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
        B = 2
        v = v[None].repeat(B, 1, 1).to(device)
        f = f[None].repeat(B, 1, 1).to(device)
        cubes = torch.rand(B, f.shape[1], 2, 2, 2, 3, device=device)
        colours = torch.rand(B, v.shape[1], 3, device=device)
        for aa in (False, True):
            renderer = nr.Renderer(image_size=2, camera_mode="look_at", anti_aliasing=aa, backend="triton")
            renderer.eye = nr.get_points_from_angles(2.732, 30, 45)
            for textures, mode in ((cubes, None), (colours, None), (None, "silhouettes"), (None, "depth")):
                vv = v.clone().requires_grad_()
                tt = None if textures is None else textures.clone().requires_grad_()
                out = renderer(vv, f, tt, mode=mode)
                sum(o.sum() for o in (out if isinstance(out, (tuple, list)) else [out])).backward()
        # the bare rasterize function (rgb only: no alpha channel in the edge pass)
        screen = nr.vertices_to_faces(renderer.transform(v), nr.fill_back(f)[0]).detach()
        nr.rasterize(screen.requires_grad_(), torch.rand(B, screen.shape[1], 1, 1, 1, 3, device=device),
                     image_size=2, anti_aliasing=False, backend="triton").sum().backward()

    def _other_paths(device):
        """The forward strategies the renderer does not use by default, UV maps in each wrap mode, a
        non-square scene whose lists are all cut (a full-screen quad over random faces, with the
        minimum item lengths at 1), the edge kernel's trip-counting variant, and every configuration
        of the tuning table (large images and face counts select other block sizes)."""
        from conftest import random_faces
        from tritonnmr.backends import triton as kernels
        from tritonnmr.backends.triton import tuning
        from tritonnmr.bench import zbuffers
        quad = torch.tensor([[[-1.0, -1, 2], [1, -1, 2], [1, 1, 2]], [[-1.0, -1, 2], [1, 1, 2], [-1, 1, 2]]])
        faces = torch.cat([random_faces(2, 6, seed=1), quad.expand(2, 2, 3, 3)], 1).to(device).contiguous()
        for strategy in zbuffers.STRATEGIES:
            zbuffers.rasterize_fragments(faces, 5, 3, 0.1, 100.0, strategy)
        with tuning.override(min_faces=1, item_trips=1, edge_trips=1):
            f = faces.clone().requires_grad_()
            cubes = torch.rand(2, faces.shape[1], 2, 2, 2, 3, device=device, requires_grad=True)
            out = nr.rasterize_rgbad(f, cubes, (9, 12), anti_aliasing=False, backend="triton")
            (out["rgb"].sum() + out["alpha"].sum() + out["depth"].sum()).backward()
            frags = nr.rasterize_fragments(faces, (9, 12), backend="triton")
            image = torch.rand(2, 9, 12, 2, device=device)
            kernels.edge_pass(faces, frags.face_index, image, image, 1e-3, count_trips=True)
        for *_, cfg in tuning.TABLE:  # every configuration of the tuning table, whatever scenes reach it
            with tuning.override(**dataclasses.asdict(cfg)):
                frags = nr.rasterize_fragments(faces, (4, 6), backend="triton")
                for channels in (1, 4):  # silhouettes; rgb and alpha
                    image = torch.rand(2, 4, 6, channels, device=device)
                    kernels.edge_backward(faces, frags.face_index, image, image, 1e-3)
        uvs = torch.rand(2, faces.shape[1], 3, 2, device=device) * 3 - 1
        texture = torch.rand(2, 4, 5, 3, device=device, requires_grad=True)
        for wrap in ("REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE"):
            rgb = nr.rasterize(faces, (uvs, texture), 4, anti_aliasing=False, backend="triton",
                               shader=nr.UVTextureShader(wrap))
            rgb.sum().backward()
        # the analytic estimator: rgb and alpha with cubes (every face's pairs cut into one-trip items), and
        # silhouettes alone (one channel)
        with tuning.override(item_trips=1, pixel_block=2):
            f = faces.clone().requires_grad_()
            cubes = torch.rand(2, faces.shape[1], 2, 2, 2, 3, device=device, requires_grad=True)
            out = nr.rasterize_rgbad(f, cubes, (9, 12), anti_aliasing=False, backend="triton", gradient="analytic")
            (out["rgb"].sum() + out["alpha"].sum()).backward()
        silhouettes = nr.rasterize_silhouettes(faces.clone().requires_grad_(), 5, backend="triton", gradient="analytic")
        silhouettes.sum().backward()
        # the soft rasterizer: rgb with cubes (cut lists too), silhouettes alone, and a UV map
        for cut in ({}, dict(min_faces=1, item_trips=1)):
            with tuning.override(**cut):
                f = faces.clone().requires_grad_()
                cubes = torch.rand(2, faces.shape[1], 2, 2, 2, 3, device=device, requires_grad=True)
                out = nr.rasterize_rgbad(f, cubes, (5, 6), anti_aliasing=False, backend="triton", gradient="soft",
                                         sigma=1e-3)
                (out["rgb"].sum() + out["alpha"].sum()).backward()
        nr.rasterize_silhouettes(faces.clone().requires_grad_(), 4, backend="triton", gradient="soft").sum().backward()
        nr.rasterize(faces, (uvs, texture), 4, anti_aliasing=False, backend="triton", gradient="soft",
                     shader=nr.UVTextureShader()).sum().backward()

    @pytest.fixture(scope="module")
    def launches():
        saved = os.environ.get("TRITONNMR_LAUNCHES")
        if saved and os.path.isfile(saved):
            with open(saved) as fh:
                return json.load(fh)
        if torch.cuda.is_available() and not backends.interpreter_enabled():
            device = torch.device("cuda")
        elif backends.interpreter_enabled():
            device = torch.device("cpu")
        else:
            pytest.skip("no CUDA and TRITON_INTERPRET not set: cannot run the kernels to record them")
        with recording() as recorded:
            _render_every_mode(device)
            _other_paths(device)
        unique = list({json.dumps(r, sort_keys=True): r for r in recorded}.values())
        if saved:  # written whole, then renamed: a reader never sees half a file
            with open(f"{saved}.{os.getpid()}", "w") as fh:
                json.dump(unique, fh)
            os.replace(f"{saved}.{os.getpid()}", saved)
        return unique

    # Two kernels that the interpreter runs but the compiler must reject: the test's own control.
    NOT_CONSTEXPR = 7

    @triton.jit
    def _control_global_kernel(out_ptr):
        tl.store(out_ptr, NOT_CONSTEXPR)

    @triton.jit
    def _control_int_one_kernel(out_ptr, S):
        tl.store(out_ptr, S.to(tl.float32))

    @triton.jit
    def _control_divide_kernel(out_ptr):
        tl.store(out_ptr, tl.load(out_ptr) / tl.load(out_ptr + 1))

    def _control(name, expect, **ints):
        """A job for a control kernel; ``expect``: a piece of the error it must fail with ("" = compiles)."""
        args = {"out_ptr": {"tensor": "float32"}, **{k: {"int": v} for k, v in ints.items()}}
        return {"module": __name__, "name": name, "args": args, "constexprs": [], "options": {}, "expect": expect}

    CONTROLS = [_control("_control_global_kernel", "NOT_CONSTEXPR"),
                _control("_control_int_one_kernel", "has no attribute 'to'", S=1),
                _control("_control_int_one_kernel", "", S=2),
                dict(_control("_control_divide_kernel", ""), approximate=True)]

    @pytest.fixture(scope="module")
    def compiled(launches):
        """{arch: (jobs, worker output)}: every job compiled, the two architectures in parallel."""
        jobs = with_int_variants(launches) + CONTROLS
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        other = os.environ.get("TRITONNMR_COMPILE_TRITON")
        if other:
            env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(other)] + env.get("PYTHONPATH", "").split(os.pathsep))
        start = time.perf_counter()
        procs = {arch: subprocess.Popen([sys.executable, os.path.abspath(__file__), str(arch)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env, cwd=ROOT) for arch in ARCHS}
        outputs = {arch: p.communicate(json.dumps(jobs)) for arch, p in procs.items()}
        wall = time.perf_counter() - start
        results = {}
        for arch, (out, err) in outputs.items():
            assert procs[arch].returncode == 0, f"sm_{arch} worker failed:\n{err[-4000:]}"
            results[arch] = (jobs, json.loads(out))
        print(f"\n{len(jobs)} jobs x {len(ARCHS)} targets compiled in {wall:.1f} s by triton "
              f"{results[ARCHS[0]][1]['triton']} (recorded with triton {triton.__version__})")
        return results

    def test_recording_sees_every_kernel(launches):
        """Every @triton.jit function of the Triton backend and of the benchmark's z-buffers that reads
        tl.program_id (a kernel, not a helper) was launched by the recorded runs; add a mode to the
        recording when this fails."""
        import tritonnmr.backends.triton as pkg
        kernels = set()
        names = [f"{pkg.__name__}.{info.name}" for info in pkgutil.iter_modules(pkg.__path__)] + ["tritonnmr.bench.zbuffers"]
        for module in map(importlib.import_module, names):
            for name, obj in vars(module).items():
                fn = getattr(obj, "fn", None)
                if inspect.isfunction(fn) and fn.__module__ == module.__name__ \
                        and "program_id" in inspect.getsource(fn):
                    kernels.add((module.__name__, name))
        launched = {(r["module"], r["name"]) for r in launches}
        assert len(kernels) >= 5
        assert kernels <= launched, f"never launched by the recording: {sorted(kernels - launched)}"

    @pytest.mark.parametrize("arch", ARCHS)
    def test_every_launch_compiles(compiled, arch):
        jobs, output = compiled[arch]
        expected = os.environ.get("TRITONNMR_EXPECT_TRITON")
        print(f"\nsm_{arch}: compiled by triton {output['triton']}")
        if expected:
            assert output["triton"] == expected, f"the compile workers imported triton {output['triton']}"
        elif not os.environ.get("TRITONNMR_COMPILE_TRITON"):
            assert output["triton"] == triton.__version__
        failures, rows = [], {}  # rows: one per compiled kernel, with the int-equal-1 variants it serves
        for job, res in zip(jobs, output["results"]):
            if "expect" in job:
                continue
            if not res["ok"]:
                failures.append(f"{summary(job)}: {res['error']}")
                continue
            row = rows.setdefault((summary(dict(job, variant=None)), res["hash"]), [res, set()])
            row[1].add(job.get("variant") or "as launched")
        print(f"{'kernel[constexprs]':56} {'warps':>5} {'regs':>4} {'spill st/ld B':>13}  int arguments")
        approximate = set()
        for (name, _), (res, variants) in rows.items():
            print(f"{name:56} {res['num_warps']:>5} {res['regs']:>4} {res['spill_stores']:>6}/{res['spill_loads']:<6}  "
                  f"{', '.join(sorted(variants))}")
            approximate.update(f"{name}: {site}" for site in unexplained(res["approximate"]))
        assert not failures, f"sm_{arch}: {len(failures)} failed to compile:\n" + "\n\n".join(failures)
        assert not approximate, (f"sm_{arch}: approximate divisions (use tl.math.div_rn, or say at the site why "
                                 f"the rounding cannot change a result with '{APPROXIMATE_OK}'):\n"
                                 + "\n".join(sorted(approximate)))

    def test_the_compile_step_rejects_what_only_the_interpreter_accepts(compiled):
        """The control kernels fail as they must (a plain module global; .to() on an int that Triton
        specialised to the constant 1), the second compiles when that int is 2, and a plain "/" is
        found as an approximate division."""
        for arch in ARCHS:
            jobs, output = compiled[arch]
            controls = [(job, res) for job, res in zip(jobs, output["results"]) if "expect" in job]
            assert len(controls) == len(CONTROLS)
            for job, res in controls:
                if job["expect"]:
                    assert not res["ok"] and job["expect"] in res["error"], (job, res)
                else:
                    assert res["ok"], (job, res)
                    # the scan for approximate division finds the plain "/" and no comment excuses it
                    assert bool(unexplained(res["approximate"])) == job.get("approximate", False), (job, res)


if __name__ == "__main__":
    json.dump(worker(int(sys.argv[1]), json.load(sys.stdin)), sys.stdout)
