"""Single-image reconstruction: data files, voxelization, losses, models, training, eval, CLI."""
import json
import math
import os

import numpy as np
import pytest
import torch

from tritonnmr.cli import main
from tritonnmr.media import silhouette_iou
from tritonnmr.reconstruction import checkpoints, data, evaluation, losses, models, report, shapes, training, voxels
from tritonnmr.reconstruction.config import Config


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Three categories, three training objects and one test object each, made by the generator."""
    d = str(tmp_path_factory.mktemp("rdata"))
    data.make_dataset(d, 3, 1, class_ids=["02691156", "03001627", "04379243"], progress=False)
    return d


# -- data files -------------------------------------------------------------------------------------

def test_loader_round_trip_and_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 24, 4, 64, 64), dtype=np.uint8)
    vox = rng.random((2, 32, 32, 32)) > 0.7
    data.save_category(str(tmp_path), "123", "val", images, vox)
    i, v = data.load_category(str(tmp_path), "123", "val")
    assert i.dtype == np.uint8 and (i == images).all() and (v == vox).all()
    ds = data.Dataset(str(tmp_path), "val")
    assert ds.class_ids == ["123"] and len(ds) == 2
    # the dataset keeps voxels [x, y, z]: file [y, x, -z]
    assert bool(ds.voxels[1, 3, 5, 7]) == bool(vox[1, 5, 3, 31 - 7])
    assert torch.equal(voxels.to_dataset(ds.voxels), torch.from_numpy(vox))


def test_loader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="123_train_images.npz"):
        data.load_category(str(tmp_path), "123", "train")
    np.savez(tmp_path / "123_train_images.npz", np.zeros((2, 24, 4, 64, 64), np.uint8))
    np.savez(tmp_path / "123_train_voxels.npz", np.zeros((2, 16, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"123_train_voxels.npz: expected voxels of shape \(objects, 32, 32, 32\)"):
        data.load_category(str(tmp_path), "123", "train")
    (tmp_path / "9_train_images.npz").write_text("not a zip")
    (tmp_path / "9_train_voxels.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="9_train_images.npz: not a readable .npz"):
        data.load_category(str(tmp_path), "9", "train")
    data.save_category(str(tmp_path), "7", "test", np.zeros((0, 24, 4, 64, 64)), np.zeros((0, 32, 32, 32)))
    with pytest.raises(ValueError, match="category 7 has no objects"):
        data.load_category(str(tmp_path), "7", "test")
    with pytest.raises(FileNotFoundError, match="no \\*_val_images.npz"):
        data.Dataset(str(tmp_path), "val")


def test_generated_data_shows_the_objects(tiny_data):
    ds = data.Dataset(tiny_data, "train")
    assert ds.names() == ["airplane", "chair", "table"] and len(ds) == 9
    alpha = ds.images(torch.arange(9), torch.zeros(9, dtype=torch.long))[:, 3]
    covered = alpha.flatten(1).mean(1)
    assert (covered > 0.02).all() and (covered < 0.6).all()
    assert (ds.voxels.flatten(1).sum(1) > 20).all()
    # silhouettes agree with the voxels: the voxel projection of the ground truth matches the image
    sil = models.project_voxels(ds.voxels[:3].float(), data.viewpoints([0, 0, 0]))
    assert all(silhouette_iou(sil[k], alpha[k]) > 0.6 for k in range(3))  # thin wings lose most


# -- voxels -----------------------------------------------------------------------------------------

def _volume(occupancy):
    return occupancy.sum().item() * (2 * voxels.grid_extent() / 32) ** 3


def test_voxelize_cube_and_sphere_match_analytic_volumes():
    v, f = shapes.box((0.0, 0.0, 0.0), (0.6, 0.6, 0.6))
    v, f = torch.tensor(v, dtype=torch.float32), torch.tensor(f)
    # 0.6 / (1 / 31) = 18.6 voxel widths: the centres inside are 18 or 19 per axis
    assert _volume(voxels.solid_voxels(v, f)) == pytest.approx(0.216, rel=0.1)
    v, f = shapes.icosphere(3)
    solid = voxels.solid_voxels(v * 0.4, f)
    assert _volume(solid) == pytest.approx(4 / 3 * math.pi * 0.4 ** 3, rel=0.04)
    full = voxels.voxelize(v * 0.4, f)  # plus the shell the surface passes through
    shell = 4 * math.pi * 0.4 ** 2 * (2 * voxels.grid_extent() / 32)
    assert solid.sum() < full.sum() and _volume(full) < _volume(solid) + 1.5 * shell
    assert not (solid & ~full).any()


def test_voxelize_unions_and_thin_parts():
    two = shapes.combine([shapes.box((0, 0, 0), (1, 1, 1)), shapes.box((0.5, 0, 0), (1, 1, 1))])
    occupancy = voxels.voxelize(*two, surface=False)
    assert occupancy[12:20, 16, 16].all()  # the overlap is inside, not cancelled as ray parity would
    side = 1 / math.sqrt(1.5 ** 2 + 2)  # the union is 1.5 x 1 x 1 before scaling its diagonal to 1
    assert _volume(occupancy) == pytest.approx(1.5 * side ** 3, rel=0.12)
    plate = shapes.combine([shapes.box((0, 0, 0), (1, 0.005, 1))])
    assert voxels.solid_voxels(*plate).sum() <= 32 * 32 and voxels.voxelize(*plate).sum() >= 31 * 31


def test_voxel_iou_by_hand():
    a = torch.zeros(32, 32, 32, dtype=torch.bool)
    b = a.clone()
    a[0:16], b[8:24] = True, True
    assert voxels.voxel_iou(a, b).item() == pytest.approx(1 / 3)
    assert voxels.voxel_iou(a, a).item() == 1.0


# -- losses -----------------------------------------------------------------------------------------

def test_iou_loss_value_and_gradient():
    p = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]], requires_grad=True)
    t = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    loss = losses.iou_loss(p, t, eps=0)
    assert loss.item() == pytest.approx(1 - 1 / 3)
    loss.backward()
    # d(1 - I/U)/dp = -(t U - I (1 - t)) / U^2 with I = 1, U = 3
    expected = [-(ti * 3 - 1 * (1 - ti)) / 9 for ti in (1.0, 0.0, 1.0, 0.0)]
    assert p.grad.flatten().tolist() == pytest.approx(expected)


def test_smoothness_flat_and_folded():
    faces = torch.tensor([[0, 1, 2], [0, 3, 1]])
    pairs = torch.tensor([[0, 1, 2, 3]])
    flat = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0.5, 1, 0], [0.5, -1, 0]]])
    folded = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0.5, 1, 0], [0.5, 0, 1]]])
    assert losses.smoothness_loss(flat, pairs).item() == pytest.approx(0, abs=1e-8)
    assert losses.smoothness_loss(folded, pairs).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="closed"):
        losses.face_pairs(faces)


# -- models -----------------------------------------------------------------------------------------

def test_mesh_generator_outputs_a_closed_mesh():
    torch.manual_seed(0)
    model = models.MeshGenerator(width=8, dim=32).eval()
    vertices = model(torch.rand(3, 4, 64, 64))
    faces = model.faces
    assert vertices.shape == (3, 642, 3) and faces.shape == (1280, 3)
    assert torch.isfinite(vertices).all() and vertices.abs().max() < 0.5
    pairs = losses.face_pairs(faces)  # raises unless every edge is in exactly two faces
    assert 642 - len(pairs) + 1280 == 2  # Euler characteristic of a sphere
    t = vertices[0][faces]
    assert (t[:, 0] * torch.cross(t[:, 1], t[:, 2], dim=-1)).sum() > 0  # outward, positive volume


def test_voxel_projection_matches_the_renderer():
    v, f = shapes.box((0.1, 0.05, -0.05), (0.5, 0.3, 0.7))
    v, f = torch.tensor(v, dtype=torch.float32), torch.tensor(f)
    occupancy = voxels.solid_voxels(v, f).float()[None].expand(3, -1, -1, -1)
    eyes = data.viewpoints([0, 3, 7])
    projected = models.project_voxels(occupancy, eyes)
    renderer = data.camera(anti_aliasing=False)
    renderer.eye = eyes
    rendered = renderer(v[None].expand(3, -1, -1), f[None].expand(3, -1, -1), mode="silhouettes")
    assert all(silhouette_iou(projected[k], rendered[k]) > 0.88 for k in range(3))


# -- training and evaluation ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mesh", "voxel"])
def test_tiny_training_lowers_the_loss(tiny_data, tmp_path, kind):
    """25 steps of batch 4 at a large step: the silhouette IoU loss of the last 5 steps is below the
    first 5's by 0.05 or more (measured: mesh 0.20, voxel 0.08)."""
    ds = data.Dataset(tiny_data, "train")
    config = Config(iterations=25, batch_size=4, lr=4e-3, width=8, dim=32, anti_aliasing=False)
    path = str(tmp_path / f"{kind}.pt")
    _, history = training.train(kind, ds, path, config, progress=False)
    first, last = np.mean(history["iou_loss"][:5]), np.mean(history["iou_loss"][-5:])
    assert last < first - 0.05, (first, last)
    model, ckpt = checkpoints.load_checkpoint(path, kind)
    assert ckpt["iteration"] == 25 and model.kind == kind
    # resuming continues where it stopped
    _, history = training.train(kind, ds, path, Config(**{**config.__dict__, "iterations": 27}), progress=False)
    assert len(history["loss"]) == 27


