"""``tritonnmr reconstruct make-data | train | eval | predict | run``: the experiment from the command line."""
import argparse
import os
from contextlib import contextmanager
from dataclasses import replace

import torch

from ..cli_common import (IMAGE_SIZE_HELP, INTERRUPTED, OUT_MESH_HELP, UserError, add_device_options, add_gradient_options,
                          compile_first, fraction, image_size, load_target, output_dir, output_paths, positive_float, positive_int,
                          resolve_device, subcommand, write_mesh)
from .config import LR_DROP_FACTOR
from .data import VIEWS
from .distributed import DEFAULT_TIMEOUT_S

WINDOW = 20  # training steps averaged for the progress the train command reports


def view_id(text):
    """One of the dataset's 24 viewpoint ids, 0 ... 23."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < VIEWS:
        raise argparse.ArgumentTypeError(f"must be a view id from 0 to {VIEWS - 1}, got {text}")
    return value


def category_list(text):
    """``--categories``: comma-separated category names or class ids, e.g. ``car,chair`` or ``02958343``."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated category names or class ids, got {text!r}")
    return names


def _categories(directory, names, split="train"):
    from .per_category import select
    try:
        return select(directory, names, split)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def _config(args):
    from .config import FULL, QUICK
    config = QUICK if args.quick else FULL
    changes = {k: getattr(args, k) for k in ("iterations", "batch_size", "lr", "seed", "cross_views", "lr_drop",
                                             "gradient", "sigma", "gamma") if getattr(args, k, None) is not None}
    return replace(config, backend=args.backend, **changes)


def _dataset(directory, split, class_ids=None):
    from .data import Dataset
    try:
        return Dataset(directory, split, class_ids)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def _checkpoint(path, kind, device):
    from .checkpoints import load_checkpoint
    try:
        return load_checkpoint(path, kind, device)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


@contextmanager
def _ranks(args):
    """The ranks this command runs on: torchrun's process group when launched by it (each rank on its own
    device, ``--threads`` torch and numba threads each), else this process alone. A problem with the
    launch, a lost rank or a user error on one of several ranks is a one-line UserError naming the rank."""
    from .distributed import LaunchError, PeerLost, session
    try:
        with session(args.device, args.timeout) as context:
            _set_threads(args.threads, context)
            try:
                yield context
            except UserError as e:
                if context.distributed and not isinstance(e, _AllRanks):
                    raise UserError(f"{context.label()}: {e}") from None
                raise
    except (LaunchError, PeerLost) as e:
        raise UserError(str(e)) from None


class _AllRanks(UserError):
    """An error every rank knows of (gathered): rank 0 reports it, naming the ranks concerned."""


def _set_threads(threads, context):
    """``--threads`` torch and numba threads; on several ranks, by default numba follows torch (which
    torchrun starts at one thread a rank), so the ranks do not crowd the cores."""
    if threads is None and not context.distributed:
        return
    from ...threads import set_threads
    set_threads(threads or torch.get_num_threads())


def _spread(class_ids, work, context, what):
    """:func:`.per_category.spread`; failed categories are a UserError on rank 0 and exit status 2 on the
    others (rank 0 names them all) -> (results, None) or (None, 2)."""
    from .per_category import CategoryFailures, spread
    try:
        return spread(class_ids, work, context, what), None
    except CategoryFailures as e:
        if context.is_main:
            raise _AllRanks(str(e)) from None
        return None, 2


def cmd_make_data(args):
    with _ranks(args) as context:
        return _make_data(args, context)


