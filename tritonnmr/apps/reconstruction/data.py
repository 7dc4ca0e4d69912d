"""The dataset: files in the paper's format, their loader, and the procedural generator that writes them.

Per category (a ShapeNet synset id) and split, two NumPy files:
``<class_id>_<split>_images.npz``: uint8 (objects, 24, 4, 64, 64) RGBA renderings, view v seen from
elevation 30 deg, azimuth -15 v deg, distance 2.732 (``DEFAULT_DISTANCE``; the paper's viewpoints);
``<class_id>_<split>_voxels.npz``: (objects, 32, 32, 32) occupancy in the files' axis layout
(see :mod:`.voxels`). The first array in each file is used, whatever its name.
"""
import os

import numpy as np
import torch
from tqdm.auto import tqdm

from ... import Renderer, get_points_from_angles
from ...camera import DEFAULT_DISTANCE
from . import shapes, voxels
from .distributed import ALONE

VIEWS, IMAGE_SIZE, RESOLUTION = 24, 64, 32
DISTANCE, ELEVATION, VIEWING_ANGLE = DEFAULT_DISTANCE, 30.0, 15.0


def viewpoints(view_ids, device="cpu"):
    """Camera eyes (len, 3) for view ids (ints or a tensor): azimuth -15 * id, elevation 30."""
    ids = torch.as_tensor(view_ids, dtype=torch.float32, device=device)
    return get_points_from_angles(torch.full_like(ids, DISTANCE), torch.full_like(ids, ELEVATION), -15.0 * ids)


def camera(image_size=IMAGE_SIZE, **kw):
    """The renderer of the dataset's viewpoints (look_at, 15 deg viewing angle, anti-aliased)."""
    return Renderer(image_size=image_size, camera_mode="look_at", viewing_angle=VIEWING_ANGLE, **kw)


def _paths(directory, class_id, split):
    return (os.path.join(directory, f"{class_id}_{split}_images.npz"),
            os.path.join(directory, f"{class_id}_{split}_voxels.npz"))


