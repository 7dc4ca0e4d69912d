"""The work model counts what the kernels do: checked against the kernels' own plans and counters."""
import json
import os

import pytest
import torch

from conftest import random_faces
from tritonnmr import backends
from tritonnmr.bench import workmodel
from tritonnmr.backends import torch as reference

needs_kernels = pytest.mark.skipif(not (backends.interpreter_enabled() or torch.cuda.is_available()),
                                   reason="runs the Triton kernels (interpreter or GPU)")


def _scene(batch, seed, num_faces=14):
    quad = torch.tensor([[[-1.0, -1, 4], [1, -1, 4], [1, 1, 4]], [[-1.0, -1, 4], [1, 1, 4], [-1, 1, 4]]])
    faces = random_faces(batch, num_faces, seed=seed, spread=0.7)
    return torch.cat([faces, quad.expand(batch, 2, 3, 3)], 1).contiguous()


@needs_kernels
@pytest.mark.parametrize("size, cut", [((9, 14), False), ((12, 12), True)], ids=["runs of 16", "runs of 1"])
def test_edge_walk_trips_are_the_kernels_own(size, cut):
    """edge_walk_trips recomputes each scanline walk's length; the edge kernel counts its loop trips
    itself (COUNT=True): the two agree item by item."""
    from tritonnmr.backends import triton as kernels
    from tritonnmr.backends.triton import tuning
    faces = _scene(2, seed=1)
    face_index = reference.rasterize_fragments(faces, *size, 0.1, 100.0)[0]
    image = torch.rand(face_index.shape + (2,))
    with tuning.override(**({"edge_trips": 1} if cut else {})):
        _, trips, plan = kernels.edge_pass(faces, face_index, image, image, 1e-3, count_trips=True)
        cfg = tuning.config(*size, faces.shape[1])
    assert trips.sum() > 50 and plan.items.split_segment.numel() > 0  # some faces' crossings are cut
    expected = workmodel.edge_item_trips(plan, faces.shape[1], face_index, cfg.edge_block)
    assert torch.equal(expected, trips.long())


def test_plans_counted_on_one_entry_are_the_batch_plans():
    """The work model plans batch entry 0 and replicates it; the kernels plan the whole batch."""
    from tritonnmr.backends.triton import binning, tuning
    faces = _scene(1, seed=2, num_faces=40)
    batch, H, W = 3, 20, 27
    cfg = tuning.config(H, W, faces.shape[1])
    with tuning.override(min_faces=4):
        counted = workmodel.forward_binned(faces, H, W, batch, hits=0)
        plan = binning.binned_plan(faces.repeat(batch, 1, 1, 1), H, W, 0.1, 100.0, cfg.tile, 4, tuning.PROGRAMS,
                                   cfg.faces_per_trip)
    trips = (plan.items.stop - plan.items.start + cfg.faces_per_trip - 1) // cfg.faces_per_trip
    tile = counted.launches[0]
    assert plan.items.split_segment.numel() > 0
    assert (tile.programs, tile.trips, tile.critical) == (plan.items.num_items, int(trips.sum()), int(trips.max()))
    face_index = reference.rasterize_fragments(faces, H, W, 0.1, 100.0)[0]
    lists = binning.pixel_lists(face_index.repeat(batch, 1, 1), faces.shape[1])
    assert torch.equal(lists.starts, workmodel.replicate(binning.pixel_lists(face_index, faces.shape[1]).starts, batch))


def test_coverage_counts_every_covered_face_pixel_pair():
    """Against brute force: every face at every pixel centre, the reference's tests."""
    faces = _scene(2, seed=3)
    H, W = 7, 11
    hits, face_index = workmodel.coverage(faces, H, W)
    ys, xs = torch.meshgrid(reference.pixel_centre(torch.arange(H).float(), H),
                            reference.pixel_centre(torch.arange(W).float(), W), indexing="ij")
    count = 0
    for b in range(faces.shape[0]):
        ok = reference.drawn(faces[b:b + 1])[0]
        for f in torch.nonzero(ok).flatten():
            x, y, z = (tuple(faces[b, f, k, d] for k in range(3)) for d in range(3))
            depth = reference.perspective_depth(reference.barycentric(x, y, xs, ys), z)
            count += int((reference.inside(x, y, xs, ys) & (depth > 0.1) & (depth < 100)).sum())
    assert hits == count > 100
    assert torch.equal(face_index, reference.rasterize_fragments(faces, H, W, 0.1, 100.0)[0])


