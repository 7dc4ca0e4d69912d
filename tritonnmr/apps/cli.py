"""The ``tritonnmr`` command: render, fit shape|texture|camera, demo, bench, style, dream, reconstruct.

This module holds the parser and the rendering commands; ``style``/``dream`` live in
:mod:`tritonnmr.apps.editing.commands` and ``reconstruct`` in :mod:`tritonnmr.apps.reconstruction.commands`;
what they share (one-line errors, argument types, inputs) is :mod:`tritonnmr.apps.cli_common`.
Errors the user can fix (bad values, missing or unreadable files, unwritable folders) print one line
and exit with status 2, before any output folder is made.
"""
import json
import os
import sys
import time

from ..camera import DEFAULT_DISTANCE
from ..gradients import ESTIMATORS
from .cli_common import (IMAGE_SIZE_HELP, INTERRUPTED, MESH_HELP, OUT_MESH_HELP, ArgumentParser, HelpFormatter, UserError,
                         add_device_options, add_gradient_options, apply_threads, compile_first, finite_float, folders_before,
                         image_size, load_libraries, load_mesh, load_target, one_line, output_dir, output_paths, positive_float,
                         positive_int, remove_empty_folders, renderer, resolve_device, size_text, subcommand, write_mesh, write_metrics)
from .memory import refuse_beyond_memory
from tritonnmr_entry import interrupted, work_begins

# what: (bundled target, Adam step): neural_renderer's examples 2, 3 and 4
FIT_DEFAULTS = {"shape": ("example2_ref.png", 0.001), "texture": ("example3_ref.png", 0.1),
                "camera": ("example4_ref.png", 0.1)}
# the camera of example 4's target image (elevation 30, azimuth -15), known for the bundled target only
EXAMPLE4_EYE = (DEFAULT_DISTANCE, 30.0, -15.0)

RESULT_PICTURES = {
    "shape": "result.gif (the fitted mesh turning)",
    "texture": "result.gif (the painted mesh turning, under the fit's flat light)",
    "camera": "result.gif (the camera's path around the mesh; the target beside the fitted camera's view)",
}


# render.png's azimuth in degrees, where the turntable starts: a three-quarter view from the front
# left. At 0 the textured display model is seen edge-on (its screen faces azimuth 270); from here it
# shows its screen, and the teapot its spout and handle both.
RENDER_AZIMUTH = 315.0


def _render_mesh(args, device):
    """render's mesh: vertices (1, V, 3), faces (1, F, 3) and textures as --texture says (texture
    cubes of --texture-size, or the UV map sampled at every pixel), or None (white) where it has none.
    A mesh with vertex colours only has no UV map: --texture uv shows it with cubes, and says so."""
    if args.texture == "uv":
        v, f, uv = load_mesh(args.mesh, device, texture_format="uv")
        if uv is not None:
            return v, f, uv
    v, f, cubes = load_mesh(args.mesh, device, args.texture_size, notes=args.texture != "uv")  # notes: said once
    if args.texture == "uv" and cubes is not None:
        print(f"tritonnmr: note: {args.mesh} has vertex colours only, no texture image or material colour for "
              "--texture uv; they are shown as texture cubes", file=sys.stderr)
    return v, f, cubes


def cmd_render(args):
    from .media import save_gif, save_png, turntable
    device = resolve_device(args.device)
    v, f, t = _render_mesh(args, device)
    r = renderer(args.image_size, args.backend)
    out = output_dir(args.out)  # an empty one is removed if the command stops early
    compile_first(args.backend, device)
    frames = turntable(r, v, f, t, frames=args.frames, elevation=args.elevation, distance=args.distance,
                       start=RENDER_AZIMUTH)
    save_png(os.path.join(out, "render.png"), frames[0])
    save_gif(os.path.join(out, "turntable.gif"), frames)
    print(f"wrote {os.path.join(out, 'render.png')} (azimuth {RENDER_AZIMUTH:g} deg, the turntable's first frame) "
          f"and {os.path.join(out, 'turntable.gif')}")


