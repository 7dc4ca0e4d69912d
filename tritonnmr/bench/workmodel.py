"""The work model: exact counts of what the Triton kernels do, measurable without a GPU.

For each forward strategy (pixel loop, face-parallel, binned) and each backward (the balanced one
every strategy shares, and the per-face kernels it replaced), on a scene: per kernel launch, the
programs, their loop trips (in total and the most of any one program: the *critical path*), the
pixel-face coverage tests (lanes launched, and lanes that hit), the global atomics, and the bytes
the plan and its buffers hold. The *ideal* is the total trips spread evenly over 528 concurrent
programs (an H100's 132 SMs x 4). The counts come from the plans the kernels run on
(``backends/triton/binning.py``: the same functions, on the same inputs) and the kernels' loop bounds; the
blurred edge's walk lengths depend on the image, so :func:`edge_walk_trips` recomputes them with
the kernel's own float operations (tests/test_workmodel.py checks it against the trips the kernel
counts itself). Times are not modelled: these are counts, the same on any machine.

``tritonnmr bench --work`` (or ``python -m tritonnmr.bench.workmodel``) writes results.json, results.md
and results.png for the teapot, spheres of 10k / 100k / 1M faces and a full-screen quad, at 256^2
and 1024^2, batch 1 and 8.
"""
import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field

import torch
import triton

from ..backends import torch as reference
from ..backends import triton as kernels
from ..backends.common import EMPTY_KEY, expand
from ..backends.triton import binning, tuning
from ..camera import get_points_from_angles
from ..mesh import fill_back, vertices_to_faces
from ..defaults import FAR as DEFAULT_FAR, NEAR as DEFAULT_NEAR
from ..renderer import Renderer
from .cases import EYE, Case, case_mesh

CONCURRENT = tuning.PROGRAMS  # programs running at once: 132 SMs x 4 on an H100
NEAR, FAR = DEFAULT_NEAR, float(DEFAULT_FAR)
OLD_EDGE_BLOCK = 64  # the per-face edge kernel's walk block (commit e442d01)
OLD_BLOCK = 128      # the per-face depth kernel's block (commit e442d01)
SOFT_SIGMA = 1e-4    # the soft rows: SoftRas's default sigma
SOFT_FACES = 100_000  # ... on scenes of at most this many faces


@dataclass
class Launch:
    """One kernel launch: ``trips`` loop trips in total over ``programs`` programs, at most
    ``critical`` in one; ``lanes`` coverage tests launched; ``atomics`` global atomic lanes."""
    kernel: str
    programs: int
    trips: int
    critical: int
    lanes: int = 0
    atomics: int = 0

    @property
    def ideal(self):
        return self.trips / CONCURRENT


@dataclass
class Pass:
    """A strategy's forward or backward on one scene: its launches in order, the coverage tests that
    hit, the bytes held, and the keys sorted by library calls (torch.sort) on the way."""
    strategy: str
    direction: str
    launches: list = field(default_factory=list)
    hits: int = 0
    bytes: int = 0
    sorted_keys: int = 0

    def totals(self):
        return dict(strategy=self.strategy, direction=self.direction,
                    programs=sum(x.programs for x in self.launches), trips=sum(x.trips for x in self.launches),
                    critical=sum(x.critical for x in self.launches),
                    ideal=sum(x.ideal for x in self.launches), lanes=sum(x.lanes for x in self.launches),
                    hits=self.hits, atomics=sum(x.atomics for x in self.launches), bytes=self.bytes,
                    sorted_keys=self.sorted_keys, launches=[asdict(x) for x in self.launches])


def _launch(kernel, trips, lanes_per_trip=0, atomics=0):
    """A Launch from the per-program trips (a tensor)."""
    trips = trips.long()
    total = int(trips.sum()) if trips.numel() else 0
    return Launch(kernel, trips.numel(), total, int(trips.max()) if trips.numel() else 0,
                  total * lanes_per_trip, atomics)