def test_checkpoint_of_another_model_is_refused(tmp_path):
    ds_model = models.VoxelGenerator(width=8, dim=32)
    path = str(tmp_path / "voxel.pt")
    optimizer = torch.optim.Adam(ds_model.parameters())
    checkpoints.save_checkpoint(path, ds_model, optimizer, 0, Config(width=8, dim=32), {}, [])
    with pytest.raises(ValueError, match="holds a voxel model, expected a mesh model"):
        checkpoints.load_checkpoint(path, "mesh")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a tritonnmr reconstruction checkpoint"):
        checkpoints.load_checkpoint(str(tmp_path / "other.pt"))


class _Fixed(torch.nn.Module):
    """A 'voxel model' that predicts the same occupancy for every image."""
    kind = "voxel"

    def __init__(self, occupancy):
        super().__init__()
        self.occupancy = occupancy.float()

    def forward(self, images):
        return self.occupancy[None].expand(len(images), -1, -1, -1)


def test_eval_of_a_hand_made_prediction(tmp_path):
    truth = torch.zeros(32, 32, 32, dtype=torch.bool)
    truth[0:16] = True
    guess = torch.zeros_like(truth)
    guess[8:24] = True
    for split in ("train", "test"):
        data.save_category(str(tmp_path), "42", split, np.zeros((2, 24, 4, 64, 64), np.uint8),
                           voxels.to_dataset(truth)[None].expand(2, -1, -1, -1).numpy())
    test_set, train_set = data.Dataset(str(tmp_path), "test"), data.Dataset(str(tmp_path), "train")
    result, _ = evaluation.evaluate({"voxel": _Fixed(guess)}, test_set, train_set, [0, 5], progress=False)
    assert result["42"]["voxel_iou"] == pytest.approx(1 / 3)
    assert result["42"]["mean_shape_iou"] == pytest.approx(1.0)  # every object is the mean shape
    out = report.write_report(result, {"views": [0, 5]}, str(tmp_path / "r"), "cpu", "abc")
    assert out["mean"]["voxel_iou"] == pytest.approx(1 / 3)
    assert "| 42 | 0.333 | **1.000** |" in (tmp_path / "r" / "results.md").read_text()