def _first_array(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing dataset file {path} (expected {what})")
    try:
        with np.load(path) as npz:
            return npz[npz.files[0]]
    except (OSError, ValueError, IndexError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file with {what} ({e})") from None


def load_category(directory, class_id, split):
    """-> images uint8 (N, 24, 4, 64, 64), voxels bool (N, 32, 32, 32) in the files' layout."""
    image_path, voxel_path = _paths(directory, class_id, split)
    images = _first_array(image_path, "images (objects, 24, 4, 64, 64)")
    vox = _first_array(voxel_path, "voxels (objects, 32, 32, 32)")
    if images.ndim == 4 and images.shape[1] == 4:  # (objects * 24, 4, 64, 64), as some copies store them
        images = images.reshape(-1, VIEWS, *images.shape[1:])
    if images.ndim != 5 or images.shape[1:3] != (VIEWS, 4) or images.shape[3] != images.shape[4]:
        raise ValueError(f"{image_path}: expected images of shape (objects, 24, 4, S, S), got {images.shape}")
    vox = vox.reshape(-1, *vox.shape[-3:]) if vox.ndim >= 3 else vox
    if vox.ndim != 4 or vox.shape[1:] != (RESOLUTION,) * 3:
        raise ValueError(f"{voxel_path}: expected voxels of shape (objects, 32, 32, 32), got {vox.shape}")
    if len(images) != len(vox):
        raise ValueError(f"{image_path} holds {len(images)} objects but {voxel_path} holds {len(vox)}")
    if len(images) == 0:
        raise ValueError(f"{image_path}: category {class_id} has no objects in split '{split}'")
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8) if images.max() <= 1 else images.astype(np.uint8)
    return images, vox > 0


def save_category(directory, class_id, split, images, vox):
    """Write one category's split in the format :func:`load_category` reads."""
    image_path, voxel_path = _paths(directory, class_id, split)
    np.savez_compressed(image_path, np.asarray(images, dtype=np.uint8))
    np.savez_compressed(voxel_path, np.asarray(vox, dtype=np.uint8))


def categories_in(directory, split):
    """Class ids with files for ``split`` in ``directory``, sorted."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"dataset directory not found: {directory}")
    suffix = f"_{split}_images.npz"
    found = sorted(name[:-len(suffix)] for name in os.listdir(directory) if name.endswith(suffix))
    if not found:
        raise FileNotFoundError(f"no *{suffix} files in {directory} (make one with `tritonnmr reconstruct make-data`)")
    return found


class Dataset:
    """All categories of one split, in memory. ``images`` float (N, 24, 4, S, S) in [0, 1],
    ``voxels`` bool (N, 32, 32, 32) indexed [x, y, z], ``labels`` (N,) index into ``class_ids``."""

    def __init__(self, directory, split, class_ids=None):
        self.class_ids = list(class_ids or categories_in(directory, split))
        images, vox, labels = [], [], []
        for k, class_id in enumerate(self.class_ids):
            i, v = load_category(directory, class_id, split)
            images.append(torch.from_numpy(i))
            vox.append(voxels.from_dataset(torch.from_numpy(v)))
            labels.append(torch.full((len(i),), k))
        self.images_uint8 = torch.cat(images)
        self.voxels = torch.cat(vox)
        self.labels = torch.cat(labels)

    def __len__(self):
        return len(self.labels)

    def names(self):
        return [shapes.CATEGORIES.get(c, (c,))[0] for c in self.class_ids]

    def images(self, objects, views):
        return self.images_uint8[objects, views].float() / 255

    def draw(self, batch_size, generator):
        """A random batch: objects, and two different random views of each -> (objects, views_a, views_b),
        each (batch_size,) int64. The same ``generator`` state gives the same batch on every rank."""
        objects = torch.randint(len(self), (batch_size,), generator=generator)
        views_a = torch.randint(VIEWS, (batch_size,), generator=generator)
        views_b = (views_a + torch.randint(1, VIEWS, (batch_size,), generator=generator)) % VIEWS
        return objects, views_a, views_b

    def batch(self, objects, views_a, views_b):
        """The pictures of a drawn batch -> (images_a, images_b, views_a, views_b), images (B, 4, S, S)."""
        return self.images(objects, views_a), self.images(objects, views_b), views_a, views_b

    def sample(self, batch_size, generator):
        """Random objects with two random different views: (images_a, images_b, views_a, views_b)."""
        return self.batch(*self.draw(batch_size, generator))


@torch.no_grad()
def render_object(vertices, faces, colour, renderer):
    """RGBA uint8 (24, 4, S, S) of one mesh from the 24 viewpoints (lit, one colour)."""
    v, f = vertices[None].expand(VIEWS, -1, -1), faces[None].expand(VIEWS, -1, -1)
    textures = colour.view(1, 1, 1, 1, 1, 3).expand(VIEWS, faces.shape[0], 2, 2, 2, 3)
    renderer.eye = viewpoints(range(VIEWS))
    rgb, _, alpha = renderer(v, f, textures)
    rgba = torch.cat([rgb, alpha[:, None]], 1).clamp(0, 1)
    return (rgba * 255 + 0.5).to(torch.uint8).numpy()


def _render_and_voxelize(vertices, faces, colour, renderer):
    """One object's files' entries: RGBA uint8 (24, 4, S, S) and voxels uint8 (32, 32, 32) in the files' layout."""
    return render_object(vertices, faces, colour, renderer), voxels.to_dataset(voxels.voxelize(vertices, faces,
                                                                                              RESOLUTION)).numpy()


def _in_order(parts, first, count, world_size):
    """Objects first .. first + count - 1, made by rank (index % world_size), back in their order from
    ``parts`` (rank r's objects, in order)."""
    queues = [iter(p) for p in parts]
    return [next(queues[(first + k) % world_size]) for k in range(count)]


def make_dataset(directory, objects_per_class, test_objects=None, seed=0, class_ids=None, progress=True,
                 backend="auto", context=ALONE):
    """Generate the procedural dataset: for every category, train and test splits of random objects,
    each rendered from the 24 viewpoints and voxelized. Returns {class_id: (n_train, n_test)}.

    With several ranks (``context``), object k (counted over every split of every category) is rendered
    and voxelized by rank k mod world size; every rank draws every object's random shape and colour
    from the one seeded stream, so the files rank 0 writes are byte for byte those of one process."""
    test_objects = test_objects if test_objects is not None else max(2, objects_per_class // 4)
    class_ids = list(class_ids or shapes.CATEGORIES)
    if context.is_main:
        os.makedirs(directory, exist_ok=True)
    renderer = camera(backend=backend)
    context.warm(lambda: render_object(*shapes.icosphere(1), torch.ones(3), renderer))
    rng = np.random.default_rng(seed)
    total = len(class_ids) * (objects_per_class + test_objects)
    bar = tqdm(total=len(range(context.rank, total, context.world_size)), desc="make-data", unit="object",
               disable=not (progress and context.is_main))
    counts, index = {}, 0
    for class_id in class_ids:
        name, generate = shapes.CATEGORIES[class_id]
        for split, n in (("train", objects_per_class), ("test", test_objects)):
            mine = []
            for k in range(index, index + n):
                v, f = generate(rng)
                colour = torch.tensor(rng.uniform(0.35, 1.0, 3), dtype=torch.float32)
                if k % context.world_size == context.rank:
                    mine.append(_render_and_voxelize(v, f, colour, renderer))
                    bar.set_postfix(category=name)
                    bar.update()
            parts = context.gather(mine, f"sending the {name} {split} objects to rank 0")
            if context.is_main:
                images, vox = zip(*_in_order(parts, index, n, context.world_size))
                save_category(directory, class_id, split, np.stack(images), np.stack(vox))
            index += n
        counts[class_id] = (objects_per_class, test_objects)
    bar.close()
    context.barrier("waiting for rank 0 to write the dataset")  # the files are complete for every rank after this
    return counts
