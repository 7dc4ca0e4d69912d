"""The estimator study (benchmarks/estimators): its plumbing at toy sizes writes every measurement, the
gradient-quality reference is sound, and ``reconstruct train`` hands the estimator to its renderer."""
import json
import os
from dataclasses import replace

import pytest
import torch

from benchmarks.estimators import QUICK, estimators, quality, study
from tritonnmr import bench

TINY = replace(QUICK, sigmas=(1e-4,), shape_size=16, shape_steps=3, camera_size=16, camera_steps=2, camera_starts=2,
               texture_size=16, texture_steps=2, recon_sigmas=(1e-4,), recon_categories=("car",), recon_objects=2,
               recon_steps=2, recon_rounds=2, quality_cases=("sphere-20",), quality_supersample=3, cost_sizes=(16,),
               cost_rgb_sizes=(16,), cost_repeats=1)
LABELS = ["blurred_edge", "soft σ=0.0001", "analytic"]


def test_the_study_writes_every_measurement_for_every_estimator(tmp_path):
    out = str(tmp_path / "results")
    paths = study.run(TINY, out, str(tmp_path / "work"))
    assert sorted(os.path.basename(p) for p in paths) == ["results.json", "results.md", "results.png"]
    results = json.load(open(os.path.join(out, "results.json")))
    assert {"commit", "device", "date", "torch", "numba"} <= set(results["meta"])
    assert results["settings"]["shape_steps"] == 3 and "shape 16² × 3 steps" in results["configuration"]
    tasks = results["tasks"]
    assert set(tasks) == set(TINY.tasks) == set(results["cpu_seconds"])
    for name in ("shape", "camera", "texture", "reconstruction"):
        assert list(tasks[name]) == LABELS, name
    for run in tasks["shape"].values():  # before the first step, then after each
        assert len(run["iou_curve"]) == 4 and run["iou_curve"][0] == run["iou_initial"]
        assert run["iou_curve"][-1] == pytest.approx(run["iou_final"], abs=0.02) and len(run["loss_curve"]) == 3
    for run in tasks["camera"].values():
        assert len(run["starts"]) == 2 and 0 <= run["converged_fraction"] <= 1
        assert all(s["eye_error"] > 0 and len(s["eye"]) == 3 for s in run["starts"])
    assert all(0 <= r["error_final"] <= 3 for r in tasks["texture"].values())
    for run in tasks["reconstruction"].values():
        assert run["steps"] == [1, 2] and len(run["mean_voxel_iou"]) == 2
        assert 0 <= run["categories"]["car"]["voxel_iou"][-1] <= 1
    (view, *_), labels = tasks["quality"]["views"], set(LABELS)
    assert view["case"] == "sphere-20" and set(view["estimators"]) == labels and view["band_vertices"] > 0
    assert {(r["estimator"], r["mode"]) for r in tasks["cost"]["rows"]} == {(k, m) for k in labels
                                                                             for m in ("silhouettes", "rgb")}
    text = open(os.path.join(out, "results.md")).read()
    for heading in ("1. Shape", "2. Camera", "3. Texture", "4. Reconstruction", "5. Gradient quality", "6. Cost"):
        assert f"## {heading}" in text
    assert results["meta"]["commit"] in text and "No GPU was lent" in text


def test_finite_differences_of_the_coverage_are_a_sound_reference():
    """On large triangles the reference agrees with itself at two steps, is zero away from the outline,
    and the analytic estimator, whose image is the coverage along an axis, points its way (0.93 and
    0.99 measured)."""
    rows = quality.quality(estimators(()), replace(TINY, quality_cases=("sphere-20",), quality_supersample=8))
    for row in rows["views"]:
        assert row["reference"]["cosine"] > 0.98 and 0.9 < row["reference"]["magnitude"] < 1.1
        assert row["off_band_max"] == 0.0 < row["band_max"]
        assert row["estimators"]["analytic"]["cosine"] > 0.85
        assert row["estimators"]["blurred_edge"]["cosine"] > 0.2


def test_the_coverage_is_the_covered_fraction_of_each_pixel():
    """A square seen head-on covering pixel columns 2.25 to 5.75 of an 8-pixel-wide image: the pooled
    supersampled silhouette gives 0.75 at its edge columns and 1 inside."""
    import tritonnmr as nr
    r = nr.Renderer(image_size=8 * 4, camera_mode="look_at", anti_aliasing=False, perspective=False, backend="numba")
    r.eye = (0.0, 0.0, -5.0)
    x0, x1 = -1 + 2 * 2.25 / 8, -1 + 2 * 5.75 / 8   # NDC of the square's sides (orthographic: NDC = world)
    v = torch.tensor([[[x0, -0.5, 0.0], [x1, -0.5, 0.0], [x1, 0.5, 0.0], [x0, 0.5, 0.0]]])
    f = torch.tensor([[[0, 1, 2], [0, 2, 3]]])
    cover = quality.coverage(r, v, f, 4)[0]
    row = cover[4]
    assert torch.allclose(row, torch.tensor([0, 0, 0.75, 1, 1, 0.75, 0, 0], dtype=torch.float64))


def test_the_bench_grid_has_analytic_rows_beside_the_soft_ones():
    for device in (torch.device("cpu"), torch.device("cuda")):
        full = bench.select_gradient(bench.grid(False, device), "analytic")
        assert {c.image_size for c in full} >= {256} and {c.mode for c in full} == {"silhouettes", "rgb"}
    quick = bench.select_gradient(bench.grid(True, torch.device("cpu")), "analytic")
    assert quick and all(c.passes == "forward+backward" for c in quick)
    row = bench.run_case(replace(quick[-1], image_size=16), torch.device("cpu"), repeats=1)
    assert row["gradient"] == "analytic" and bench.backend_label(row) == f"{row['backend']} (analytic)"


def test_reconstruct_train_hands_the_estimator_to_its_renderer(tmp_path, monkeypatch):
    from tritonnmr.apps.cli import build_parser
    from tritonnmr.apps.reconstruction import commands, data, training
    from tritonnmr.apps.reconstruction.checkpoints import read_checkpoint
    args = build_parser().parse_args(["reconstruct", "train", "--model", "mesh", "--quick", "--gradient", "soft",
                                      "--sigma", "3e-5", "--gamma", "2e-4", "--backend", "numba"])
    config = replace(commands._config(args), iterations=1, batch_size=2)
    assert config.renderer_options() == {"gradient": "soft", "sigma": 3e-5, "gamma": 2e-4}
    data.make_dataset(str(tmp_path / "d"), 2, 1, class_ids=["02958343"], progress=False, backend="numba")
    dataset = data.Dataset(str(tmp_path / "d"), "train")
    built, camera = [], data.camera
    monkeypatch.setattr(data, "camera", lambda **kw: built.append(kw) or camera(**kw))
    norms = {}
    for name in ("soft", "blurred_edge"):
        path = str(tmp_path / f"{name}.pt")
        _, history = training.train("mesh", dataset, path, replace(config, gradient=name), progress=False)
        assert built[-1]["gradient"] == name and read_checkpoint(path)["config"]["gradient"] == name
        norms[name] = history["grad_norm"][0]
    assert built[0]["sigma"] == 3e-5 and built[0]["gamma"] == 2e-4
    assert norms["soft"] != pytest.approx(norms["blurred_edge"], rel=1e-3)  # same model and batch, another gradient
