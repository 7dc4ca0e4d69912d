"""``tritonnmr reconstruct make-data | train | eval | predict | run``: the experiment from the command line."""
import argparse
import os
from dataclasses import replace

import torch

from ..cli import UserError, _device, _out_dir, _target


def _config(args):
    from .training import FULL, QUICK
    config = QUICK if args.quick else FULL
    changes = {k: getattr(args, k) for k in ("iterations", "batch_size", "lr", "seed")
               if getattr(args, k, None) is not None}
    return replace(config, backend=args.backend, **changes)


def _dataset(directory, split):
    from .data import Dataset
    try:
        return Dataset(directory, split)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def cmd_make_data(args):
    from .data import make_dataset
    out = _out_dir(args.out)
    n = args.objects_per_class or (24 if args.quick else 200)
    counts = make_dataset(out, n, args.test_objects, seed=args.seed or 0, backend=args.backend)
    print(f"wrote {len(counts)} categories x ({n} train + {next(iter(counts.values()))[1]} test) objects to {out}")


def cmd_train(args):
    from .training import train
    device = _device(args.device)
    out = _out_dir(args.out)
    dataset = _dataset(args.data, "train")
    path = os.path.join(out, f"{args.model}.pt")
    try:
        _, history = train(args.model, dataset, path, _config(args), device, resume=not args.restart)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    if history["loss"]:
        print(f"trained {args.model}: {len(history['loss'])} iterations, loss {history['loss'][0]:.3f} -> "
              f"{sum(history['loss'][-20:]) / len(history['loss'][-20:]):.3f} (last 20), {history['seconds']:.0f} s; "
              f"checkpoint {path}")


def cmd_eval(args):
    from ..bench import metadata
    from .training import evaluate, load_checkpoint, report
    device = _device(args.device)
    out = _out_dir(args.out or args.run)
    trained, configs = {}, {}
    for kind in ("mesh", "voxel"):
        path = os.path.join(args.run, f"{kind}.pt")
        if os.path.isfile(path):
            try:
                trained[kind], ckpt = load_checkpoint(path, kind, device)
            except (FileNotFoundError, ValueError) as e:
                raise UserError(str(e)) from None
            configs[kind] = dict(ckpt["config"], iterations_done=ckpt["iteration"],
                                 train_seconds=round(ckpt["history"].get("seconds", 0.0), 1))
    if not trained:
        raise UserError(f"no mesh.pt or voxel.pt in {args.run} (train with `tritonnmr reconstruct train`)")
    test_set, train_set = _dataset(args.data, "test"), _dataset(args.data, "train")
    views = args.views or next(iter(configs.values()))["eval_views"]
    categories, thresholds = evaluate(trained, test_set, train_set, views, device)
    meta = metadata(device)
    config = {"models": configs, "eval_views": views, "data": os.path.abspath(args.data),
              "train_objects": len(train_set), "test_objects": len(test_set),
              "voxel_threshold": thresholds.get("voxel")}
    result = report(categories, config, out, meta["device"], meta["commit"], {"date": meta["date"]})
    with open(os.path.join(out, "results.md")) as fh:
        print(fh.read(), end="")
    print("mean voxel IoU: " + ", ".join(f"{k} {v:.3f}" for k, v in result["mean"].items()))
    print(f"wrote {out}/results.json, results.md, results.png")


def cmd_predict(args):
    import tritonnmr as nr

    from ..media import save_gif, turntable
    from .training import load_checkpoint, predict_occupancy
    from .voxels import voxel_surface
    device = _device(args.device)
    out = _out_dir(args.out)
    try:
        model, _ = load_checkpoint(args.checkpoint, None, device)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    image = _target(args.image, 64, alpha=True)[None].to(device)  # RGBA, the dataset's size
    model.eval()
    with torch.no_grad():
        if model.kind == "mesh":
            vertices, faces = model(image)[0], model.faces
        else:
            occupancy = predict_occupancy(model, image, args.threshold)[0]
            if not occupancy.any():
                raise UserError(f"the voxel model predicts no occupied voxel for {args.image} at threshold "
                                f"{args.threshold}; try a lower --threshold")
            vertices, faces = voxel_surface(occupancy)
    nr.save_obj(os.path.join(out, "result.obj"), vertices.cpu(), faces.cpu())
    r = nr.Renderer(image_size=128, camera_mode="look_at", viewing_angle=15)
    save_gif(os.path.join(out, "turntable.gif"), turntable(r, vertices[None].cpu(), faces[None].cpu()))
    print(f"wrote {out}/result.obj ({len(vertices)} vertices, {len(faces)} faces) and {out}/turntable.gif")