def _make_data(args, context):
    from .data import make_dataset
    n = args.objects_per_class if args.objects_per_class is not None else (24 if args.quick else 200)
    class_ids = None
    if getattr(args, "categories", None):
        from .shapes import CATEGORIES
        by_name = {name: c for c, (name, _) in CATEGORIES.items()}
        unknown = [n for n in args.categories if by_name.get(n, n) not in CATEGORIES]
        if unknown:
            raise UserError(f"--categories: the generator makes no category {unknown[0]!r} (it makes: "
                            + ", ".join(by_name) + ")")
        class_ids = [c for c in CATEGORIES if c in {by_name.get(n, n) for n in args.categories}]
    out = output_dir(args.out) if context.is_main else args.out
    if not context.distributed:  # under torchrun, context.warm compiles on one rank per node
        compile_first(args.backend, context.device)
    counts = make_dataset(out, n, args.test_objects, seed=args.seed, class_ids=class_ids, backend=args.backend,
                          context=context)
    if context.is_main:
        print(f"wrote {len(counts)} categories x ({n} train + {next(iter(counts.values()))[1]} test) objects to {out}"
              + (f" ({context.world_size} ranks)" if context.distributed else ""))


def _training_report(kind, history, path):
    """The line the train command prints for one trained model."""
    from .training import mean_iou
    steps = len(history["iou_loss"])
    if not steps:
        return f"trained {kind}: no steps; checkpoint {path}"
    window = max(1, min(WINDOW, steps // 2))
    first, last = mean_iou(history, slice(None, window)), mean_iou(history, slice(-window, None))
    return (f"trained {kind}: {steps} steps, {history['seconds']:.0f} s; training silhouette IoU (soft, mean over the "
            f"rendered views and {window} step{'s' if window > 1 else ''}) {first:.3f} at the start -> {last:.3f} at "
            f"the end; checkpoint {path}")


def cmd_train(args):
    with _ranks(args) as context:
        return _train(args, context)


def _train(args, context):
    from .per_category import model_path
    from .training import train
    class_ids = _categories(args.data, args.categories)
    config = _config(args)
    if not args.per_category:  # one model for every category, trained by all the ranks together
        dataset = _dataset(args.data, "train", class_ids)
        path = os.path.join(args.out, f"{args.model}.pt")
        try:
            context.part(config.batch_size)  # before anything is written
        except ValueError as e:
            raise UserError(str(e)) from None
        if context.is_main:
            output_dir(args.out)
        if not context.distributed:
            compile_first(args.backend, context.device)
        try:
            _, history = train(args.model, dataset, path, config, context.device, resume=not args.restart,
                               save_every=args.save_every, context=context)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from None
        if context.is_main:
            print(_training_report(args.model, history, path))
        return INTERRUPTED if history["interrupted"] else None
    if context.distributed:  # one model per category, each rank training its share of the categories
        _warm_per_category(args.model, config, context)
    else:
        compile_first(args.backend, context.device)

    def train_one(class_id):  # RUN/<class_id>/MODEL.pt
        dataset = _dataset(args.data, "train", [class_id])
        path = model_path(args.out, class_id, args.model)
        output_dir(os.path.dirname(path))
        _, history = train(args.model, dataset, path, config, context.device, resume=not args.restart,
                           progress=context.is_main, save_every=args.save_every)
        if history["interrupted"]:  # its checkpoint is saved; the categories after it are not started
            raise KeyboardInterrupt
        return f"{class_id} ({dataset.names()[0]}): {len(dataset)} training objects; " + \
            _training_report(args.model, history, path)

    reports, status = _spread(class_ids, train_one, context, "training their categories")
    if context.is_main and reports:
        print("\n".join(reports.values()))
    return status


def _warm_per_category(kind, config, context):
    """Compile the renderer's kernels once per node before the ranks train their categories at once."""
    from . import models
    from .training import warm_up
    if kind == "mesh":
        model = models.build(kind, **config.model_options()).to(context.device)
        context.warm(lambda: warm_up(model, config.batch_size, config, context.device))


def _eval_per_category(args, context):
    """Evaluate every category with its own models, the categories spread over the ranks -> (categories,
    config, times) for the report, on every rank; None on the ranks other than 0 when categories failed."""
    from .per_category import CategoryFailures, evaluate_each
    from .shapes import CATEGORIES
    class_ids = _categories(args.data, args.categories, "test")
    if args.categories is None:  # every category that has models
        class_ids = [c for c in class_ids if os.path.isdir(os.path.join(args.run, c))]
    if not class_ids:
        raise UserError(f"no per-category models in {args.run} (train with `tritonnmr reconstruct train "
                        "--per-category`)")
    try:
        categories, details = evaluate_each(args.data, args.run, class_ids, args.views, context.device,
                                            context=context)
    except (CategoryFailures, ValueError) as e:  # the same on every rank (ValueError: models of other kinds)
        if context.is_main:
            raise _AllRanks(str(e)) from None
        return None
    per_name = {CATEGORIES.get(c, (c,))[0]: d for c, d in details.items()}
    configs = {n: d["models"] for n, d in per_name.items()}
    times = {n: {kind: (cfg["train_seconds"], cfg["train_cpu_seconds"]) for kind, cfg in c.items()}
             for n, c in configs.items()}
    config = {"per_category": True, "models": configs, "data": os.path.abspath(args.data)}
    for key in ("views", "train_objects", "test_objects", "voxel_threshold"):
        config["eval_views" if key == "views" else key] = {n: d[key] for n, d in per_name.items()}
    return categories, config, times


def cmd_eval(args):
    with _ranks(args) as context:
        return _eval(args, context)


def _eval(args, context):
    from ...bench.provenance import metadata
    from .evaluation import evaluate
    from .per_category import model_summary
    from .report import write_report
    device = context.device
    times = None
    if args.per_category:  # the categories spread over the ranks; rank 0 writes the table
        result = _eval_per_category(args, context)
        if result is None:
            return 2
        categories, config, times = result
    elif not context.is_main:  # one model for every category: rank 0 evaluates it alone
        return None
    else:
        trained, configs = {}, {}
        for kind in ("mesh", "voxel"):
            path = os.path.join(args.run, f"{kind}.pt")
            if os.path.isfile(path):
                trained[kind], ckpt = _checkpoint(path, kind, device)
                configs[kind] = model_summary(ckpt)
        if not trained:
            raise UserError(f"no mesh.pt or voxel.pt in {args.run} (train with `tritonnmr reconstruct train`)")
        class_ids = _categories(args.data, args.categories, "test")
        test_set, train_set = _dataset(args.data, "test", class_ids), _dataset(args.data, "train", class_ids)
        views = args.views or next(iter(configs.values()))["eval_views"]
        categories, thresholds = evaluate(trained, test_set, train_set, views, device)
        config = {"models": configs, "eval_views": views, "data": os.path.abspath(args.data),
                  "train_objects": len(train_set), "test_objects": len(test_set),
                  "voxel_threshold": thresholds.get("voxel")}
    if not context.is_main:
        return None
    out = output_dir(args.out or args.run)
    meta = metadata(device)
    result = write_report(categories, config, out, meta["device"], meta["commit"], {"date": meta["date"]}, times)
    with open(os.path.join(out, "results.md")) as fh:
        print(fh.read(), end="")
    print("mean voxel IoU: " + ", ".join(f"{k} {v:.3f}" for k, v in result["mean"].items()))
    print(f"wrote {out}/results.json, results.md, results.png")
    return None


def cmd_predict(args):
    from ..media import save_gif, turntable
    from .data import IMAGE_SIZE, camera
    from .evaluation import predict_occupancy
    from .voxels import voxel_surface
    device = resolve_device(args.device)
    model, _ = _checkpoint(args.checkpoint, None, device)
    try:  # the dataset's camera; a size the renderer refuses fails here, before any output
        r = camera(image_size=args.image_size, backend=args.backend)
    except ValueError as e:
        raise UserError(f"--image-size: {e}") from None
    image = load_target(args.image, IMAGE_SIZE, alpha=True)[None].to(device)  # RGBA, the dataset's size
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
    out, mesh_path = output_paths(args.out)  # --out DIR (DIR/result.obj) or DIR/NAME.glb|.ply|...
    write_mesh(mesh_path, vertices.cpu(), faces.cpu())
    save_gif(os.path.join(out, "turntable.gif"), turntable(r, vertices[None].cpu(), faces[None].cpu()))
    print(f"wrote {mesh_path} ({len(vertices)} vertices, {len(faces)} faces) and {out}/turntable.gif")


def cmd_run(args):
    """The whole experiment: make-data, train both models, eval; under torchrun, all on one process group."""
    with _ranks(args) as context:
        return _run(args, context)


def _run(args, context):
    ns = argparse.Namespace
    data_dir, run_dir = os.path.join(args.out, "data"), os.path.join(args.out, "run")
    missing = not os.path.isdir(data_dir) or not any(n.endswith("_test_voxels.npz") for n in os.listdir(data_dir))
    if context.broadcast(missing, "hearing from rank 0 whether the data exist"):  # rank 0's folder decides
        _make_data(ns(out=data_dir, objects_per_class=args.objects_per_class, test_objects=args.test_objects,
                      seed=args.seed, quick=args.quick, backend=args.backend, categories=args.categories), context)
    training = {k: getattr(args, k) for k in ("backend", "quick", "iterations", "batch_size", "seed", "categories",
                                              "per_category", "save_every", "cross_views", "lr_drop")}
    for kind in ("mesh", "voxel"):
        status = _train(ns(model=kind, data=data_dir, out=run_dir, lr=None, restart=False, **training), context)
        if status:
            return status
    return _eval(ns(data=data_dir, run=run_dir, out=args.results or run_dir, views=None, categories=args.categories,
                    per_category=args.per_category), context)


def add_parser(sub):
    """Register ``reconstruct`` and its subcommands on the main parser's subparsers."""
    p = subcommand(sub, "reconstruct", "single-image mesh reconstruction vs a voxel baseline (the paper's sec. 4.1)")
    rs = p.add_subparsers(dest="reconstruct_command", required=True, metavar="STEP")

    def categories(sp, per_category=None):
        sp.add_argument("--categories", type=category_list, default=None,
                        help="comma-separated category names or class ids, e.g. car,chair (default: every "
                             "category in the data)")
        if per_category:
            sp.add_argument("--per-category", action="store_true", help=per_category)

    def training(sp):
        sp.add_argument("--quick", action="store_true", help="the small CPU configuration (minutes; see README)")
        sp.add_argument("--iterations", type=positive_int, default=None, help="total training steps; a resumed "
                        "run continues up to it (default: 400 with --quick, else 20000)")
        sp.add_argument("--batch-size", type=positive_int, default=None,
                        help="objects per step, over all the ranks together (default: 16 with --quick, else 64)")
        sp.add_argument("--cross-views", action=argparse.BooleanOptionalAction, default=None,
                        help="predict from both views of each object and render each prediction into both, the "
                             "mean of four silhouette IoU losses (the paper's; default: on, off with --quick, which "
                             "predicts from the first view and renders it into both)")
        sp.add_argument("--lr-drop", type=fraction, default=None,
                        help=f"multiply the learning rate by {LR_DROP_FACTOR} from this fraction of the steps on "
                             "(default: 0.95, the paper's; with --quick the rate stays constant; 1: never)")
        sp.add_argument("--save-every", type=positive_int, default=100, help="write the checkpoint every N steps "
                        "(and when training stops)")

    def launch(sp):
        sp.add_argument("--threads", type=positive_int, default=None,
                        help="torch and numba threads per process (default: torch's; under torchrun numba follows "
                             "torch, which torchrun starts at 1 a rank)")
        sp.set_defaults(own_threads=True)  # set by _ranks, not by the CLI's main
        sp.add_argument("--timeout", type=positive_int, default=DEFAULT_TIMEOUT_S,
                        help="under torchrun: seconds a rank waits for a silent peer before it stops with an error")

    m = subcommand(rs, "make-data", "generate the procedural 13-category dataset (the paper's file format)")
    m.add_argument("--objects-per-class", type=positive_int, default=None, help="training objects per category "
                   "(default: 24 with --quick, else 200)")
    m.add_argument("--test-objects", type=positive_int, default=None,
                   help="test objects per category (default: a quarter of --objects-per-class, at least 2)")
    m.add_argument("--quick", action="store_true", help="the small CPU configuration's size")
    categories(m)
    m.add_argument("--out", default="out/reconstruction/data", help="dataset folder")
    launch(m)  # its --threads before add_device_options' generic one
    add_device_options(m, seed=True)
    m.set_defaults(func=cmd_make_data)

    t = subcommand(rs, "train", "train the mesh generator or the voxel baseline from silhouettes")
    t.add_argument("--model", choices=["mesh", "voxel"], required=True,
                   help="mesh: the deformed-sphere generator (ours); voxel: the PTN-style baseline")
    t.add_argument("--data", default="out/reconstruction/data", help="dataset folder (*.npz files)")
    t.add_argument("--out", default="out/reconstruction/run", help="where MODEL.pt is written")
    t.add_argument("--lr", type=positive_float, default=None, help="Adam step (default: 0.001 with --quick, else 1e-4)")
    t.add_argument("--restart", action="store_true", help="start over instead of resuming an existing checkpoint")
    categories(t, "one model per category, each trained on that category's objects alone: OUT/CLASS_ID/MODEL.pt "
                  "(the paper's setting; default: one model for all the categories, OUT/MODEL.pt)")
    training(t)
    add_gradient_options(t)  # the mesh model's silhouettes (the voxel model's projection has its own gradient)
    launch(t)
    add_device_options(t, seed=True)
    t.set_defaults(func=cmd_train)

    e = subcommand(rs, "eval", "voxel IoU per category of the trained models: results.json/.md/.png")
    e.add_argument("--data", default="out/reconstruction/data", help="dataset folder (*.npz files)")
    e.add_argument("--run", default="out/reconstruction/run", help="folder holding mesh.pt and/or voxel.pt")
    e.add_argument("--out", default=None, help="where results.* go (default: the --run folder)")
    e.add_argument("--views", type=view_id, nargs="+", default=None,
                   help="input view ids, 0 to 23 (default: the training config's)")
    categories(e, "evaluate each category's test objects with that category's own models, RUN/CLASS_ID/*.pt "
                  "(from `train --per-category`); its mean shape is the category's")
    launch(e)
    add_device_options(e)
    e.set_defaults(func=cmd_eval)

    pr = subcommand(rs, "predict", "reconstruct one RGBA image: result.obj and turntable.gif")
    pr.add_argument("image", help="the object's picture: RGBA, or RGB on a plain background (the top-left "
                    "pixel's colour); resized to 64 x 64 like the dataset's")
    pr.add_argument("--checkpoint", default="out/reconstruction/run/mesh.pt", help="a trained mesh.pt or voxel.pt")
    pr.add_argument("--out", default="out/reconstruction/predict", help=OUT_MESH_HELP)
    pr.add_argument("--threshold", type=fraction, default=0.5, help="occupancy threshold, 0 to 1 (voxel model)")
    pr.add_argument("--image-size", type=image_size, default=128, help=f"turntable.gif's {IMAGE_SIZE_HELP}")
    add_device_options(pr)
    pr.set_defaults(func=cmd_predict)

    r = subcommand(rs, "run", "make-data, train both models, eval: the whole experiment")
    r.add_argument("--out", default="out/reconstruction", help="folder for data/ and run/")
    r.add_argument("--results", default=None, help="where results.* go (default: OUT/run)")
    r.add_argument("--objects-per-class", type=positive_int, default=None,
                   help="training objects per category (default: 24 with --quick, else 200)")
    r.add_argument("--test-objects", type=positive_int, default=None,
                   help="test objects per category (default: a quarter of --objects-per-class, at least 2)")
    categories(r, "one model per category (see `train --per-category`), evaluated per category")
    training(r)
    launch(r)
    add_device_options(r, seed=True)
    r.set_defaults(func=cmd_run)


__all__ = ["add_parser", "view_id"]
