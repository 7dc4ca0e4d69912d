"""One model per category (the paper's setting): where each category's models live (``reconstruct train
--per-category`` trains them) and evaluating each category's test objects with that category's own models.

Layout: ``RUN/<class_id>/mesh.pt`` and ``RUN/<class_id>/voxel.pt``, each trained on the training
objects of that one category (its checkpoint's ``class_ids`` is ``[class_id]``).
"""
import os

from . import checkpoints, evaluation, shapes
from .data import Dataset, categories_in

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


def evaluate_each(data_dir, run_dir, class_ids, views=None, device="cpu", progress=True):
    """Every category's test objects seen from ``views`` (None: the views in its models' training
    config), reconstructed by that category's models; the mean shape is the category's own mean
    training shape.

    -> (categories {name: {'mesh_iou', 'voxel_iou', 'mean_shape_iou'}}, details {class_id: {'checkpoints':
    {kind: checkpoint dict}, 'voxel_threshold': t or None, 'views': [...], 'train_objects': n,
    'test_objects': m}}). Raises FileNotFoundError when a category has no model, and ValueError when
    categories differ in which models they have (their rows could not be compared)."""
    categories, details = {}, {}
    kinds = None
    for class_id in class_ids:
        trained, ckpts = load_models(run_dir, class_id, device)
        if not trained:
            raise FileNotFoundError(f"no mesh.pt or voxel.pt in {os.path.join(run_dir, class_id)} (train with "
                                    "`tritonnmr reconstruct train --per-category`)")
        if kinds is not None and set(trained) != kinds:
            raise ValueError(f"{os.path.join(run_dir, class_id)} holds {sorted(trained)} models but earlier "
                             f"categories hold {sorted(kinds)}; train the same models for every category")
        kinds = set(trained)
        chosen_views = list(views or next(iter(ckpts.values()))["config"]["eval_views"])
        test_set, train_set = Dataset(data_dir, "test", [class_id]), Dataset(data_dir, "train", [class_id])
        rows, thresholds = evaluation.evaluate(trained, test_set, train_set, chosen_views, device, progress=progress)
        categories.update(rows)
        details[class_id] = {"checkpoints": ckpts, "voxel_threshold": thresholds.get("voxel"), "views": chosen_views,
                             "train_objects": len(train_set), "test_objects": len(test_set)}
    return categories, details


__all__ = ["KINDS", "evaluate_each", "load_models", "model_path", "select"]
