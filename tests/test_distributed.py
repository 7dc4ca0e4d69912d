"""Reconstruction on several processes (gloo on the CPU): two ranks take the steps of one process, only rank
0 writes, checkpoints resume at any world size, --per-category and make-data equal one process, a lost
rank ends the others with one line, bad launcher settings are refused.

Ranks are started either by torchrun itself or, to control each one (its folder, killing it), directly
with the variables torchrun sets. Every launch has a deadline, so a broken run fails instead of hanging."""
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from tritonnmr.apps.cli import main
from tritonnmr.apps.reconstruction import checkpoints, data, distributed, models, per_category
from tritonnmr.apps.reconstruction.config import QUICK

DEADLINE_S = 300  # a launch that has not finished by then is broken (they take seconds)
CLI = [sys.executable, "-m", "tritonnmr.apps.cli"]
CATEGORIES = ["02691156", "03001627"]  # airplane, chair


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two categories of two training objects and one test object each."""
    directory = str(tmp_path_factory.mktemp("ddata"))
    data.make_dataset(directory, 2, 1, class_ids=CATEGORIES, progress=False)
    return directory


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_ranks(args, folders, timeout=30):
    """One process per folder (rank r runs in folders[r]), joined as torchrun would join them."""
    port, world = _free_port(), len(folders)
    procs = []
    for rank, folder in enumerate(folders):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                   LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(CLI + args + ["--threads", "1", "--timeout", str(timeout)], cwd=folder, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def _finish(procs, deadline=DEADLINE_S):
    """-> [(exit status, stdout, stderr)] of every process, killing them all past the deadline."""
    try:
        outputs = [p.communicate(timeout=deadline) for p in procs]
        return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _error_line(stderr):
    """The last line of a process's stderr, which must hold no traceback."""
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def _train_args(data_dir, out, iterations):
    return ["reconstruct", "train", "--model", "mesh", "--quick", "--cross-views", "--batch-size", "8",
            "--iterations", str(iterations), "--data", data_dir, "--out", out, "--threads", "1"]


def _deviation(a, b, start):
    """|a - b| / |b - start| over the model's parameters: how far apart two trainings ended, relative to
    how far training moved them."""
    names = [n for n, _ in models.build("mesh", **QUICK.model_options()).named_parameters()]
    num = sum(((a[n] - b[n]) ** 2).sum() for n in names)
    den = sum(((b[n] - start[n]) ** 2).sum() for n in names)
    return float((num / den).sqrt())


def _iteration(path):
    try:
        return checkpoints.read_checkpoint(str(path))["iteration"]
    except (FileNotFoundError, ValueError):
        return 0


