"""Single-image reconstruction: data files, voxelization, losses, models, training, eval, CLI."""
import json
import math
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from tritonnmr.apps.cli import main
from tritonnmr.apps.media import silhouette_iou
from tritonnmr.apps.reconstruction import (batchnorm, checkpoints, data, evaluation, losses, models, per_category, report,
                                    shapes, training, voxels)
from tritonnmr.apps.reconstruction.config import QUICK, Config


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


def test_voxel_projection_gradient_is_that_of_the_maximum_over_all_samples():
    """project_voxels differentiates only each ray's largest sample; on random occupancy (no ties) its
    value and gradient equal those of the maximum over all samples taken by autograd."""
    torch.manual_seed(0)
    occupancy = torch.rand(3, 32, 32, 32, requires_grad=True)
    eyes = data.viewpoints([0, 5, 13])
    weights = torch.rand(3, 64, 64)
    silhouettes = models.project_voxels(occupancy, eyes)
    (grad,) = torch.autograd.grad((silhouettes * weights).sum(), occupancy)
    samples = torch.nn.functional.grid_sample(occupancy.permute(0, 3, 2, 1)[:, None], models.ray_samples(eyes),
                                              align_corners=False)[:, 0]  # (3, 64, 64, 64 samples)
    plain = samples.amax(-1)
    (expected,) = torch.autograd.grad((plain * weights).sum(), occupancy)
    assert torch.equal(silhouettes, plain.detach())
    assert torch.allclose(grad, expected, atol=1e-6) and expected.abs().sum() > 100
    assert int((grad != 0).sum()) <= 3 * 64 * 64 * 8  # at most the 8 corners of one point per ray


# -- training and evaluation ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mesh", "voxel"])
def test_tiny_training_lowers_the_loss(tiny_data, tmp_path, kind):
    """25 steps of batch 4 at a large step: the mean soft silhouette IoU of the last 5 steps is above
    the first 5's by 0.025 or more (measured: mesh 0.088, voxel 0.040)."""
    ds = data.Dataset(tiny_data, "train")
    config = Config(iterations=25, batch_size=4, lr=4e-3, width=8, dim=32, anti_aliasing=False, cross_views=False,
                    lr_drop=None)
    path = str(tmp_path / f"{kind}.pt")
    _, history = training.train(kind, ds, path, config, progress=False)
    first, last = np.mean(history["iou"][:5]), np.mean(history["iou"][-5:])
    assert last > first + 0.025, (first, last)
    model, ckpt = checkpoints.load_checkpoint(path, kind)
    assert ckpt["iteration"] == 25 and model.kind == kind
    # resuming continues where it stopped
    _, history = training.train(kind, ds, path, Config(**{**config.__dict__, "iterations": 27}), progress=False)
    assert len(history["loss"]) == 27


def test_cross_view_loss_is_the_mean_of_four_renderings(tiny_data):
    """The paper's loss: the mesh predicted from each view rendered into both views, the mean of the four
    IoU losses, each computed here by rendering that one prediction into that one view (eval mode, so
    BatchNorm gives each image the same output whether it is predicted alone or in the batch; the
    displacement layer scaled up, so each image gets a different mesh)."""
    torch.manual_seed(0)
    model = models.MeshGenerator(width=8, dim=32).eval()
    model.displacement.weight.data.mul_(300)
    batch = data.Dataset(tiny_data, "train").sample(3, torch.Generator().manual_seed(0))
    a, b, views_a, views_b = batch
    renderer, config = data.camera(anti_aliasing=False), Config(width=8, dim=32, anti_aliasing=False)
    pairs = losses.face_pairs(model.faces)

    def term(images, views, target):
        sil = training.silhouettes(model, model(images), data.viewpoints(views), renderer)
        return losses.iou_loss(sil, target[:, 3]).item()

    with torch.no_grad():
        loss, iou, soft = training.training_loss(model, batch, renderer, pairs, config, "cpu")
        terms = [term(a, views_a, a), term(a, views_b, b), term(b, views_b, b), term(b, views_a, a)]
        smooth = losses.smoothness_loss(model(torch.cat([a, b])), pairs).mean().item()
        _, two, _ = training.training_loss(model, batch, renderer, pairs, replace(config, cross_views=False), "cpu")
    assert len({round(t, 5) for t in terms}) == 4  # four different renderings
    assert iou.item() == pytest.approx(np.mean(terms), rel=1e-5) and soft.item() == pytest.approx(1 - np.mean(terms))
    assert loss.item() == pytest.approx(iou.item() + config.lambda_smoothness * smooth, rel=1e-6)
    assert two.item() == pytest.approx(terms[0] + terms[1], rel=1e-5)  # --quick: view a's mesh in both views


def test_learning_rate_drops_at_the_fraction_of_the_steps():
    config = Config(iterations=100, lr=1.0)  # the full configuration's lr_drop, 0.95
    assert [config.learning_rate(s) for s in (0, 94, 95, 99)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1)]
    assert {QUICK.learning_rate(s) for s in range(QUICK.iterations)} == {QUICK.lr}


