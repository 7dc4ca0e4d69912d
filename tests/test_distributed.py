"""Reconstruction on several processes (gloo on the CPU): two ranks take the steps of one process, only rank
0 writes, checkpoints resume at any world size, --per-category and make-data equal one process, a lost
rank ends the others with one line, bad launcher settings are refused.

Ranks are started either by torchrun itself or, to control each one (its folder, killing it), directly
with the variables torchrun sets. Every launch has a deadline, so a broken run fails instead of hanging."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from tritonnmr.cli import main
from tritonnmr.reconstruction import checkpoints, data, distributed, models
from tritonnmr.reconstruction.config import QUICK

DEADLINE_S = 300  # a launch that has not finished by then is broken (they take seconds)
CLI = [sys.executable, "-m", "tritonnmr.cli"]
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
    return ["reconstruct", "train", "--model", "mesh", "--quick", "--cross-views", "--lr-drop", "0.8",
            "--batch-size", "8", "--iterations", str(iterations), "--data", data_dir, "--out", out, "--threads", "1"]


def _deviation(a, b, start):
    """|a - b| / |b - start| over the model's parameters: how far apart two trainings ended, relative to
    how far training moved them."""
    names = [n for n, _ in models.build("mesh", **QUICK.model_options()).named_parameters()]
    num = sum(((a[n] - b[n]) ** 2).sum() for n in names)
    den = sum(((b[n] - start[n]) ** 2).sum() for n in names)
    return float((num / den).sqrt())


def test_two_ranks_take_the_steps_of_one_process_and_resume_at_any_world_size(tiny, tmp_path):
    """A 1-process run trains 3 steps at batch 8; 2 ranks at batch 4 each resume its checkpoint to step 10,
    rank 0 reading it alone (rank 1's folder has none: rank 0 sends it); then one process resumes theirs
    to step 14. Against the same run on one process throughout:

    - step 3, the first on two ranks, has the same loss and the same gradient norm to float tolerance
      (the whole forward and backward: the batch split, BatchNorm over the global batch, the renderer's
      custom backward, DDP's averaging; the renderer's gradient is itself defined only to about 3e-4,
      see below);
    - the later steps draw the same batches (the sampler's state is bit for bit the same), follow the
      same learning-rate schedule (x0.1 from step 8) and stay as close as float noise lets them: the
      renderer's gradient is discontinuous and Adam amplifies noise in near-zero gradients, so two runs
      that differ only in rounding drift apart. The parameters at step 10 are no further from the
      1-process run's than those of a 1-process run whose step-3 parameters were perturbed by 1e-7;
    - only rank 0 writes (files, log, progress); no warning that gradient strides miss DDP's buckets.
    """
    one, rank0, rank1 = tmp_path / "one", tmp_path / "rank0", tmp_path / "rank1"
    for folder in (one, rank0, rank1):
        folder.mkdir()
    assert main(_train_args(tiny, str(one / "run"), 3)) == 0
    (rank0 / "run").mkdir()
    shutil.copy(one / "run" / "mesh.pt", rank0 / "run" / "mesh.pt")
    noisy = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))
    generator = torch.Generator().manual_seed(1)
    for name, value in noisy["state_dict"].items():
        if value.is_floating_point() and "running" not in name:
            value.mul_(1 + 1e-7 * torch.randn(value.shape, generator=generator))
    (tmp_path / "noisy" / "run").mkdir(parents=True)
    torch.save(noisy, tmp_path / "noisy" / "run" / "mesh.pt")
    start = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))["state_dict"]

    procs = _start_ranks(_train_args(tiny, "run", 10), [rank0, rank1])
    assert main(_train_args(tiny, str(one / "run"), 10)) == 0
    assert main(_train_args(tiny, str(tmp_path / "noisy" / "run"), 10)) == 0
    (rc0, out0, err0), (rc1, out1, err1) = _finish(procs)
    assert rc0 == 0 and rc1 == 0, (err0, err1)
    assert not (rank1 / "run").exists() and out1 == "" and "train mesh" not in err1  # rank 0 alone writes
    assert "trained mesh: 10 steps" in out0 and "train mesh" in err0
    for err in (err0, err1):
        assert "Traceback" not in err and "grad strides do not match" not in err.lower(), err

    two = checkpoints.read_checkpoint(str(rank0 / "run" / "mesh.pt"))
    ref = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))
    h2, h1 = two["history"], ref["history"]
    assert two["iteration"] == 10 and len(h2["loss"]) == 10
    assert h2["loss"][:3] == h1["loss"][:3]  # the steps it resumed from
    assert h2["loss"][3] == pytest.approx(h1["loss"][3], rel=1e-6)
    # one process moves this gradient by 3e-4 (relative) when its parameters move by 1e-7: the renderer's
    # edge tests flip on rounding; BatchNorm over each rank's half of the batch alone would move it by 10%
    assert h2["grad_norm"][3] == pytest.approx(h1["grad_norm"][3], rel=1e-3)
    assert h2["loss"][3:] == pytest.approx(h1["loss"][3:], abs=6e-3)  # measured: 2e-3 at most
    assert torch.equal(two["sampler"], ref["sampler"])
    assert two["optimizer"]["param_groups"][0]["lr"] == ref["optimizer"]["param_groups"][0]["lr"] == \
        pytest.approx(QUICK.lr * 0.1)
    noise = _deviation(checkpoints.read_checkpoint(str(tmp_path / "noisy" / "run" / "mesh.pt"))["state_dict"],
                       ref["state_dict"], start)
    assert 0 < _deviation(two["state_dict"], ref["state_dict"], start) < 2 * noise, noise

    # the 2-rank checkpoint resumed by one process continues the same run
    assert main(_train_args(tiny, str(rank0 / "run"), 14)) == 0
    assert main(_train_args(tiny, str(one / "run"), 14)) == 0
    resumed = checkpoints.read_checkpoint(str(rank0 / "run" / "mesh.pt"))
    ref = checkpoints.read_checkpoint(str(one / "run" / "mesh.pt"))
    assert resumed["iteration"] == 14 and resumed["history"]["loss"][:10] == h2["loss"]
    assert torch.equal(resumed["sampler"], ref["sampler"])
    assert resumed["history"]["loss"][10:] == pytest.approx(ref["history"]["loss"][10:], abs=1e-2)
    assert all(s["step"] == 14 for s in resumed["optimizer"]["state"].values())


def test_a_killed_rank_ends_the_other_with_one_line_and_a_checkpoint_to_resume(tiny, tmp_path):
    """Rank 1 is killed once training runs; rank 0 stops within its timeout with one line naming the
    step, saves the steps it completed, and one process resumes from there."""
    rank0, rank1 = tmp_path / "rank0", tmp_path / "rank1"
    rank0.mkdir(), rank1.mkdir()
    args = ["reconstruct", "train", "--model", "mesh", "--quick", "--batch-size", "4", "--iterations", "100000",
            "--save-every", "2", "--data", tiny, "--out", str(rank0 / "run")]
    procs = _start_ranks(args, [rank0, rank1], timeout=20)
    path = rank0 / "run" / "mesh.pt"
    started = time.time()
    while not path.exists() and time.time() - started < DEADLINE_S and procs[0].poll() is None:
        time.sleep(0.2)
    assert path.exists(), "rank 0 never wrote its first checkpoint"
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    (rc0, _, err0), _ = _finish(procs, deadline=60)
    assert time.time() - killed < 25  # within the 20 s timeout (gloo notices a closed connection at once)
    line = _error_line(err0)
    assert rc0 == 2 and line.startswith("tritonnmr: error: rank 0 of 2: lost contact with the other ranks at "
                                        "training step "), err0
    done = checkpoints.read_checkpoint(str(path))["iteration"]
    assert f"saved {path} at step {done}: run the same command again to resume" in line and done >= 2
    assert main(args[:args.index("--iterations") + 1] + [str(done + 1)] + args[args.index("--iterations") + 2:]) == 0
    assert checkpoints.read_checkpoint(str(path))["iteration"] == done + 1


def test_per_category_and_make_data_under_torchrun_equal_one_process(tmp_path, capsys):
    """`torchrun --nproc-per-node 2 tritonnmr reconstruct run --per-category` over two categories (one per
    rank) makes the same data files, byte for byte, and the same models and table as one process. A
    category that fails on rank 1 is named, with its rank, by rank 0, after rank 0's category is done."""
    run = ["reconstruct", "run", "--per-category", "--categories", "airplane,chair", "--objects-per-class", "2",
           "--test-objects", "1", "--quick", "--iterations", "3", "--batch-size", "4", "--threads", "1"]
    two, one = tmp_path / "two", tmp_path / "one"
    torchrun = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                                 "-m", "tritonnmr.cli"] + run + ["--out", str(two)], cwd=tmp_path,
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
    import json
    tables = [json.loads((d / "run" / "results.json").read_text())["categories"] for d in (one, two)]
    assert tables[0] == tables[1] and list(tables[0]) == ["airplane", "chair"]
    assert out.count("mean voxel IoU") == 1 and out.count("wrote 2 categories") == 1  # rank 0 alone prints

    for kind in ("mesh", "voxel"):  # chair (rank 1's) loses its models
        os.remove(two / "run" / CATEGORIES[1] / f"{kind}.pt")
    evaluate = ["reconstruct", "eval", "--per-category", "--data", str(two / "data"), "--run", str(two / "run")]
    (rc0, _, err0), (rc1, _, err1) = _finish(_start_ranks(evaluate, [tmp_path, tmp_path]))
    assert rc0 == 2 and rc1 == 2 and "error" not in err1
    assert _error_line(err0) == (f"tritonnmr: error: category chair (03001627) failed on rank 1 of 2: no mesh.pt or "
                                 f"voxel.pt in {two / 'run' / '03001627'} (train with `tritonnmr reconstruct train "
                                 "--per-category`) (1 other category finished)")
    capsys.readouterr()
    assert main(evaluate) == 2  # one process: the same message without ranks
    assert "category chair (03001627) failed: no mesh.pt" in capsys.readouterr().err


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