def test_two_ranks_take_the_steps_of_one_process_stop_when_one_dies_and_resume_anywhere(tiny, tmp_path):
    """One process trains 3 steps at batch 8; 2 ranks at batch 4 each resume its checkpoint, rank 0 reading
    it alone (rank 1's folder has none: rank 0 sends it). Once they pass step 10, rank 1 is killed: rank 0
    stops within its 20 s timeout with one line and saves the steps it completed, M; one process resumes
    that checkpoint. Against the same run on one process throughout:

    - step 3, the first on two ranks, has the same loss and gradient norm to float tolerance (the whole
      forward and backward: the batch split, BatchNorm over the global batch, the renderer's custom
      backward, DDP's averaging; the renderer's gradient is itself defined only to about 3e-4, below);
    - the later steps draw the same batches (the sampler's state at M is bit for bit the same) and stay
      as close as float noise lets them: the renderer's edge tests flip on rounding and Adam amplifies
      noise in near-zero gradients, so two runs that differ only in rounding drift apart. The parameters
      at M are no further from the 1-process run's than those of a 1-process run whose step-3
      parameters were perturbed by 1e-7;
    - only rank 0 writes (files, log, progress); no warning that gradient strides miss DDP's buckets;
    - resumed by one process, the 2-rank checkpoint continues the same run (the same batches and steps).
    """
    one, rank0, rank1 = tmp_path / "one", tmp_path / "rank0", tmp_path / "rank1"
    for folder in (one, rank0 / "run", rank1, tmp_path / "noisy" / "run"):
        folder.mkdir(parents=True)
    assert main(_train_args(tiny, str(one / "run"), 3)) == 0
    shutil.copy(one / "run" / "mesh.pt", rank0 / "run" / "mesh.pt")
    noisy = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))
    generator = torch.Generator().manual_seed(1)
    for name, value in noisy["state_dict"].items():
        if value.is_floating_point() and "running" not in name:
            value.mul_(1 + 1e-7 * torch.randn(value.shape, generator=generator))
    torch.save(noisy, tmp_path / "noisy" / "run" / "mesh.pt")
    start = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))["state_dict"]

    procs = _start_ranks(_train_args(tiny, "run", 100000) + ["--save-every", "5"], [rank0, rank1], timeout=20)
    began = time.time()
    while _iteration(rank0 / "run" / "mesh.pt") < 10 and time.time() - began < DEADLINE_S and procs[0].poll() is None:
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    (rc0, out0, err0), (_, out1, err1) = _finish(procs, deadline=60)
    assert time.time() - killed < 25  # within the 20 s timeout (gloo notices a closed connection at once)
    two = checkpoints.read_checkpoint(str(rank0 / "run" / "mesh.pt"))
    done = two["iteration"]
    line = _error_line(err0)
    assert rc0 == 2 and done >= 10 and line.startswith(
        "tritonnmr: error: rank 0 of 2: lost contact with the other ranks at training step "), err0
    assert line.endswith(f"saved {os.path.join('run', 'mesh.pt')} at step {done}: run the same command again to "
                         "resume, with any number of ranks")
    assert not (rank1 / "run").exists() and out0 == out1 == "" and "train mesh" in err0 and "train mesh" not in err1
    for err in (err0, err1):
        assert "grad strides do not match" not in err.lower(), err

    assert main(_train_args(tiny, str(one / "run"), done)) == 0
    assert main(_train_args(tiny, str(tmp_path / "noisy" / "run"), done)) == 0
    ref = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))
    h2, h1 = two["history"], ref["history"]
    assert len(h2["loss"]) == done and h2["loss"][:3] == h1["loss"][:3]  # the steps it resumed from
    assert h2["loss"][3] == pytest.approx(h1["loss"][3], rel=1e-6)
    # one process moves this gradient by 3e-4 (relative) when its parameters move by 1e-7; BatchNorm over
    # each rank's half of the batch alone would move it by 10%
    assert h2["grad_norm"][3] == pytest.approx(h1["grad_norm"][3], rel=1e-3)
    assert h2["loss"][3:10] == pytest.approx(h1["loss"][3:10], abs=6e-3)  # measured: 2e-3 at most
    assert torch.equal(two["sampler"], ref["sampler"])
    noise = _deviation(checkpoints.read_checkpoint(str(tmp_path / "noisy" / "run" / "mesh.pt"))["state_dict"],
                       ref["state_dict"], start)
    assert 0 < _deviation(two["state_dict"], ref["state_dict"], start) < 2 * noise, noise

    for folder in (rank0, one):  # the 2-rank checkpoint, resumed by one process, continues the same run
        assert main(_train_args(tiny, str(folder / "run"), done + 3)) == 0
    resumed, ref = (checkpoints.read_checkpoint(str(f / "run" / "mesh.pt")) for f in (rank0, one))
    assert resumed["history"]["loss"][:done] == h2["loss"] and len(resumed["history"]["loss"]) == done + 3
    assert torch.equal(resumed["sampler"], ref["sampler"])
    assert all(s["step"] == done + 3 for s in resumed["optimizer"]["state"].values())


