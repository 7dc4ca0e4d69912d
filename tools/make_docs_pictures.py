"""Regenerate the pictures in docs/ with the current code, by running the commands that make them.

    .venv/bin/python tools/make_docs_pictures.py [--work out/docs] [--backend auto] [--only NAME ...]

Each picture comes from one ``tritonnmr`` command (run in this process, outputs under ``--work``)
and is copied to docs/ under its README name; two are drawn here: the textured display model
rendered with texture cubes and with its UV maps side by side, and the fitted UV texture image
scaled up. Prints, per command, what it measured (its own summary line), wall and process CPU time,
and at the end the size of every picture written.

docs picture <- command (its file):

- teapot_turntable.gif <- tritonnmr render --image-size 128 (turntable.gif)
- teapot_320x240.gif <- tritonnmr render --image-size 320x240 --frames 24 (turntable.gif)
- fit_shape.gif <- tritonnmr fit shape --image-size 128 --frame-every 5 (optimization.gif)
- fit_texture.gif <- tritonnmr fit texture --image-size 128 (result.gif)
- fit_texture_uv.gif <- tritonnmr fit texture --texture uv --image-size 128 (result.gif); fit_texture_uv.png
  is its result_0.png, the fitted image, scaled 2x
- fit_camera.gif, fit_camera_result.gif <- tritonnmr fit camera --image-size 128 --frame-every 5
  (optimization.gif, result.gif)
- teapot_before.gif, style_mosaic.gif, style_mosaic.png <- tritonnmr style with pretrained EfficientNet-Lite0
  (before.gif, result.gif, style_mosaic.png); style_stripes.gif, style_stripes.png likewise with --style stripes
- style_mosaic_random.gif <- tritonnmr style --network vgg16 --weights random (result.gif: the fallback)
- dream.gif <- tritonnmr dream with pretrained EfficientNet-Lite0 (result.gif); dream_random.gif <- tritonnmr
  dream --network vgg16 --weights random (the fallback)
- display_cubes_vs_uv.png: drawn here (load_obj texture_size 4 vs texture_format="uv")
- soft_sigmas.png: drawn here (gradient="soft" at sigma 1e-5 to 1e-2 beside the hard image)

- reconstruction.gif <- tritonnmr reconstruct predict with the per-category mesh models of a finished
  run (only with ``--only reconstruction --reconstruction-run RUN --reconstruction-data DATA``, where RUN
  holds CLASS_ID/mesh.pt from ``reconstruct train --per-category`` and DATA the dataset): per category
  a row, the test image the network never saw (upscaled) beside the reconstruction turning
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

# style and dream pictures: the pretrained features (never a silent fallback), and the fallback itself
PRETRAINED = ["--network", "efficientnet-lite0", "--weights", "pretrained"]
FALLBACK = ["--network", "vgg16", "--weights", "random"]
# name: (tritonnmr arguments, {file it writes: docs picture})
COMMANDS = {
    "render": (["render", "--image-size", "128"], {"turntable.gif": "teapot_turntable.gif"}),
    "render_320x240": (["render", "--image-size", "320x240", "--frames", "24"],
                       {"turntable.gif": "teapot_320x240.gif"}),
    "fit_shape": (["fit", "shape", "--image-size", "128", "--frame-every", "5"],
                  {"optimization.gif": "fit_shape.gif"}),
    "fit_texture": (["fit", "texture", "--image-size", "128"], {"result.gif": "fit_texture.gif"}),
    "fit_texture_uv": (["fit", "texture", "--texture", "uv", "--image-size", "128"],
                       {"result.gif": "fit_texture_uv.gif"}),
    "fit_camera": (["fit", "camera", "--image-size", "128", "--frame-every", "5"],
                   {"optimization.gif": "fit_camera.gif", "result.gif": "fit_camera_result.gif"}),
    "style": (["style"] + PRETRAINED, {"before.gif": "teapot_before.gif", "result.gif": "style_mosaic.gif",
                                       "style_mosaic.png": "style_mosaic.png"}),
    "style_stripes": (["style", "--style", "stripes"] + PRETRAINED,
                      {"result.gif": "style_stripes.gif", "style_stripes.png": "style_stripes.png"}),
    "style_random": (["style"] + FALLBACK, {"result.gif": "style_mosaic_random.gif"}),
    "dream": (["dream"] + PRETRAINED, {"result.gif": "dream.gif"}),
    "dream_random": (["dream"] + FALLBACK, {"result.gif": "dream_random.gif"}),
}
DRAWN = ("display", "uv_texture", "soft_sigmas")
RECONSTRUCTION = {"car": "02958343", "sofa": "04256520"}  # category: ShapeNet class id


def run_command(name, work, backend):
    """Run one tritonnmr command into work/name and copy its pictures to DOCS; -> its record."""
    from tritonnmr.apps.cli import main
    argv, pictures = COMMANDS[name]
    out = os.path.join(work, name)
    argv = argv + ["--out", out, "--backend", backend]
    print(f"== tritonnmr {' '.join(argv)}", flush=True)
    wall, cpu = time.time(), time.process_time()
    code = main(argv)
    wall, cpu = time.time() - wall, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"tritonnmr {' '.join(argv)} exited with status {code}")
    for source, target in pictures.items():
        shutil.copyfile(os.path.join(out, source), os.path.join(DOCS, target))
    metrics = os.path.join(out, "metrics.json")
    record = {"command": "tritonnmr " + " ".join(argv), "wall_s": wall, "cpu_s": cpu,
              "pictures": list(pictures.values())}
    if os.path.exists(metrics):
        with open(metrics) as fh:
            record["metrics"] = json.load(fh)
    print(f"   {wall:.0f} s wall, {cpu:.0f} s CPU -> {', '.join(pictures.values())} in {DOCS}", flush=True)
    return record


def draw_display(backend, size=256, elevation=15.0, azimuth=-30.0):
    """docs/display_cubes_vs_uv.png: the textured display model, texture cubes (texture_size 4) on
    the left, its UV maps on the right, same camera and lights, each panel labelled."""
    import torch

    import tritonnmr as nr
    from tritonnmr.apps.media import label, save_png, side_by_side, to_uint8
    path = nr.data_path("textured_display/model.obj")
    v, f, cubes = nr.load_obj(path, load_texture=True, texture_size=4, device="cpu")
    _, _, uv = nr.load_obj(path, load_texture=True, texture_format="uv", device="cpu")
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend=backend)
    r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, elevation, azimuth)
    with torch.no_grad():
        left = to_uint8(r(v[None], f[None], cubes[None])[0][0])
        right = to_uint8(r(v[None], f[None], uv)[0][0])
    picture = side_by_side(label(left, "texture cubes (T = 4)"), label(right, "UV maps"))
    save_png(os.path.join(DOCS, "display_cubes_vs_uv.png"), picture)
    return {"picture": "display_cubes_vs_uv.png", "size": list(picture.shape[:2])}


def draw_soft_sigmas(backend, size=128, sigmas=(1e-5, 1e-4, 1e-3, 1e-2)):
    """docs/soft_sigmas.png: the teapot's soft silhouette (top) and soft RGB (bottom) at each sigma,
    gradient="soft", beside the hard image, each panel labelled."""
    import torch

    import tritonnmr as nr
    from tritonnmr.apps.media import label, save_png, side_by_side, to_uint8
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    textures = torch.ones(1, f.shape[0], 2, 2, 2, 3) * torch.tensor([0.9, 0.6, 0.3])
    rows = [[], []]
    for sigma in (None,) + tuple(sigmas):
        kw = dict(gradient="soft", sigma=sigma, gamma=1e-4) if sigma else {}
        r = nr.Renderer(image_size=size, camera_mode="look_at", backend=backend, background_color=(1, 1, 1), **kw)
        r.eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, 45)
        with torch.no_grad():
            alpha = r(v[None], f[None], mode="silhouettes")[0]
            rgb = r(v[None], f[None], textures)[0][0]
        name = "hard" if sigma is None else f"sigma {sigma:g}"
        rows[0].append(label(to_uint8(alpha.expand(3, -1, -1)), name))
        rows[1].append(label(to_uint8(rgb), name))
    picture = np.concatenate([side_by_side(*row) for row in rows], 0)
    save_png(os.path.join(DOCS, "soft_sigmas.png"), picture)
    return {"picture": "soft_sigmas.png", "size": list(picture.shape[:2]), "sigmas": list(sigmas)}


def draw_uv_texture(work, scale=2):
    """docs/fit_texture_uv.png: the fitted UV texture image of the fit_texture_uv run, scaled up
    (nearest) so its texels show."""
    import imageio.v3 as iio
    image = iio.imread(os.path.join(work, "fit_texture_uv", "result_0.png"))[..., :3]
    image = np.repeat(np.repeat(image, scale, 0), scale, 1)
    iio.imwrite(os.path.join(DOCS, "fit_texture_uv.png"), image)
    return {"picture": "fit_texture_uv.png", "size": list(image.shape[:2])}


def draw_reconstruction(work, run, data, backend, obj=0, view=3, scale=2):
    """docs/reconstruction.gif: for each category of RECONSTRUCTION, test object `obj` seen from
    `view` (64 x 64 RGBA, composited on white and upscaled) beside `reconstruct predict`'s turntable
    of the reconstruction by that category's mesh model; one row per category."""
    import imageio.v3 as iio

    from tritonnmr.apps.cli import main as cli
    from tritonnmr.apps.media import label, save_gif, side_by_side
    from tritonnmr.apps.reconstruction.data import load_category
    rows = []
    for name, class_id in RECONSTRUCTION.items():
        images, _ = load_category(data, class_id, "test")
        rgba = images[obj, view].transpose(1, 2, 0)  # (64, 64, 4)
        out = os.path.join(work, f"reconstruction_{name}")
        os.makedirs(out, exist_ok=True)
        image_path = os.path.join(out, "input.png")
        iio.imwrite(image_path, rgba)
        checkpoint = os.path.join(run, class_id, "mesh.pt")
        argv = ["reconstruct", "predict", image_path, "--checkpoint", checkpoint, "--out", out,
                "--image-size", str(64 * scale), "--backend", backend]
        print(f"== tritonnmr {' '.join(argv)}", flush=True)
        if cli(argv) != 0:
            raise SystemExit(f"tritonnmr {' '.join(argv)} failed")
        alpha = rgba[..., 3:].astype(np.float32) / 255
        flat = (rgba[..., :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)  # on white
        flat = label(np.repeat(np.repeat(flat, scale, 0), scale, 1), f"{name}: input")
        turning = [label(np.ascontiguousarray(f[..., :3]), "mesh model")
                   for f in iio.imread(os.path.join(out, "turntable.gif"), index=None)]
        rows.append([side_by_side(flat, frame) for frame in turning])
    gap = np.full((2, rows[0][0].shape[1], 3), 64, dtype=np.uint8)
    frames = [np.concatenate([part for row in parts for part in (row, gap)][:-1], 0) for parts in zip(*rows)]
    save_gif(os.path.join(DOCS, "reconstruction.gif"), frames)
    return {"picture": "reconstruction.gif", "size": list(frames[0].shape[:2]), "frames": len(frames),
            "run": os.path.abspath(run)}


def main(argv=None):
    global DOCS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=os.path.join(ROOT, "out", "docs"), help="where the commands write")
    p.add_argument("--backend", default="auto", help="rasterizer backend of every command (default: auto)")
    p.add_argument("--only", nargs="+", choices=list(COMMANDS) + list(DRAWN) + ["reconstruction"],
                   help="make only these (reconstruction only when named, with the two options below)")
    p.add_argument("--reconstruction-run", help="a per-category run folder (CLASS_ID/mesh.pt)")
    p.add_argument("--reconstruction-data", help="the dataset the run was trained on")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and numba threads (default: as they start)")
    p.add_argument("--docs", default=DOCS, help="where the pictures go (default: the repository's docs/)")
    args = p.parse_args(argv)
    DOCS = os.path.abspath(args.docs)
    os.makedirs(DOCS, exist_ok=True)
    if args.threads:
        from tritonnmr import bench
        bench.set_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    records = []
    for name in args.only or list(COMMANDS) + list(DRAWN):
        if name == "display":
            records.append(draw_display(args.backend))
        elif name == "uv_texture":
            records.append(draw_uv_texture(args.work))
        elif name == "soft_sigmas":
            records.append(draw_soft_sigmas(args.backend))
        elif name == "reconstruction":
            if not (args.reconstruction_run and args.reconstruction_data):
                p.error("--only reconstruction needs --reconstruction-run and --reconstruction-data")
            records.append(draw_reconstruction(args.work, args.reconstruction_run, args.reconstruction_data,
                                               args.backend))
        else:
            records.append(run_command(name, args.work, args.backend))
    log = os.path.join(args.work, f"records-{int(time.time())}.json")
    with open(log, "w") as fh:
        json.dump(records, fh, indent=2)
    print(f"records in {log}")
    for name in sorted(os.listdir(DOCS)):
        if name.endswith((".gif", ".png")):
            print(f"{os.path.join(DOCS, name)}: {os.path.getsize(os.path.join(DOCS, name)) / 1024:.0f} KB")


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