def test_a_stopped_and_resumed_run_is_the_run_in_one_go(tiny_data, tmp_path, monkeypatch):
    """Ctrl-C after 3 of 6 steps saves; resuming finishes the same 6 steps bit for bit (the checkpoint
    holds the batch sampler's state and Adam's), the step size x0.1 from step 4 in both."""
    ds = data.Dataset(tiny_data, "train")
    config = Config(iterations=6, batch_size=4, lr=4e-3, width=8, dim=32, anti_aliasing=False, lr_drop=0.75)
    _, straight = training.train("mesh", ds, str(tmp_path / "straight.pt"), config, progress=False)
    draw, calls = ds.draw, []

    def stop_at_the_fourth(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return draw(*args)

    monkeypatch.setattr(ds, "draw", stop_at_the_fourth)
    path = str(tmp_path / "resumed.pt")
    training.train("mesh", ds, path, config, progress=False)
    assert checkpoints.read_checkpoint(path)["iteration"] == 3
    _, resumed = training.train("mesh", ds, path, config, progress=False)
    a, b = checkpoints.read_checkpoint(str(tmp_path / "straight.pt")), checkpoints.read_checkpoint(path)
    assert resumed["loss"] == straight["loss"] and len(straight["loss"]) == 6
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert torch.equal(a["sampler"], b["sampler"])
    assert b["optimizer"]["param_groups"][0]["lr"] == pytest.approx(4e-4)


def test_global_batchnorm_keeps_the_model_and_its_checkpoints():
    """Swapping BatchNorm for GlobalBatchNorm keeps the state_dict (keys and values) and, on one process,
    the outputs in training and in eval mode."""
    torch.manual_seed(0)
    plain = models.VoxelGenerator(width=8, dim=32)
    swapped = batchnorm.globalize(models.VoxelGenerator(width=8, dim=32))
    swapped.load_state_dict(plain.state_dict())
    assert list(swapped.state_dict()) == list(plain.state_dict())
    assert sum(isinstance(m, batchnorm.GlobalBatchNorm) for m in swapped.modules()) == 7
    images = torch.rand(3, 4, 64, 64)
    assert torch.equal(swapped(images), plain(images))
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in swapped.state_dict().items())  # same statistics
    assert torch.equal(swapped.eval()(images), plain.eval()(images))


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
        start, end = (training.mean_iou(ckpt["history"], slice(k, k + 1)) for k in (0, 1))
        assert f"training silhouette IoU (soft, mean over the rendered views and 1 step) {start:.3f} at the start -> " \
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


# -- one model per category -------------------------------------------------------------------------

def _constant_voxel_model(logit):
    """A voxel network that predicts sigmoid(logit) everywhere, whatever the image: the last
    transposed convolution's weights are zero and its bias is ``logit``."""
    model = models.VoxelGenerator(width=8, dim=32)
    last = model.deconvs[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, logit)
    return model


def test_per_category_eval_reads_each_category_s_own_model(tiny_data, tmp_path, capsys):
    """Airplane's model fills the grid, chair's predicts nothing, table's is a mesh model alone.
    Filled: IoU = occupied fraction of each test object; empty: 0. Swapped models would swap them."""
    run = str(tmp_path / "run")
    full, empty = _constant_voxel_model(20.0), _constant_voxel_model(-20.0)
    config = Config(width=8, dim=32)
    for class_id, model in (("02691156", full), ("03001627", empty)):
        path = per_category.model_path(run, class_id, "voxel")
        os.makedirs(os.path.dirname(path))
        checkpoints.save_checkpoint(path, model, torch.optim.Adam(model.parameters()), 0, config, {}, [class_id])
    test_set = data.Dataset(tiny_data, "test")
    fraction = test_set.voxels.flatten(1).float().mean(1)  # one test object per category
    assert main(["reconstruct", "eval", "--per-category", "--data", tiny_data, "--run", run,
                 "--views", "0", "3"]) == 0
    result = json.load(open(os.path.join(run, "results.json")))
    assert list(result["categories"]) == ["airplane", "chair"]  # table has no folder: not evaluated
    assert result["categories"]["airplane"]["voxel_iou"] == pytest.approx(fraction[0].item(), rel=1e-5)
    assert result["categories"]["chair"]["voxel_iou"] == 0
    # each category's mean shape is its own (its three training objects), not that of all nine
    own = evaluation.mean_shape(data.Dataset(tiny_data, "train", ["02691156"]))
    everyone = evaluation.mean_shape(data.Dataset(tiny_data, "train"))
    assert result["categories"]["airplane"]["mean_shape_iou"] == pytest.approx(
        voxels.voxel_iou(own[None], test_set.voxels[:1]).item())
    assert voxels.voxel_iou(own[None], test_set.voxels[:1]) != voxels.voxel_iou(everyone[None], test_set.voxels[:1])
    assert result["config"]["voxel_threshold"] == {"airplane": 0.1, "chair": 0.1}  # every threshold ties: the first
    assert "| airplane |" in (tmp_path / "run" / "results.md").read_text()
    # a checkpoint trained on another category is refused, naming the file
    os.makedirs(os.path.join(run, "04379243"))
    os.replace(per_category.model_path(run, "03001627", "voxel"), per_category.model_path(run, "04379243", "voxel"))
    capsys.readouterr()
    assert main(["reconstruct", "eval", "--per-category", "--data", tiny_data, "--run", run,
                 "--categories", "table"]) == 2
    assert "04379243/voxel.pt was trained on categories ['03001627'], not on 04379243 alone" \
        in capsys.readouterr().err