# -- command line -----------------------------------------------------------------------------------

def test_cli_train_eval_predict(tiny_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    for kind in ("mesh", "voxel"):
        assert main(["reconstruct", "train", "--model", kind, "--data", tiny_data, "--out", run, "--quick",
                     "--iterations", "2", "--batch-size", "4"]) == 0
        ckpt = checkpoints.read_checkpoint(os.path.join(run, f"{kind}.pt"))
        assert ckpt["iteration"] == 2 and len(ckpt["history"]["iou_loss"]) == 2
        start, end = (training.mean_iou(ckpt["history"]["iou_loss"][k:k + 1]) for k in (0, 1))
        assert f"training silhouette IoU (soft, mean over both views and 1 step) {start:.3f} at the start -> " \
               f"{end:.3f} at the end" in capsys.readouterr().out
    assert main(["reconstruct", "eval", "--data", tiny_data, "--run", run, "--views", "0"]) == 0
    result = json.load(open(os.path.join(run, "results.json")))
    assert set(result["categories"]) == {"airplane", "chair", "table"} and result["commit"]
    for key in ("mesh_iou", "voxel_iou", "mean_shape_iou"):  # the mean row is the categories' mean
        assert result["mean"][key] == pytest.approx(np.mean([c[key] for c in result["categories"].values()]))
    assert result["config"]["models"]["mesh"]["iterations_done"] == 2 and result["config"]["eval_views"] == [0]
    assert os.path.getsize(os.path.join(run, "results.png")) > 1000
    ds = data.Dataset(tiny_data, "test")
    image = tmp_path / "in.png"
    import imageio.v3 as iio
    iio.imwrite(image, ds.images_uint8[0, 0].permute(1, 2, 0).numpy())
    import tritonnmr as nr
    out = str(tmp_path / "pred_mesh")
    assert main(["reconstruct", "predict", str(image), "--checkpoint", os.path.join(run, "mesh.pt"), "--out", out,
                 "--image-size", "32"]) == 0
    v, f = nr.load_obj(os.path.join(out, "result.obj"), normalization=False)
    model, _ = checkpoints.load_checkpoint(os.path.join(run, "mesh.pt"), "mesh")
    with torch.no_grad():  # result.obj is the network's mesh for that picture
        expected = model.eval()(ds.images(torch.tensor([0]), torch.tensor([0])))[0]
    assert torch.allclose(v, expected, atol=1e-4) and torch.equal(f.long(), model.faces.long())
    assert iio.imread(os.path.join(out, "turntable.gif"), index=None).shape[1:3] == (32, 32)
    out = str(tmp_path / "pred_voxel")  # threshold 0: every voxel, so the surface is the grid's box
    assert main(["reconstruct", "predict", str(image), "--checkpoint", os.path.join(run, "voxel.pt"), "--out", out,
                 "--threshold", "0", "--image-size", "32"]) == 0
    v, f = nr.load_obj(os.path.join(out, "result.obj"), normalization=False)
    assert len(f) == 6 * 32 * 32 * 2
    losses.face_pairs(f)  # raises unless closed
    extent = voxels.grid_extent()
    assert v.min(0).values.tolist() == pytest.approx([-extent] * 3, abs=1e-4)
    assert v.max(0).values.tolist() == pytest.approx([extent] * 3, abs=1e-4)


def test_voxel_surface_is_closed_and_encloses_the_voxels():
    occupancy = torch.zeros(32, 32, 32, dtype=torch.bool)
    occupancy[4:9, 10:12, 3:6] = True
    occupancy[20, 20, 20] = True
    v, f = voxels.voxel_surface(occupancy)
    losses.face_pairs(f)
    t = v[f]
    volume = (t[:, 0] * torch.cross(t[:, 1], t[:, 2], dim=-1)).sum().item() / 6
    assert volume == pytest.approx(_volume(occupancy), rel=1e-4)
    assert torch.equal(voxels.solid_voxels(v, f), occupancy)


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["reconstruct", "train", "--model", "mesh", "--data", str(tmp_path / "nope")]) == 2
    assert "dataset directory not found" in capsys.readouterr().err
    (tmp_path / "x.pt").write_text("junk")
    assert main(["reconstruct", "predict", str(tmp_path / "x.png"), "--checkpoint", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "x.pt: not a tritonnmr reconstruction checkpoint" in err


def test_cli_make_data_writes_every_category(tmp_path):
    out = str(tmp_path / "d")
    assert main(["reconstruct", "make-data", "--objects-per-class", "1", "--test-objects", "1", "--out", out]) == 0
    assert len(os.listdir(out)) == 13 * 4
    ds = data.Dataset(out, "test")
    assert len(ds.class_ids) == 13 and ds.images_uint8.shape == (13, 24, 4, 64, 64)
    coverage = ds.images_uint8[:, :, 3].float().mean((2, 3)) / 255  # every object seen in every view
    assert (coverage > 0.003).all() and (coverage < 0.5).all()  # a rifle seen end-on: 0.7%
    assert (ds.voxels.flatten(1).sum(1) > 20).all()
