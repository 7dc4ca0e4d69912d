"""The ``tritonnmr`` command: render, fit shape|texture|camera, demo, bench, style, dream, reconstruct.

Errors the user can fix (missing files, bad images, unwritable folders) print one line and exit
with status 2.
"""
import argparse
import json
import os
import sys
import time


class UserError(Exception):
    """A problem with the command's input: reported in one line, exit status 2."""


def _device(name):
    import torch
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available")
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def _out_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"output directory {path} is not writable")
    return path


def _load_mesh(path, device, texture_size=None):
    import tritonnmr as nr
    path = path or nr.data_path("teapot.obj")
    try:
        if texture_size:
            try:
                v, f, t = nr.load_obj(path, load_texture=True, texture_size=texture_size)
                return v[None].to(device), f[None].to(device), t[None].to(device)
            except ValueError as e:
                if "mtllib" not in str(e):
                    raise
        v, f = nr.load_obj(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    return v[None].to(device), f[None].to(device), None


def _target(path, image_size, alpha=False):
    from .media import load_image
    try:
        return load_image(path, image_size, notice=lambda m: print(m, file=sys.stderr), alpha=alpha)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def cmd_render(args):
    import tritonnmr as nr
    from .media import save_gif, save_png, turntable
    device = _device(args.device)
    out = _out_dir(args.out)
    v, f, t = _load_mesh(args.mesh, device, args.texture_size)
    r = nr.Renderer(image_size=args.image_size, camera_mode="look_at", backend=args.backend)
    frames = turntable(r, v, f, t, frames=args.frames, elevation=args.elevation, distance=args.distance)
    save_png(os.path.join(out, "render.png"), frames[0])
    save_gif(os.path.join(out, "turntable.gif"), frames)
    print(f"wrote {os.path.join(out, 'render.png')} and {os.path.join(out, 'turntable.gif')}")


def _write_fit(out, result, extra_metrics=None):
    from .media import save_gif
    save_gif(os.path.join(out, "optimization.gif"), result.frames)
    metrics = dict(result.metrics, **(extra_metrics or {}), interrupted=result.interrupted)
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=2)
    return metrics


def cmd_fit(args):
    import tritonnmr as nr
    from . import fitting
    from .media import save_gif, turntable
    device = _device(args.device)
    out = _out_dir(args.out)
    v, f, _ = _load_mesh(args.mesh, device)
    defaults = {"shape": ("example2_ref.png", 0.001), "texture": ("example3_ref.png", 0.1),
                "camera": ("example4_ref.png", 0.1)}
    target_path = args.target or nr.data_path(defaults[args.what][0])
    lr = args.lr or defaults[args.what][1]
    image = _target(target_path, args.image_size)
    common = dict(iterations=args.iterations, lr=lr, image_size=args.image_size, backend=args.backend,
                  frame_every=args.frame_every)
    r = nr.Renderer(image_size=args.image_size, camera_mode="look_at", backend=args.backend)
    if args.what == "shape":
        result = fitting.fit_shape(image.mean(0), v, f, **common)
        nr.save_obj(os.path.join(out, "result.obj"), result.vertices[0], f[0])
        save_gif(os.path.join(out, "result.gif"), turntable(r, result.vertices, f))
    elif args.what == "texture":
        result = fitting.fit_texture(image, v, f, texture_size=args.texture_size, **common)
        nr.save_obj(os.path.join(out, "result.obj"), v[0], f[0], result.textures[0])
        save_gif(os.path.join(out, "result.gif"), turntable(r, v, f, result.textures, elevation=0))
    else:
        silhouette = (image.max(0).values > 0).float()
        true_eye = nr.get_points_from_angles(fitting.DISTANCE, 30, -15) if args.target is None else None
        result = fitting.fit_camera(silhouette, v, f, true_eye=true_eye, **common)
        save_gif(os.path.join(out, "result.gif"), turntable(r, v, f))
    metrics = _write_fit(out, result, {"device": str(device)})
    summary = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("loss_initial", "loss_final", "iou_initial",
                                                           "iou_final", "error_reduction", "seconds")
                        if isinstance(metrics.get(k), float))
    print(("interrupted; " if result.interrupted else "") + f"fit {args.what}: {summary}")
    print(f"pictures in {out}: optimization.gif, result.gif; numbers in metrics.json")
    return 130 if result.interrupted else 0


