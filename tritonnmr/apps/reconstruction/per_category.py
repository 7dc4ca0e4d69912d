"""One model per category (the paper's setting): where each category's models live (``reconstruct train
--per-category`` trains them), spreading the categories over the ranks of a torchrun launch, and
evaluating each category's test objects with that category's own models.

Layout: ``RUN/<class_id>/mesh.pt`` and ``RUN/<class_id>/voxel.pt``, each trained on the training
objects of that one category (its checkpoint's ``class_ids`` is ``[class_id]``).
"""
import os

from . import checkpoints, evaluation, shapes
from .data import Dataset, categories_in
from .distributed import ALONE, PeerLost, reason

KINDS = ("mesh", "voxel")


def model_path(run_dir, class_id, kind):
    """Where category ``class_id``'s ``kind`` ('mesh' or 'voxel') model lives: RUN/<class_id>/<kind>.pt."""
    return os.path.join(run_dir, class_id, f"{kind}.pt")


def select(directory, names=None, split="train"):
    """Class ids of the dataset in ``directory`` picked by ``names`` (category names such as 'car' or
    class ids such as '02958343', in any order; None: every category), in the dataset's order.
    Raises ValueError naming an unknown category, FileNotFoundError when the folder holds no data."""
    available = categories_in(directory, split)
    if not names:
        return available
    by_name = {shapes.CATEGORIES.get(c, (c,))[0]: c for c in available}
    wanted = set()
    for name in names:
        class_id = by_name.get(name, name)
        if class_id not in available:
            known = ", ".join(shapes.CATEGORIES.get(c, (c,))[0] for c in available)
            raise ValueError(f"categories: no category {name!r} in {directory} (it holds: {known})")
        wanted.add(class_id)
    return [c for c in available if c in wanted]


def load_models(run_dir, class_id, device="cpu"):
    """Category ``class_id``'s trained models -> ({kind: model}, {kind: checkpoint dict}); either kind
    may be missing. Raises ValueError when a checkpoint was trained on other categories than this one."""
    trained, ckpts = {}, {}
    for kind in KINDS:
        path = model_path(run_dir, class_id, kind)
        if not os.path.isfile(path):
            continue
        model, ckpt = checkpoints.load_checkpoint(path, kind, device)
        if list(ckpt.get("class_ids", [])) != [class_id]:
            raise ValueError(f"{path} was trained on categories {ckpt.get('class_ids')}, not on {class_id} alone")
        trained[kind], ckpts[kind] = model, ckpt
    return trained, ckpts


def model_summary(ckpt):
    """What a report records of a trained model: its config, the steps it took and its training times."""
    history = ckpt["history"]
    return dict(ckpt["config"], iterations_done=ckpt["iteration"],
                train_seconds=round(history.get("seconds", 0.0), 1),
                train_cpu_seconds=round(history.get("cpu_seconds", 0.0), 1))


def name_of(class_id):
    """'chair (03001627)': a category as messages name it."""
    return f"{shapes.CATEGORIES.get(class_id, (class_id,))[0]} ({class_id})"


class CategoryFailures(Exception):
    """Some categories failed (on any rank); the one-line message names each, its rank and its error."""