def test_per_category_and_make_data_under_torchrun_equal_one_process(tmp_path, capsys):
    """`torchrun --nproc-per-node 2 tritonnmr reconstruct run --per-category` over two categories (one per
    rank) makes the same data files, byte for byte, and the same models and table as one process."""
    run = ["reconstruct", "run", "--per-category", "--categories", "airplane,chair", "--objects-per-class", "2",
           "--test-objects", "1", "--quick", "--iterations", "2", "--batch-size", "4", "--threads", "1"]
    two, one = tmp_path / "two", tmp_path / "one"
    torchrun = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                                 "-m", "tritonnmr.apps.cli"] + run + ["--out", str(two)], cwd=tmp_path,
                                env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert main(run + ["--out", str(one)]) == 0
    [(rc, out, err)] = _finish([torchrun])
    assert rc == 0, err
    names = sorted(os.listdir(one / "data"))
    assert names == sorted(os.listdir(two / "data")) and len(names) == 8
    for name in names:
        assert (one / "data" / name).read_bytes() == (two / "data" / name).read_bytes(), name
    for class_id in CATEGORIES:
        for kind in ("mesh", "voxel"):
            a, b = (checkpoints.read_checkpoint(str(d / "run" / class_id / f"{kind}.pt")) for d in (one, two))
            assert a["history"]["loss"] == b["history"]["loss"] and all(
                torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    tables = [json.loads((d / "run" / "results.json").read_text())["categories"] for d in (one, two)]
    assert tables[0] == tables[1] and list(tables[0]) == ["airplane", "chair"]
    assert out.count("mean voxel IoU") == 1 and out.count("wrote 2 categories") == 1  # rank 0 alone prints

    for kind in ("mesh", "voxel"):  # chair loses its models: one process names it and evaluates the rest
        os.remove(one / "run" / CATEGORIES[1] / f"{kind}.pt")
    capsys.readouterr()
    assert main(["reconstruct", "eval", "--per-category", "--data", str(one / "data"), "--run", str(one / "run")]) == 2
    assert _error_line(capsys.readouterr().err) == (
        f"tritonnmr: error: category chair (03001627) failed: no mesh.pt or voxel.pt in {one / 'run' / '03001627'} "
        "(train with `tritonnmr reconstruct train --per-category`) (1 other category finished)")


@dataclasses.dataclass(frozen=True)
class _Exchange(distributed.Context):
    """A rank of two whose all_gather leaves its part in ``parts``; rank 1's then stops (it has handed its
    results over), rank 0's returns both parts, or raises ``lost`` when set."""
    parts: dict = dataclasses.field(default_factory=dict)
    lost: Exception = None

    def all_gather(self, obj, what="", patient=False):
        self.parts[self.rank] = obj
        if self.rank == 1:
            raise StopIteration
        if self.lost:
            raise self.lost
        return [self.parts[0], self.parts[1]]


def test_a_failed_category_is_named_with_its_rank_after_the_others_finish():
    """per_category.spread on two ranks, the gathering handed over by hand: rank 1's chair fails, rank 0's
    airplane and table finish; rank 0 names chair with rank 1 and its error. When rank 1 is lost instead,
    rank 0 says which categories it had."""
    done = []

    def work(class_id):
        if class_id == "03001627":
            raise FileNotFoundError("no mesh.pt or voxel.pt in RUN/03001627")
        done.append(class_id)
        return class_id

    ids, parts = ["02691156", "03001627", "04379243"], {}
    with pytest.raises(StopIteration):
        per_category.spread(ids, work, _Exchange(rank=1, world_size=2, parts=parts))
    with pytest.raises(per_category.CategoryFailures) as failure:
        per_category.spread(ids, work, _Exchange(rank=0, world_size=2, parts=parts))
    assert str(failure.value) == ("category chair (03001627) failed on rank 1 of 2: no mesh.pt or voxel.pt in "
                                  "RUN/03001627 (2 other categories finished)")
    assert done == ["02691156", "04379243"]
    lost = distributed.PeerLost("rank 0 of 2: lost contact with the other ranks while waiting (Connection reset)")
    with pytest.raises(distributed.PeerLost) as failure:
        per_category.spread(ids, work, _Exchange(rank=0, world_size=2, lost=lost))
    assert str(failure.value) == (f"{lost}; this rank's categories finished; the others had rank 1: chair (03001627)")
    assert per_category.spread(ids, lambda c: c + "!") == {c: c + "!" for c in ids}  # one process


@dataclasses.dataclass(frozen=True)
class _Recorder(distributed.Context):
    """A rank whose barriers are written down in ``events``."""
    events: list = dataclasses.field(default_factory=list)

    def barrier(self, what=""):
        self.events.append("barrier")


@pytest.mark.parametrize("rank, local_rank, expected", [
    (0, 0, ["compile", "barrier", "barrier"]),  # rank 0 compiles first, alone
    (1, 1, ["barrier", "barrier"]),  # another rank of its node: loads what rank 0 compiled
    (4, 0, ["barrier", "compile", "barrier"]),  # the first rank of another node (its own disk), after rank 0
])
def test_kernels_compile_on_rank_0_then_on_each_node_s_first_rank(rank, local_rank, expected):
    context = _Recorder(rank=rank, world_size=8, local_rank=local_rank)
    context.warm(lambda: context.events.append("compile"))
    assert context.events == expected
    alone = _Recorder()
    alone.warm(lambda: alone.events.append("compile"))
    assert alone.events == []  # one process: nothing to race with


@pytest.mark.parametrize("env, device, gpus, message", [
    ({"WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, None, 0,
     "RANK is not set: start the processes with torchrun"),
    ({"WORLD_SIZE": "two"}, None, 0, "WORLD_SIZE must be an integer, got 'two'"),
    ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, None, 0,
     "RANK 2 is outside the world of WORLD_SIZE 2 ranks"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_PORT": "1"}, None, 0, "MASTER_ADDR is not set"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "h",
      "MASTER_PORT": "1"}, "cuda", 0, "--device cuda: rank 1 runs on a node without a CUDA GPU"),
    ({"WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4", "MASTER_ADDR": "h",
      "MASTER_PORT": "1"}, None, 2, "4 processes on a node with 2 GPUs: start at most 2 per node (torchrun "
                                    "--nproc-per-node 2)"),
    ({}, "cuda", 0, "--device cuda: no CUDA GPU is available"),
])
def test_bad_launcher_settings_are_refused(env, device, gpus, message):
    with pytest.raises(distributed.LaunchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        distributed.launch_settings(env, device, gpus)


def test_launch_settings_give_each_rank_its_device():
    env = {"WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4", "MASTER_ADDR": "h",
           "MASTER_PORT": "1"}
    assert distributed.launch_settings(env, None, 4) == distributed.Launch(5, 8, 1, 4, torch.device("cuda", 1))
    assert distributed.launch_settings(env, "cpu", 4).device == torch.device("cpu")
    assert distributed.launch_settings({}, None, 0) == distributed.Launch(0, 1, 0, 1, torch.device("cpu"))
    context = distributed.Context(rank=1, world_size=4)
    assert context.part(8) == slice(2, 4) and context.share("abcdefghij") == ["b", "f", "j"]
    with pytest.raises(ValueError, match="--batch-size 6 does not split evenly over 4 ranks: use a multiple of 4"):
        context.part(6)


def test_cli_launch_errors_are_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    assert main(["reconstruct", "train", "--model", "mesh", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tritonnmr: error: RANK is not set" in err