def test_per_category_training_uses_one_category_and_lowers_its_loss(tiny_data, tmp_path, capsys):
    """`train --per-category --categories table,03001627`: one model per named category, each trained
    on that category's three objects alone (its checkpoint says so); a category's model trained for
    25 steps lowers its silhouette loss."""
    run = str(tmp_path / "run")
    assert main(["reconstruct", "train", "--model", "voxel", "--per-category", "--categories", "table,03001627",
                 "--data", tiny_data, "--out", run, "--quick", "--iterations", "2", "--batch-size", "4"]) == 0
    assert sorted(os.listdir(run)) == ["03001627", "04379243"]
    out = capsys.readouterr().out
    assert "03001627 (chair): 3 training objects" in out and "04379243 (table): 3 training objects" in out
    for class_id in ("03001627", "04379243"):
        ckpt = checkpoints.read_checkpoint(per_category.model_path(run, class_id, "voxel"), "voxel")
        assert ckpt["class_ids"] == [class_id] and ckpt["iteration"] == 2
        assert ckpt["history"]["cpu_seconds"] > 0 and ckpt["history"]["seconds"] > 0
    config = Config(iterations=25, batch_size=4, lr=4e-3, width=8, dim=32, anti_aliasing=False, lr_drop=None)
    _, history = training.train("mesh", data.Dataset(tiny_data, "train", ["04379243"]),
                                per_category.model_path(run, "04379243", "mesh"), config, progress=False)
    first, last = np.mean(history["iou"][:5]), np.mean(history["iou"][-5:])
    assert last > first + 0.025, (first, last)
    assert checkpoints.read_checkpoint(per_category.model_path(run, "04379243", "mesh"))["class_ids"] == ["04379243"]
    assert main(["reconstruct", "train", "--model", "mesh", "--per-category", "--categories", "sofa",
                 "--data", tiny_data, "--out", run]) == 2
    assert "categories: no category 'sofa' in" in capsys.readouterr().err


def test_budget_table_counts_wins_and_sums_cpu_time():
    def result(mesh, voxel, shape, cpu):
        cats = {n: {"mesh_iou": m, "voxel_iou": v, "mean_shape_iou": s} for n, m, v, s in zip("abc", mesh, voxel, shape)}
        mean = {k: sum(c[k] for c in cats.values()) / 3 for k in ("mesh_iou", "voxel_iou", "mean_shape_iou")}
        return {"categories": cats, "mean": mean,
                "train_seconds": {n: {"mesh": {"wall": 1, "cpu": cpu}, "voxel": {"wall": 1, "cpu": 2 * cpu}} for n in "abc"}}
    lines = report.budget_table({"500 steps": result([0.5, 0.7, 0.2], [0.4, 0.8, 0.3], [0.45, 0.6, 0.1], 100),
                          "1000 steps": result([0.9, 0.9, 0.9], [0.1, 0.1, 0.1], [0.5, 0.5, 0.95], 400)})
    assert lines[2] == "| 500 steps | 0.467 | 0.500 | 0.383 | 1 of 3 | 3 | 2 | 300 s / 10 min |"
    assert lines[3] == "| 1000 steps | 0.900 | 0.100 | 0.650 | 3 of 3 | 2 | 0 | 20 min / 40 min |"


def test_cli_train_interrupted_saves_and_exits_130(tiny_data, tmp_path, monkeypatch, capsys):
    """Ctrl-C during training (a KeyboardInterrupt in its third step) keeps the two steps done in the
    checkpoint and exits 130, as an interrupted fit does; `run` stops there instead of evaluating."""
    calls, loss = [], training.training_loss

    def interrupted_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return loss(*args, **kwargs)
    monkeypatch.setattr(training, "training_loss", interrupted_third)
    run = str(tmp_path / "run")
    assert main(["reconstruct", "train", "--model", "mesh", "--data", tiny_data, "--out", run, "--quick",
                 "--iterations", "5", "--batch-size", "4"]) == 130
    ckpt = checkpoints.read_checkpoint(os.path.join(run, "mesh.pt"))
    assert ckpt["iteration"] == 2 and len(ckpt["history"]["iou_loss"]) == 2
    assert "interrupted" not in ckpt["history"]
    assert "trained mesh: 2 steps" in capsys.readouterr().out