def spread(class_ids, work, context=ALONE, what="the categories"):
    """Run ``work(class_id)`` for this rank's share of ``class_ids`` (every world_size-th one), then
    gather every rank's results on every rank -> {class_id: result} in the order of ``class_ids``.

    A category whose work raises does not stop the rank's other categories; once every rank is done,
    :class:`CategoryFailures` is raised on every rank, naming each failed category with its rank and
    error. ``what`` names the work in the message of a rank lost while waiting for the others."""
    mine = {}
    for class_id in context.share(class_ids):
        try:
            mine[class_id] = (None, work(class_id))
        except Exception as e:  # any failure is reported, with its rank, once the other categories are done
            kind = "" if isinstance(e, (FileNotFoundError, ValueError)) else f"{type(e).__name__}: "
            mine[class_id] = (kind + reason(e), None)
    try:
        parts = context.all_gather(mine, f"waiting for the other ranks to finish {what}", patient=True)
    except PeerLost as e:
        others = [f"rank {r}: " + ", ".join(name_of(c) for c in class_ids[r::context.world_size])
                  for r in range(context.world_size) if r != context.rank and class_ids[r::context.world_size]]
        raise PeerLost(f"{e}; this rank's categories finished" + (f"; the others had {'; '.join(others)}"
                                                                  if others else "")) from None
    failed = [(rank, c, error) for rank, part in enumerate(parts) for c, (error, _) in part.items() if error]
    if failed:
        where = (lambda rank: f" on rank {rank} of {context.world_size}") if context.distributed else (lambda rank: "")
        text = "; ".join(f"category {name_of(c)} failed{where(rank)}: {error}" for rank, c, error in failed)
        finished = len(class_ids) - len(failed)
        raise CategoryFailures(text + (f" ({finished} other categor{'y' if finished == 1 else 'ies'} finished)"
                                       if finished else ""))
    results = {c: result for part in parts for c, (_, result) in part.items()}
    return {c: results[c] for c in class_ids}


def evaluate_category(data_dir, run_dir, class_id, views=None, device="cpu", progress=True):
    """Category ``class_id``'s test objects seen from ``views`` (None: the views in its models' training
    config), reconstructed by that category's models; the mean shape is the category's own mean
    training shape. -> (rows {name: {'mesh_iou', 'voxel_iou', 'mean_shape_iou'}}, details {'models':
    {kind: :func:`model_summary`}, 'voxel_threshold': t or None, 'views': [...], 'train_objects': n,
    'test_objects': m}). Raises FileNotFoundError when the category has no model."""
    trained, ckpts = load_models(run_dir, class_id, device)
    if not trained:
        raise FileNotFoundError(f"no mesh.pt or voxel.pt in {os.path.join(run_dir, class_id)} (train with "
                                "`tritonnmr reconstruct train --per-category`)")
    chosen_views = list(views or next(iter(ckpts.values()))["config"]["eval_views"])
    test_set, train_set = Dataset(data_dir, "test", [class_id]), Dataset(data_dir, "train", [class_id])
    rows, thresholds = evaluation.evaluate(trained, test_set, train_set, chosen_views, device, progress=progress)
    return rows, {"models": {kind: model_summary(ckpt) for kind, ckpt in ckpts.items()},
                  "voxel_threshold": thresholds.get("voxel"), "views": chosen_views,
                  "train_objects": len(train_set), "test_objects": len(test_set)}


def evaluate_each(data_dir, run_dir, class_ids, views=None, device="cpu", progress=True, context=ALONE):
    """:func:`evaluate_category` for every category of ``class_ids``, spread over the ranks of ``context``
    (see :func:`spread`) -> (categories {name: row}, details {class_id: details}), in that order, on every
    rank. Raises :class:`CategoryFailures` when categories fail (no model, a checkpoint of another
    category, ...), and ValueError when categories differ in which models they have (their rows could
    not be compared)."""
    results = spread(class_ids, lambda c: evaluate_category(data_dir, run_dir, c, views, device,
                                                            progress and context.is_main),
                     context, "evaluating their categories")
    kinds = None
    for class_id, (_, details) in results.items():
        if kinds is not None and set(details["models"]) != kinds:
            raise ValueError(f"{os.path.join(run_dir, class_id)} holds {sorted(details['models'])} models but earlier "
                             f"categories hold {sorted(kinds)}; train the same models for every category")
        kinds = set(details["models"])
    categories = {name: row for rows, _ in results.values() for name, row in rows.items()}
    return categories, {c: details for c, (_, details) in results.items()}


__all__ = ["KINDS", "CategoryFailures", "evaluate_category", "evaluate_each", "load_models", "model_path",
           "model_summary", "name_of", "select", "spread"]