def test_small_scenes_meet_every_target_and_the_old_design_did_not():
    rows = []
    for mesh, n, size, batch in (("quad", 2, 256, 2), ("sphere", 2000, 64, 1)):
        rows += workmodel.run_case(mesh, n, size, batch)
    for targets in workmodel.check_targets(rows).values():
        assert all(ok for ok, _, _ in targets.values()), targets
    by = {(r["mesh"], r["strategy"], r["direction"]): r for r in rows}
    quad_face = by[("quad", "face", "forward")]
    assert quad_face["critical"] > 2 * quad_face["ideal"] + 64  # one program per half of the screen
    assert by[("quad", "per-face (before)", "backward")]["atomics"] > 0
    assert by[("quad", "binned", "forward")]["lanes"] <= 3 * quad_face["lanes"]
    assert by[("sphere", "pixel-loop", "forward")]["lanes"] > 30 * by[("sphere", "binned", "forward")]["lanes"]


def test_work_model_writes_its_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(workmodel, "grid", lambda quick=False: [("quad", 2, 32, 1), ("teapot", 2464, 32, 2)])
    out = str(tmp_path / "wm")
    rows, markdown, plotted = workmodel.main(out, quick=True, progress=lambda _: None)
    with open(os.path.join(out, "results.json")) as fh:
        data = json.load(fh)
    assert len(data["rows"]) == len(rows) == 14 and data["concurrent_programs"] == 528  # 5 passes + 2 soft, x2
    assert "| teapot | 4,928 | 32 | 2 | binned | forward |" in markdown
    assert "| teapot | 4,928 | 32 | 2 | soft (sigma 0.0001) | forward |" in markdown
    assert "Targets met: 10 of 10" in markdown
    assert plotted == (os.path.getsize(os.path.join(out, "results.png")) > 1000)


@needs_kernels
def test_retune_times_every_candidate_and_names_a_winner():
    from tritonnmr.bench import retune
    lines = []
    best = retune.retune("cpu", sizes=(8,), scenes=(("quad", 2),), tiles=(8,), faces_per_trip=(1, 4), min_faces=(4,),
                         repeats=1, out=lines.append)
    assert len(lines) == 3 and best[0][:3] == ("quad", 2, 8) and best[0][4] in (1, 4)


def test_the_soft_passes_count_the_grown_tile_lists_and_the_pairs():
    """The soft forward's tile lists are those of boxes grown by the reach (more pairs than the hard
    forward's), its pairs are the reference's, and the blend walks every pixel's pairs."""
    from tritonnmr.backends import torch_soft
    from tritonnmr.backends.triton import binning, tuning
    from tritonnmr.gradients.soft import radius
    faces = _scene(1, seed=3, num_faces=30)
    forward, backward = workmodel.soft_passes(faces, 16, 16, 1, sigma=1e-3)
    grown = binning.tile_lists(binning.tile_ranges(binning.face_boxes(faces, 16, 16, 0.1, 100.0, radius(1e-3) * 8), 8),
                               1, faces.shape[1], 16, 16, 8)
    hard = binning.tile_lists(binning.tile_ranges(binning.face_boxes(faces, 16, 16, 0.1, 100.0), 8), 1, faces.shape[1],
                              16, 16, 8)
    assert forward.sorted_keys == grown.face.numel() > hard.face.numel()
    pairs = torch_soft.soft_fragments(faces, 16, 16, 0.1, 100.0, radius(1e-3))[0]
    assert forward.hits == backward.sorted_keys == pairs.numel() > 0
    most = int(torch.bincount(pairs, minlength=256).max())
    assert forward.launches[-1].critical == 2 * most and backward.launches[-1].critical == 3 * most
    assert all(launch.atomics == 0 for p in (forward, backward) for launch in p.launches)