def cmd_run(args):
    """The whole experiment: make-data, train both models, eval."""
    ns = argparse.Namespace
    data_dir, run_dir = os.path.join(args.out, "data"), os.path.join(args.out, "run")
    if not os.path.isdir(data_dir) or not any(n.endswith("_test_voxels.npz") for n in os.listdir(data_dir)):
        cmd_make_data(ns(out=data_dir, objects_per_class=args.objects_per_class, test_objects=None, seed=args.seed,
                         quick=args.quick, backend=args.backend))
    for kind in ("mesh", "voxel"):
        cmd_train(ns(model=kind, data=data_dir, out=run_dir, device=args.device, backend=args.backend, quick=args.quick,
                     iterations=args.iterations, batch_size=args.batch_size, lr=None, seed=args.seed, restart=False))
    cmd_eval(ns(data=data_dir, run=run_dir, out=args.results or run_dir, device=args.device, views=None))


def add_parser(sub):
    """Register ``reconstruct`` and its subcommands on the main parser's subparsers."""
    p = sub.add_parser("reconstruct",
                       help="single-image mesh reconstruction vs a voxel baseline (the paper's sec. 4.1)")
    rs = p.add_subparsers(dest="reconstruct_command", required=True)

    def common(sp):
        sp.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if available")
        sp.add_argument("--backend", choices=["auto", "torch", "triton"], default="auto")
        sp.add_argument("--seed", type=int, default=None)

    def training(sp):
        sp.add_argument("--quick", action="store_true", help="the small CPU configuration (minutes)")
        sp.add_argument("--iterations", type=int, default=None)
        sp.add_argument("--batch-size", type=int, default=None)

    m = rs.add_parser("make-data", help="generate the procedural 13-category dataset (paper's file format)")
    m.add_argument("--objects-per-class", type=int, default=None, help="training objects per category "
                   "(default 24 with --quick, else 200)")
    m.add_argument("--test-objects", type=int, default=None, help="test objects per category (default N/4)")
    m.add_argument("--quick", action="store_true")
    m.add_argument("--out", default="out/reconstruction/data")
    common(m)
    m.set_defaults(func=cmd_make_data)

    t = rs.add_parser("train", help="train the mesh generator or the voxel baseline from silhouettes")
    t.add_argument("--model", choices=["mesh", "voxel"], required=True)
    t.add_argument("--data", default="out/reconstruction/data", help="dataset directory (*.npz files)")
    t.add_argument("--out", default="out/reconstruction/run", help="where <model>.pt is written")
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint instead of resuming")
    training(t)
    common(t)
    t.set_defaults(func=cmd_train)

    e = rs.add_parser("eval", help="voxel IoU per category of the trained models: results.json/.md/.png")
    e.add_argument("--data", default="out/reconstruction/data")
    e.add_argument("--run", default="out/reconstruction/run", help="directory holding mesh.pt and/or voxel.pt")
    e.add_argument("--out", default=None, help="default: the --run directory")
    e.add_argument("--views", type=int, nargs="+", default=None, help="input view ids (default: the config's)")
    common(e)
    e.set_defaults(func=cmd_eval)

    pr = rs.add_parser("predict", help="reconstruct one RGBA image: result.obj and turntable.gif")
    pr.add_argument("image")
    pr.add_argument("--checkpoint", default="out/reconstruction/run/mesh.pt")
    pr.add_argument("--out", default="out/reconstruction/predict")
    pr.add_argument("--threshold", type=float, default=0.5, help="occupancy threshold (voxel model)")
    common(pr)
    pr.set_defaults(func=cmd_predict)

    r = rs.add_parser("run", help="make-data, train both models, eval: the whole experiment")
    r.add_argument("--out", default="out/reconstruction")
    r.add_argument("--results", default=None, help="where results.* go (default: OUT/run)")
    r.add_argument("--objects-per-class", type=int, default=None)
    training(r)
    common(r)
    r.set_defaults(func=cmd_run)


__all__ = ["add_parser"]