def cmd_demo(args):
    """Render the bundled teapot and fit it to example 2's silhouette, small enough for a laptop CPU."""
    ns = argparse.Namespace
    start = time.time()
    out = _out_dir(args.out)
    common = dict(device=args.device, backend=args.backend)
    print("1/2 rendering the teapot turntable ...")
    cmd_render(ns(mesh=None, out=out, image_size=args.image_size, frames=24, elevation=30.0, distance=2.732,
                  texture_size=4, **common))
    print("2/2 fitting the teapot's shape to a silhouette (examples/2_fit_shape.py, smaller) ...")
    fit_out = os.path.join(out, "fit_shape")
    cmd_fit(ns(what="shape", target=None, mesh=None, out=fit_out, iterations=args.iterations, lr=None,
               image_size=args.image_size, texture_size=4, frame_every=5, **common))
    with open(os.path.join(fit_out, "metrics.json")) as fh:
        m = json.load(fh)
    print(f"demo done in {time.time() - start:.0f} s: silhouette IoU {m['iou_initial']:.2f} -> {m['iou_final']:.2f}")
    print(f"look at {os.path.join(out, 'turntable.gif')} and {os.path.join(fit_out, 'optimization.gif')}")


def cmd_bench(args):
    import torch
    from tqdm.auto import tqdm
    from . import bench
    device = _device(args.device)
    out = _out_dir(args.out)
    cases = bench.grid(args.quick, device)
    if args.backend != "auto":
        cases = [c for c in cases if c.backend.startswith(args.backend) or c.backend == "torch"]
    rows = []
    for case in tqdm(cases, desc="bench", unit="case"):
        try:
            rows.append(bench.run_case(case, device, repeats=args.repeats))
        except torch.cuda.OutOfMemoryError:
            tqdm.write(f"out of memory: {case}")
            torch.cuda.empty_cache()
    rows = bench.add_speedups(rows)
    meta = bench.metadata(device)
    plotted = bench.write(rows, meta, out)
    print(bench.to_markdown(rows, meta))
    print(f"wrote {out}/results.json, results.md" + (", results.png" if plotted else " (no matplotlib: no plot)"))


def build_parser():
    p = argparse.ArgumentParser(prog="tritonnmr", description="Differentiable mesh rendering with Triton kernels.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, image_size):
        sp.add_argument("--image-size", type=int, default=image_size, help="output size in pixels")
        sp.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if available")
        sp.add_argument("--backend", choices=["auto", "torch", "triton"], default="auto")

    r = sub.add_parser("render", help="render a mesh: render.png and turntable.gif")
    r.add_argument("mesh", nargs="?", help="OBJ file (default: the bundled teapot)")
    r.add_argument("--out", default="out/render")
    r.add_argument("--frames", type=int, default=24)
    r.add_argument("--elevation", type=float, default=30.0)
    r.add_argument("--distance", type=float, default=2.732)
    r.add_argument("--texture-size", type=int, default=4, help="texture cube size when the OBJ has materials")
    common(r, 256)
    r.set_defaults(func=cmd_render)

    f = sub.add_parser("fit", help="fit a shape, textures or a camera to a target image")
    f.add_argument("what", choices=["shape", "texture", "camera"])
    f.add_argument("--target", help="target PNG (default: the example's bundled target)")
    f.add_argument("--mesh", help="starting OBJ (default: the bundled teapot)")
    f.add_argument("--iterations", type=int, default=300)
    f.add_argument("--lr", type=float, default=None, help="Adam step (default: the example's)")
    f.add_argument("--texture-size", type=int, default=4)
    f.add_argument("--frame-every", type=int, default=10, help="one optimization.gif frame every N steps")
    f.add_argument("--out", default="out/fit")
    common(f, 256)
    f.set_defaults(func=cmd_fit)

    d = sub.add_parser("demo", help="render the bundled teapot and fit its shape (about a minute on a CPU)")
    d.add_argument("--out", default="out/demo")
    d.add_argument("--iterations", type=int, default=300)
    common(d, 128)
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("bench", help="time the backends across sizes (see benchmarks/README.md)")
    b.add_argument("--quick", action="store_true", help="a few CPU-sized cases (under a minute)")
    b.add_argument("--repeats", type=int, default=5, help="timed runs per case (median reported)")
    b.add_argument("--out", default="out/bench")
    b.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if available")
    b.add_argument("--backend", choices=["auto", "torch", "triton"], default="auto",
                   help="limit the columns (the torch baseline always runs)")
    b.set_defaults(func=cmd_bench)

    from .editing.commands import add_parsers as add_editing
    from .reconstruction.commands import add_parser as add_reconstruct
    add_editing(sub)
    add_reconstruct(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"tritonnmr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