def _nbytes(*tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def _slot_rows(items):
    return max(items.num_slots, 1)


# ----------------------------------------------------------------------------------------------
# Scenes
# ----------------------------------------------------------------------------------------------
SCENES = (("teapot", 2464), ("sphere", 10_000), ("sphere", 100_000), ("sphere", 1_000_000), ("quad", 2))


def scene_faces(mesh, num_faces, size, batch):
    """Screen-space faces (batch, F, 3, 3) as the benchmark renders them: the teapot or a UV sphere
    (scaled 0.9) seen by look_at from distance 2.732, elevation 30, azimuth 45, with fill_back (as
    ``tritonnmr bench``); or ``quad``: two triangles covering the screen at z = 2. Every batch
    entry is the same scene."""
    if mesh == "quad":
        faces = torch.tensor([[[-1.0, -1, 2], [1, -1, 2], [1, 1, 2]], [[-1.0, -1, 2], [1, 1, 2], [-1, 1, 2]]])
        return faces[None].repeat(batch, 1, 1, 1).contiguous()
    v, f = case_mesh(Case(mesh, num_faces, size, 1, "silhouettes", "torch", "forward"), "cpu")
    renderer = Renderer(image_size=size, camera_mode="look_at", anti_aliasing=False)
    renderer.eye = get_points_from_angles(*EYE)
    with torch.no_grad():
        faces = vertices_to_faces(renderer.transform(v), fill_back(f)[0])
    return faces.repeat(batch, 1, 1, 1).contiguous()


def coverage(faces, height, width):
    """(covered (face, pixel) pairs, face index map (B, H, W)) of faces (B, F, 3, 3): the pixel
    centres inside a drawn face with near < z < far (the reference's z-buffer). Each strategy tests
    each covered pair exactly once, so the count is every strategy's 'lanes that hit'."""
    zbuf, hits = reference.zbuffer(faces, height, width, NEAR, FAR)
    return int(hits), torch.where(zbuf == EMPTY_KEY, -1, zbuf & 0xFFFFFFFF)


def replicate(starts, batch):
    """Segment starts (S + 1,) of one batch entry -> those of ``batch`` identical entries
    (batch S + 1,): every plan here is counted on entry 0 and replicated, exactly as the kernels'
    plan of the whole batch lays the entries out (batch-major)."""
    total = starts[-1]
    shifted = starts[:-1][None, :] + total * torch.arange(batch)[:, None]
    return torch.cat([shifted.reshape(-1), (total * batch).reshape(1)])


# ----------------------------------------------------------------------------------------------
# Forward strategies
# ----------------------------------------------------------------------------------------------
def forward_binned(faces, height, width, batch, hits):
    """raster.tile_kernel over the plan's items (one trip of faces_per_trip x tile^2 lanes per
    faces_per_trip faces of the item), raster.merge_kernel over the cut tiles (merge_rows slots per
    trip). ``faces``: one batch entry."""
    F = faces.shape[1]
    cfg = tuning.config(height, width, F)
    boxes = binning.face_boxes(faces, height, width, NEAR, FAR)
    ranges = binning.tile_ranges(boxes, cfg.tile)
    lists = binning.tile_lists(ranges, 1, F, height, width, cfg.tile)
    pairs = lists.face.numel() * batch
    limit = binning.balanced_limit(pairs, CONCURRENT, cfg.min_faces, cfg.faces_per_trip)
    starts = replicate(lists.starts, batch)
    items = binning.split_segments(starts, limit)
    lanes = cfg.tile * cfg.tile
    p = Pass("binned", "forward", hits=hits, sorted_keys=pairs)
    trips = ((items.stop - items.start).long() + cfg.faces_per_trip - 1) // cfg.faces_per_trip
    p.launches.append(_launch("tile_kernel", trips, lanes * cfg.faces_per_trip))
    p.launches.append(_launch("merge_kernel", (items.split_count + cfg.merge_rows - 1) // cfg.merge_rows))
    p.bytes = batch * _nbytes(*ranges, lists.face) + _nbytes(starts, *items.tensors) + _slot_rows(items) * lanes * 8
    return p


def soft_passes(faces, height, width, batch, sigma=SOFT_SIGMA):
    """gradient="soft" (backends/triton/soft.py) on one scene: the forward (soft.pairs_kernel twice over
    the grown-box tile lists: counting, then writing; then blend_kernel, each lane walking its
    pixel's pairs twice) and the backward (soft.face_sums_kernel over the pairs grouped by face, cut
    into items; blend_kernel's backward, three walks). ``faces``: one batch entry. -> (forward, backward)."""
    from .. import backends
    from ..gradients.soft import radius
    F = faces.shape[1]
    cfg = tuning.config(height, width, F)
    reach = radius(sigma)
    boxes = binning.face_boxes(faces, height, width, NEAR, FAR, reach * min(height, width) / 2.0)
    ranges = binning.tile_ranges(boxes, cfg.tile)
    lists = binning.tile_lists(ranges, 1, F, height, width, cfg.tile)
    tile_pairs = lists.face.numel() * batch
    limit = binning.balanced_limit(tile_pairs, CONCURRENT, cfg.min_faces, cfg.faces_per_trip)
    items = binning.split_segments(replicate(lists.starts, batch), limit)
    lanes = cfg.tile * cfg.tile
    pixel, face, *_ = backends.op("soft_fragments", "auto", "cpu")(faces, height, width, NEAR, FAR, reach)  # numba
    listed = pixel.numel() * batch
    label = f"soft (sigma {sigma:g})"
    forward = Pass(label, "forward", hits=listed, sorted_keys=tile_pairs)
    trips = ((items.stop - items.start).long() + cfg.faces_per_trip - 1) // cfg.faces_per_trip
    for name in ("pairs_kernel (count)", "pairs_kernel (write)"):
        forward.launches.append(_launch(name, trips, lanes * cfg.faces_per_trip))
    per_pixel = torch.zeros(height * width, dtype=torch.long).index_add_(0, pixel, torch.ones_like(pixel))
    block = cfg.map_block
    walks = torch.nn.functional.pad(per_pixel, (0, -per_pixel.numel() % block)).view(-1, block).max(1).values
    walks = walks.repeat(batch)
    forward.launches.append(_launch("blend_kernel", 2 * walks, block))
    forward.bytes = batch * (_nbytes(*ranges, lists.face) + pixel.numel() * 48)  # lists; pairs: 2 ids, 5 floats
    backward = Pass(label, "backward", sorted_keys=listed)
    counts = torch.bincount(face, minlength=F)
    starts = replicate(binning.starts_of(counts), batch)
    face_items = binning.split_segments(starts, binning.balanced_limit(listed, CONCURRENT,
                                                                       cfg.item_trips * cfg.pixel_block, cfg.pixel_block))
    backward.launches.append(_launch("face_sums_kernel", ((face_items.stop - face_items.start).long()
                                                          + cfg.pixel_block - 1) // cfg.pixel_block))
    backward.launches.append(_reduce_launch("segment_sum_kernel (soft)", face_items, 9, cfg))
    backward.launches.append(_launch("blend_kernel (backward)", 3 * walks, block))
    backward.bytes = listed * 48 + _nbytes(starts, *face_items.tensors) + _slot_rows(face_items) * 9 * 4
    return forward, backward


def forward_face(faces, height, width, batch, hits):
    """zbuffers.coverage_kernel: one program per face, ceil(box / block) trips of block lanes, one
    atomic_min per covered lane; zbuffers.resolve_kernel: one trip per block of pixels."""
    F = faces.shape[1]
    cfg = tuning.config(height, width, F)
    boxes = binning.face_boxes(faces, height, width, NEAR, FAR)
    trips = ((boxes.nx * boxes.ny + cfg.block - 1) // cfg.block).repeat(batch)
    p = Pass("face", "forward", hits=hits)
    p.launches.append(_launch("coverage_kernel", trips, cfg.block, atomics=hits))
    p.launches.append(_resolve(batch * height * width, cfg.map_block))
    p.bytes = batch * (F * 4 * 4 + height * width * 8)  # boxes (int32 x 4), the 64-bit key map
    return p


def _resolve(pixels, block):
    programs = -(-pixels // block)
    return Launch("resolve_kernel", programs, programs, 1 if programs else 0)


def forward_pixel_loop(faces, height, width, batch, hits):
    """zbuffers.pixel_loop_kernel: every block of pixels loops over all F faces; then the resolve."""
    F = faces.shape[1]
    cfg = tuning.config(height, width, F)
    programs = -(-batch * height * width // cfg.block)
    p = Pass("pixel-loop", "forward", hits=hits)
    p.launches.append(Launch("pixel_loop_kernel", programs, programs * F, F, programs * F * cfg.block))
    p.launches.append(_resolve(batch * height * width, cfg.map_block))
    p.bytes = batch * height * width * 8
    return p


# ----------------------------------------------------------------------------------------------
# Backward: the balanced passes, and the per-face kernels they replaced
# ----------------------------------------------------------------------------------------------
def edge_walk_trips(pixels, ids, num_faces, face_index, block, counts=None):
    """Loop trips of every scanline walk of the blurred-edge kernel (edges._walk), recomputed with
    its float operations: (face row (M,) into ``ids``, trips (M,)) for the crossings of faces
    ``ids`` (flat b * F + f) with vertices at pixel coordinates ``pixels`` (N, 6), in the kernel's
    order (face, slot, scanline). A walk covers [min(out_lo, in_lo), max(out_hi, in_hi)], block
    pixels per trip. ``counts`` (N, 6): the crossings per slot as a plan has them (an EdgePlan gives
    invisible faces none), else every slot's scanlines."""
    H, W = face_index.shape[1:]
    pix = pixels.view(-1, 3, 2)
    firsts, all_counts = binning.edge_slots(pix, H, W)
    counts = all_counts if counts is None else counts
    owner, line = expand(counts.reshape(-1))
    v, s = owner // 6, owner % 6
    e, axis = s // 2, s % 2
    pa, pb, pc = pix[v, e], pix[v, (e + 1) % 3], pix[v, (e + 2) % 3]
    x_axis = axis == 0
    ua, ub, uc = (torch.where(x_axis, q[:, 0], q[:, 1]) for q in (pa, pb, pc))
    wa, wb, wc = (torch.where(x_axis, q[:, 1], q[:, 0]) for q in (pa, pb, pc))
    along = torch.where(x_axis, H, W)
    d0 = firsts[v, s] + line.float()
    flat = ids[v]
    w = reference.walk(reference.Crossings(flat, d0.long(), ua, ub, uc, wa, wb, wc), axis, along)
    batch, face = flat // num_faces, flat % num_faces
    d_in_c = torch.clamp(torch.minimum(w.d_in, along - 1), min=0)
    line_i = d0.long()
    owner_of_in = face_index[batch, torch.where(x_axis, d_in_c, line_i), torch.where(x_axis, line_i, d_in_c)]
    do_out = w.ok & (owner_of_in == face)
    out_lo = torch.where(do_out, torch.where(w.direction > 0, w.d_out, 0), along)
    out_hi = torch.where(do_out, torch.where(w.direction > 0, along - 1, w.d_out), -1)
    in_lo = torch.where(w.ok, w.in_lo, along)
    in_hi = torch.where(w.ok, w.in_hi, -1)
    span = torch.clamp(torch.maximum(out_hi, in_hi) - torch.minimum(out_lo, in_lo) + 1, min=0)
    return v, (span + block - 1) // block


def edge_item_trips(plan, num_faces, face_index, block):
    """Trips (items,) of each item of an EdgePlan: the walks of its crossings added up."""
    v, trips = edge_walk_trips(plan.pixels, plan.faces, num_faces, face_index, block, plan.counts)
    items = plan.items
    out = torch.zeros(items.num_items, dtype=torch.long)
    if not v.numel():
        return out
    first_crossing = torch.cumsum(plan.counts.sum(1), 0) - plan.counts.sum(1)
    local = torch.arange(len(v)) - first_crossing[v]
    first_item = torch.searchsorted(items.segment.long(), torch.arange(len(plan.faces)))
    out.index_add_(0, first_item[v] + local // plan.limit, trips)
    return out


def _reduce_launch(kernel, items, D, cfg):
    block = min(64, triton.next_power_of_2(D))
    columns = -(-D // block)
    trips = ((items.split_count.long() + cfg.reduce_rows - 1) // cfg.reduce_rows).repeat_interleave(columns)
    return _launch(kernel, trips)


def backward_balanced(faces, face_index, batch, texture_size=2, channels=3):
    """The balanced backward of an RGB render with texture cubes: the blurred edge (edges.edge_kernel,
    whose plan is per face: counted on batch entry 0 and scaled by ``batch``), the depth and the
    cube gradients (backward.*_sums_kernel over pixel lists of the whole batch), and the segment
    sums of cut lists (reduce.segment_sum_kernel). ``faces`` / ``face_index``: one batch entry."""
    H, W = face_index.shape[1:]
    F = faces.shape[1]
    cfg = tuning.config(H, W, F)
    p = Pass("balanced", "backward")
    plan = binning.edge_plan(faces, face_index, binning.edge_limit(H, W, cfg.edge_block, cfg.edge_trips))
    trips = edge_item_trips(plan, F, face_index, cfg.edge_block)
    edge = _launch("edge_kernel", trips)
    cut = _reduce_launch("segment_sum_kernel (edge)", plan.items, 6, cfg)
    for launch in (edge, cut):
        launch.programs *= batch
        launch.trips *= batch
        p.launches.append(launch)
    edge_bytes = batch * (_nbytes(plan.faces, plan.pixels, plan.counts, *plan.items.tensors) + _slot_rows(plan.items) * 6 * 4)
    lists = binning.pixel_lists(face_index, F)
    covered = lists.order.numel() * batch
    starts = replicate(lists.starts, batch)
    cells = texture_size ** 3
    cb, cube_pb = kernels.cube_block(cells, triton.next_power_of_2(channels), cfg.pixel_block)
    p.sorted_keys = 2 * covered  # depth and cubes each group the pixels by face
    p.bytes = edge_bytes
    for name, pb, D, blocks in (("depth", cfg.pixel_block, 9, 1), ("cube", cube_pb, cells * channels, -(-cells // cb))):
        items = binning.split_segments(starts, binning.balanced_limit(covered, CONCURRENT, cfg.item_trips * pb, pb))
        trips = ((items.stop - items.start).long() + pb - 1) // pb
        p.launches.append(_launch(f"{name}_sums_kernel", trips.repeat_interleave(blocks)))
        p.launches.append(_reduce_launch(f"segment_sum_kernel ({name})", items, D, cfg))
        # the passes run one after the other, each holding its pixel list, items and slots
        p.bytes = max(p.bytes, covered * 8 + _nbytes(starts, *items.tensors) + _slot_rows(items) * D * 4)
    return p


def backward_per_face(faces, face_index, batch, texture_size=2, channels=3):
    """The backward this design replaced (commit e442d01), from the same geometry: one program per
    face walking its box (depth, 128 lanes per trip) and all its crossings (edge, 64 per trip, on
    every drawn face), and a pixel-parallel texture backward with 8 C atomic adds per covered pixel."""
    H, W = face_index.shape[1:]
    F = faces.shape[1]
    p = Pass("per-face (before)", "backward")
    boxes = binning.face_boxes(faces, H, W)
    depth = _launch("depth_backward_kernel", (boxes.nx * boxes.ny + OLD_BLOCK - 1) // OLD_BLOCK)
    ids = torch.nonzero(reference.drawn(faces).reshape(-1)).flatten()
    flat = faces.reshape(-1, 3, 3)[ids]
    pixels = torch.stack([reference.to_pixels(flat[..., 0], W), reference.to_pixels(flat[..., 1], H)], -1)
    v, walk = edge_walk_trips(pixels.reshape(-1, 6), ids, F, face_index, OLD_EDGE_BLOCK)
    per_face = torch.zeros(F, dtype=torch.long).index_add_(0, ids[v] % F, walk)
    edge = _launch("edge_backward_kernel", per_face)
    covered = int((face_index >= 0).sum())
    programs = -(-H * W // OLD_BLOCK)
    texture = Launch("texture_kernel (backward)", programs, programs, 1, 0, covered * 8 * channels)
    for launch in (depth, edge, texture):
        launch.programs *= batch
        launch.trips *= batch
        launch.atomics *= batch
        p.launches.append(launch)
    return p


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
def run_case(mesh, num_faces, size, batch):
    """All passes of one scene: a list of dicts (Pass.totals plus the scene). Every batch entry is
    the same scene, so everything is computed on entry 0 and replicated (see :func:`replicate`)."""
    entry = scene_faces(mesh, num_faces, size, 1)
    hits, face_index = coverage(entry, size, size)
    hits *= batch
    passes = [forward_pixel_loop(entry, size, size, batch, hits), forward_face(entry, size, size, batch, hits),
              forward_binned(entry, size, size, batch, hits),
              backward_per_face(entry, face_index, batch), backward_balanced(entry, face_index, batch)]
    if num_faces <= SOFT_FACES:  # the soft pairs are listed on the CPU: up to 100k faces
        passes += list(soft_passes(entry, size, size, batch))
    scene = dict(mesh=mesh, nominal=num_faces, faces=entry.shape[1], size=size, batch=batch)
    return [dict(scene, **p.totals()) for p in passes]


def check_targets(rows):
    """Per scene: the binned forward's critical path within 2 x ideal + 64, its lanes within 3x the
    face-parallel kernel's, no atomics in it nor in the balanced backward, whose critical path is
    within the same bound. -> {scene key: {target: (met, value, bound)}}."""
    out = {}
    for key in sorted({(r["mesh"], r["faces"], r["size"], r["batch"]) for r in rows}):
        sel = {(r["strategy"], r["direction"]): r for r in rows
               if (r["mesh"], r["faces"], r["size"], r["batch"]) == key}
        binned, face, back = sel[("binned", "forward")], sel[("face", "forward")], sel[("balanced", "backward")]
        out[key] = {
            "binned critical": (binned["critical"] <= 2 * binned["ideal"] + 64, binned["critical"],
                                2 * binned["ideal"] + 64),
            "binned lanes / face lanes": (binned["lanes"] <= 3 * face["lanes"],
                                          binned["lanes"] / max(face["lanes"], 1), 3.0),
            "binned atomics": (binned["atomics"] == 0, binned["atomics"], 0),
            "backward critical": (back["critical"] <= 2 * back["ideal"] + 64, back["critical"],
                                  2 * back["ideal"] + 64),
            "backward atomics": (back["atomics"] == 0, back["atomics"], 0),
        }
    return out


def _fmt(n):
    if isinstance(n, float):
        return f"{n:,.1f}"
    return f"{n:,}"


def to_markdown(rows, meta):
    targets = check_targets(rows)
    met = sum(ok for t in targets.values() for ok, _, _ in t.values())
    total = sum(len(t) for t in targets.values())
    lines = [f"Work model (counts, not times); commit {meta['commit']}; {meta['date']}; ideal = trips / "
             f"{CONCURRENT} programs; critical = the most trips of one program, summed over a pass's launches. "
             f"Targets met: {met} of {total}.", "",
             "| mesh | faces | size | batch | strategy | pass | programs | trips | critical | ideal | "
             "critical / (2 ideal + 64) | lanes launched | lanes hit | atomics | MB | sorted keys |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["critical"] / (2 * r["ideal"] + 64)
        lanes = "-" if r["direction"] == "backward" else _fmt(r["lanes"])
        hit = "-" if r["direction"] == "backward" else _fmt(r["hits"])
        lines.append(f"| {r['mesh']} | {r['faces']:,} | {r['size']} | {r['batch']} | {r['strategy']} | "
                     f"{r['direction']} | {_fmt(r['programs'])} | {_fmt(r['trips'])} | {_fmt(r['critical'])} | "
                     f"{r['ideal']:,.1f} | {ratio:.2f} | {lanes} | {hit} | {_fmt(r['atomics'])} | "
                     f"{r['bytes'] / 2 ** 20:,.1f} | {_fmt(r['sorted_keys'])} |")
    lines += ["", "Targets per scene (value vs bound):", "",
              "| mesh | faces | size | batch | " + " | ".join(next(iter(targets.values())).keys()) + " |",
              "|---|---|---|---|" + "---|" * len(next(iter(targets.values())))]
    for (mesh, faces, size, batch), t in targets.items():
        cells = [f"{'met' if ok else 'MISSED'}: {_fmt(round(v, 2) if isinstance(v, float) else v)} vs "
                 f"{_fmt(round(b, 1) if isinstance(b, float) else b)}" for ok, v, b in t.values()]
        lines.append(f"| {mesh} | {faces:,} | {size} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Critical path over its bound per scene (left; below 1: within 2 ideal + 64), lanes launched per
    lane that hits (right)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scenes = []
    for r in rows:
        key = (r["mesh"], r["faces"], r["size"], r["batch"])
        if key not in scenes:
            scenes.append(key)
    nominal = {(r["mesh"], r["faces"], r["size"], r["batch"]): r.get("nominal", r["faces"]) for r in rows}

    def label(key):
        mesh, _, size, batch = key
        n = nominal[key]
        count = f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)
        return f"{mesh} {count if mesh != 'quad' else ''} {size}² x{batch}".replace("  ", " ")

    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
    x = list(range(len(scenes)))
    series = [("pixel-loop", "forward", "o-"), ("face", "forward", "o-"), ("binned", "forward", "o-"),
              ("per-face (before)", "backward", "s--"), ("balanced", "backward", "s--")]
    for strategy, direction, style in series:
        sel = {(r["mesh"], r["faces"], r["size"], r["batch"]): r for r in rows
               if r["strategy"] == strategy and r["direction"] == direction}
        ratio = [max(sel[k]["critical"], 1) / (2 * sel[k]["ideal"] + 64) for k in scenes]
        axes[0].plot(x, ratio, style, label=f"{strategy} {direction}")
        if direction == "forward":
            axes[1].plot(x, [sel[k]["lanes"] / max(sel[k]["hits"], 1) for k in scenes], style, label=strategy)
    axes[0].axhline(1.0, color="k", linewidth=1)
    axes[0].set_ylabel("critical path / (2 ideal + 64)   (target: below 1)")
    axes[1].set_ylabel("lanes launched per lane that hits")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([label(k) for k in scenes], rotation=70, fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title(f"longest program vs the bound (ideal: all trips over {CONCURRENT} programs)")
    axes[1].set_title("forward coverage tests: lanes launched per hit")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def grid(quick=False):
    """(mesh, faces, size, batch) of the table; ``quick``: the small ones only."""
    scenes = SCENES[:2] + SCENES[-1:] if quick else SCENES
    return [(m, n, s, b) for m, n in scenes for s in ((256,) if quick else (256, 1024)) for b in (1, 8)]


def main(out, quick=False, progress=print):
    from .provenance import metadata
    rows = []
    start = time.perf_counter()
    for mesh, n, size, batch in grid(quick):
        t = time.perf_counter()
        rows += run_case(mesh, n, size, batch)
        progress(f"{mesh} {n} faces {size}^2 x{batch}: {time.perf_counter() - t:.1f} s")
    meta = metadata(torch.device("cpu"))
    meta["seconds"] = round(time.perf_counter() - start, 1)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"meta": meta, "concurrent_programs": CONCURRENT, "rows": rows,
                   "targets": {" ".join(map(str, k)): v for k, v in check_targets(rows).items()}}, fh, indent=1)
    markdown = to_markdown(rows, meta)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(markdown)
    plotted = plot(rows, os.path.join(out, "results.png"))
    return rows, markdown, plotted


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the Triton kernels' work model (counts) to a folder.")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results",
                                                      f"workmodel-{time.strftime('%Y-%m-%d')}"))
    parser.add_argument("--quick", action="store_true", help="the small scenes only")
    args = parser.parse_args()
    _, md, _ = main(args.out, args.quick)
    print(md)
    print(f"wrote {args.out}/results.json, results.md, results.png")