def cmd_fit(args):
    import tritonnmr as nr

    from . import fitting
    from .media import save_gif, turntable
    device = resolve_device(args.device)
    v, f, _ = load_mesh(args.mesh, device)
    target_name, default_lr = FIT_DEFAULTS[args.what]
    image = load_target(args.target or nr.data_path(target_name), args.image_size)
    r = renderer(args.image_size, args.backend)  # refuses a size the renderer cannot make
    out, mesh_path = output_paths(args.out, {"shape": "geometry", "texture": "textured"}.get(args.what))
    compile_first(args.backend, device)
    common = dict(iterations=args.iterations, lr=args.lr or default_lr, image_size=args.image_size,
                  backend=args.backend, frame_every=args.frame_every, gradient=args.gradient, sigma=args.sigma,
                  gamma=args.gamma)
    if args.what == "shape":
        result = fitting.fit_shape(image.mean(0), v, f, **common)
        write_mesh(mesh_path, result.vertices[0], f[0])
        pictures = turntable(r, result.vertices, f)
    elif args.what == "texture":
        if args.texture == "uv":
            result = fitting.fit_texture_uv(image, v, f, uv_size=args.uv_size, projection=args.uv_projection,
                                            **common)
            write_mesh(mesh_path, v[0], f[0], result.textures)
        else:
            result = fitting.fit_texture(image, v, f, texture_size=args.texture_size, **common)
            write_mesh(mesh_path, v[0], f[0], result.textures[0])
        pictures = turntable(fitting.texture_renderer(args.image_size, args.backend), v, f, result.textures,
                             elevation=0)
    else:
        from .camera_picture import EXAMPLE4_GREY, camera_fit_frames
        silhouette = (image.max(0).values > 0).float()
        true_eye = nr.get_points_from_angles(*EXAMPLE4_EYE) if args.target is None else None
        result = fitting.fit_camera(silhouette, v, f, true_eye=true_eye, **common)
        grey = EXAMPLE4_GREY if args.target is None else 1.0  # a user's target: its mesh's colour is unknown
        pictures = camera_fit_frames(v, f, result.path, image, args.image_size, args.backend, true_eye=true_eye,
                                     grey=grey)
    save_gif(os.path.join(out, "optimization.gif"), result.frames)
    save_gif(os.path.join(out, "result.gif"), pictures)
    write_metrics(out, result, {"device": str(device)})
    name = "texture (uv)" if args.what == "texture" and args.texture == "uv" else args.what
    print(("interrupted; " if result.interrupted else "") + f"fit {name}: {result.summary}")
    overlay = "; yellow: fitted silhouette, blue: target" if args.what != "texture" else ""
    texture_image = ""
    if args.what == "texture" and args.texture == "uv" and mesh_path.lower().endswith(".obj"):
        texture_image = f"; the fitted texture image in {os.path.splitext(os.path.basename(mesh_path))[0]}_0.png"
    mesh = f"; mesh {os.path.basename(mesh_path)}" if args.what != "camera" else ""
    print(f"pictures in {out}: optimization.gif (a frame every {args.frame_every} steps{overlay}), "
          f"{RESULT_PICTURES[args.what]}{texture_image}{mesh}; numbers in metrics.json")
    return INTERRUPTED if result.interrupted else 0


def cmd_demo(args):
    """Render the bundled teapot and fit it to example 2's silhouette, small enough for a laptop CPU."""
    start = time.time()
    size = size_text(args.image_size)
    shared = ["--image-size", size, "--backend", args.backend] + (["--device", args.device] if args.device else [])
    parser = build_parser()
    render = parser.parse_args(["render", "--out", args.out, "--frames", "24"] + shared)
    fit_out = os.path.join(args.out, "fit_shape")
    fit = parser.parse_args(["fit", "shape", "--out", fit_out, "--iterations", str(args.iterations),
                             "--frame-every", "5"] + shared)
    print("1/2 rendering the teapot turntable ...")
    cmd_render(render)
    print("2/2 fitting the teapot's shape to a silhouette (examples/2_fit_shape.py, smaller) ...")
    code = cmd_fit(fit)
    with open(os.path.join(fit_out, "metrics.json")) as fh:
        m = json.load(fh)
    print(f"demo done in {time.time() - start:.0f} s: silhouette IoU {m['iou_initial']:.3f} -> {m['iou_final']:.3f}")
    print(f"look at {os.path.join(args.out, 'turntable.gif')} and {os.path.join(fit_out, 'optimization.gif')}")
    return code


def cmd_bench(args):
    import torch
    from tqdm.auto import tqdm

    from .. import bench
    from ..bench.provenance import metadata
    if args.work:
        return bench.write_work_model(args.out, args.quick)
    device = resolve_device(args.device)
    threads = args.threads or (1 if device.type == "cpu" else None)
    if threads:  # a CPU benchmark on one thread by default: comparable on a shared machine
        bench.set_threads(threads)
    cases = bench.select_gradient(bench.select_raster(bench.grid(args.quick, device), args.raster), args.gradient)
    if args.backend != "auto":
        cases = [c for c in cases if c.backend.startswith(args.backend) or c.backend == "torch"]
    if args.peers:
        peer, notices = bench.peer_cases(cases, device)
        cases += peer
        for notice in notices:
            print(f"peer skipped: {notice}")
    out = output_dir(args.out)
    rows = []
    for case in tqdm(cases, desc="bench", unit="case"):
        try:
            rows.append(bench.run_case(case, device, repeats=args.repeats))
        except torch.cuda.OutOfMemoryError:
            tqdm.write(f"out of memory: {case}")
            torch.cuda.empty_cache()
    rows = bench.add_speedups(rows)
    meta = metadata(device)
    plotted = bench.write(rows, meta, out)
    print(bench.to_markdown(rows, meta))
    print(f"wrote {out}/results.json, results.md" + (", results.png" if plotted else " (no matplotlib: no plot)"))


def build_parser():
    p = ArgumentParser(prog="tritonnmr", description="Differentiable mesh rendering with Triton kernels.",
                       formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = subcommand(sub, "render", f"render a mesh: render.png (a three-quarter view, azimuth {RENDER_AZIMUTH:g}) "
                   "and turntable.gif")
    r.add_argument("mesh", nargs="?", help=f"{MESH_HELP} (default: the bundled teapot)")
    r.add_argument("--out", default="out/render", help="output folder")
    r.add_argument("--frames", type=positive_int, default=24,
                   help=f"turntable frames (azimuths 360/N apart, from {RENDER_AZIMUTH:g}: the first is render.png)")
    r.add_argument("--elevation", type=finite_float, default=30.0, help="camera elevation in degrees")
    r.add_argument("--distance", type=positive_float, default=DEFAULT_DISTANCE,
                   help=f"camera distance from the mesh's centre, the mesh scaled into [-1, 1]^3 (default: "
                        f"{DEFAULT_DISTANCE:.4g}, where it fills the default 30-degree view)")
    r.add_argument("--texture", choices=["cubes", "uv"], default="cubes",
                   help="how a textured mesh is drawn: cubes bakes its texture images, material or vertex colours "
                        "into per-face texture cubes of --texture-size (neural_renderer's load_obj); uv samples its "
                        "texture images (map_Kd) through its uvs at every pixel, as sharp as the images (a mesh "
                        "with vertex colours only is still drawn with cubes)")
    r.add_argument("--texture-size", type=positive_int, default=4,
                   help="texture cube size when the mesh has a texture, material or vertex colours (--texture cubes)")
    r.add_argument("--image-size", type=image_size, default=256, help=IMAGE_SIZE_HELP)
    add_device_options(r)
    r.set_defaults(func=cmd_render)

    f = subcommand(sub, "fit", "fit a shape, textures or a camera to a target image (neural_renderer's examples)")
    f.add_argument("what", choices=["shape", "texture", "camera"],
                   help="shape: move the vertices (example 2); texture: paint per-face textures (example 3); "
                        "camera: move the eye (example 4)")
    f.add_argument("--target", help="target image (default: the example's bundled target)")
    f.add_argument("--mesh", help=f"starting {MESH_HELP} (default: the bundled teapot)")
    f.add_argument("--iterations", type=positive_int, default=300, help="Adam steps; the camera fit stops early once it fits")
    f.add_argument("--lr", type=positive_float, default=None,
                   help="Adam step (default: the example's: shape 0.001, texture 0.1, camera 0.1)")
    f.add_argument("--texture", choices=["cubes", "uv"], default="cubes",
                   help="texture fit: cubes paints per-face texture cubes (neural_renderer's example 3); uv paints "
                        "one image, mapped by a projection around the vertical axis (--uv-projection)")
    f.add_argument("--texture-size", type=positive_int, default=4, help="texture cube size (--texture cubes)")
    f.add_argument("--uv-size", type=image_size, default=128,
                   help="texture image size for --texture uv: S for S x S texels, or WIDTHxHEIGHT")
    f.add_argument("--uv-projection", choices=["cylindrical", "spherical"], default="cylindrical",
                   help="how --texture uv maps the image onto the mesh: cylindrical (image rows are heights) or "
                        "spherical (rows are latitudes)")
    f.add_argument("--frame-every", type=positive_int, default=10, help="one optimization.gif frame every N steps")
    add_gradient_options(f)
    f.add_argument("--out", default="out/fit", help=f"{OUT_MESH_HELP}; a folder gets result.obj (shape, texture; "
                   "camera writes no mesh)")
    f.add_argument("--image-size", type=image_size, default=256, help=IMAGE_SIZE_HELP)
    add_device_options(f)
    f.set_defaults(func=cmd_fit)

    d = subcommand(sub, "demo", "render the bundled teapot and fit its shape (about a minute on a CPU)")
    d.add_argument("--out", default="out/demo", help="output folder")
    d.add_argument("--iterations", type=positive_int, default=300, help="shape-fit steps")
    d.add_argument("--image-size", type=image_size, default=128, help=IMAGE_SIZE_HELP)
    add_device_options(d)
    d.set_defaults(func=cmd_demo)

    b = subcommand(sub, "bench", "time the backends across sizes (see benchmarks/README.md)")
    b.add_argument("--quick", action="store_true", help="a few CPU-sized cases (about a minute)")
    b.add_argument("--repeats", type=positive_int, default=5, help="timed runs per case (the median is reported)")
    b.add_argument("--out", default="out/bench", help="output folder")
    b.add_argument("--peers", action="store_true",
                   help="add Mitsuba 3 (direct_projective, 1 and 4 spp) beside the teapot silhouette cases, "
                        "when installed (see benchmarks/README.md)")
    b.add_argument("--threads", type=positive_int, default=None,
                   help="threads for torch, numba and Mitsuba (default: 1 on the CPU, as in the comparison in "
                        "benchmarks/README.md, since a busy machine makes wider pools erratic; as torch starts on a GPU)")
    b.add_argument("--gradient", choices=list(ESTIMATORS) + ["all"], default="all",
                   help="the estimators whose rows are timed (the soft rows at several sigmas), or all")
    b.add_argument("--raster", choices=["binned", "face", "pixel-loop", "all"], default="all",
                   help="the Triton rows' forward z-buffer: binned (what the renderer runs), face (one program per "
                        "face, atomic), pixel-loop (every pixel loops over all faces), or all three")
    b.add_argument("--work", action="store_true",
                   help="instead of timing, write the kernels' work model (exact counts of programs, loop trips, "
                        "coverage tests, atomics, bytes; no GPU needed) to --out (see benchmarks/README.md)")
    add_device_options(b, backend_help="limit the columns to this backend (the torch reference always runs)")
    b.set_defaults(func=cmd_bench, own_threads=True)

    from .editing.commands import add_parsers as add_editing
    from .reconstruction.commands import add_parser as add_reconstruct
    add_editing(sub)
    add_reconstruct(sub)
    return p


def main(argv=None):
    """Run the command line; -> exit status (0 done, 2 bad input, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0), or a bad value: argparse has printed its one line (2)
        return e.code
    (top, existing), status = folders_before(getattr(args, "out", None)), None  # for a run that fails
    try:
        refuse_beyond_memory(args)  # before anything is read or allocated
        load_libraries(args.command)
        work_begins()  # Ctrl-C: KeyboardInterrupt from here on (before: the process ends at once)
        if not getattr(args, "own_threads", False):  # bench and reconstruct's launched steps set their own
            apply_threads(args)
        status = args.func(args) or 0
    except UserError as e:
        print(f"tritonnmr: error: {one_line(e)}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:  # Ctrl-C outside a fit's loop (which stops cleanly and keeps what it has)
        status = interrupted()
    finally:
        if status != 0 and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 owns the folder
            remove_empty_folders(top, existing)
    return status


if __name__ == "__main__":
    sys.exit(main())
