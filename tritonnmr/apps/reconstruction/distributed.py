"""Running the reconstruction on several processes: torchrun's settings, the process group, and the few
collectives the commands need.

Under ``torchrun`` (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)
:func:`session` joins the process group -- gloo on the CPU, NCCL on GPUs, each rank on its own GPU
(``cuda:LOCAL_RANK``) -- and yields a :class:`Context`; without those variables, or with WORLD_SIZE 1,
it yields the single-process context :data:`ALONE` and nothing else happens, so the same code runs
unchanged either way.

Python objects (batches of generated data, evaluation rows, checkpoints to resume from) travel over
gloo even when training uses NCCL, so they never take GPU memory. Two gloo groups carry them: one
with the session's timeout, and a patient one for the wait at the end of ``--per-category``, where
ranks that finished their categories wait for the slowest (a rank that dies is still noticed at
once, from its closed connections; one that hangs is waited for up to :data:`PATIENCE_S`).
"""
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

DEFAULT_TIMEOUT_S = 600     # the process group's timeout: how long a rank waits for a silent peer
PATIENCE_S = 7 * 24 * 3600  # how long --per-category waits for the slowest rank's categories
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class LaunchError(ValueError):
    """The launcher's settings cannot work (a missing variable, more ranks than GPUs, ...)."""


class PeerLost(RuntimeError):
    """Another rank died, hung past the timeout or cannot be reached; the message is one line.
    ``cause``: what the process group reported (see :func:`reason`)."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.cause = cause or message


@dataclass(frozen=True)
class Launch:
    """What the launcher asked of this process: its rank among ``world_size``, its rank on this node
    (``local_rank`` of ``local_world_size``) and the device it computes on."""
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device


def _integer(environ, name, default=None):
    text = environ.get(name)
    if text is None:
        if default is None:
            raise LaunchError(f"{name} is not set: start the processes with torchrun (or set "
                              + ", ".join(LAUNCH_VARIABLES) + ")")
        return default
    try:
        return int(text)
    except ValueError:
        raise LaunchError(f"{name} must be an integer, got {text!r}") from None


def launch_settings(environ=None, device=None, gpus=None):
    """This process's place in the launch, read from the launcher's variables (``environ``: default
    ``os.environ``) -> :class:`Launch`.

    ``device``: 'cpu', 'cuda' or None (cuda when this node has a GPU). ``gpus``: GPUs on this node
    (default: ``torch.cuda.device_count()``). Raises :class:`LaunchError` with one line for settings
    that cannot work: a missing or malformed variable, a rank outside the world, CUDA asked for on a
    node without a GPU, or more processes on a node than it has GPUs."""
    environ = os.environ if environ is None else environ
    gpus = torch.cuda.device_count() if gpus is None else gpus
    kind = torch.device(device).type if device is not None else ("cuda" if gpus else "cpu")
    world_size = _integer(environ, "WORLD_SIZE", default=1)
    if world_size < 1:
        raise LaunchError(f"WORLD_SIZE must be at least 1, got {world_size}")
    if world_size == 1:
        if kind == "cuda" and not gpus:
            raise LaunchError("--device cuda: no CUDA GPU is available")
        return Launch(0, 1, 0, 1, torch.device(kind))
    rank, local_rank = _integer(environ, "RANK"), _integer(environ, "LOCAL_RANK")
    local_world_size = _integer(environ, "LOCAL_WORLD_SIZE", default=local_rank + 1)
    if not environ.get("MASTER_ADDR"):
        _integer(environ, "MASTER_ADDR")  # raises: not set
    _integer(environ, "MASTER_PORT")
    if not 0 <= rank < world_size:
        raise LaunchError(f"RANK {rank} is outside the world of WORLD_SIZE {world_size} ranks")
    if not 0 <= local_rank < local_world_size:
        raise LaunchError(f"LOCAL_RANK {local_rank} is outside this node's LOCAL_WORLD_SIZE {local_world_size}")
    if kind == "cuda":
        if not gpus:
            raise LaunchError(f"--device cuda: rank {rank} runs on a node without a CUDA GPU (use --device cpu, "
                              "which trains with gloo)")
        if local_world_size > gpus:
            raise LaunchError(f"{local_world_size} processes on a node with {gpus} GPU{'s' if gpus > 1 else ''}: "
                              f"start at most {gpus} per node (torchrun --nproc-per-node {gpus})")
        return Launch(rank, world_size, local_rank, local_world_size, torch.device("cuda", local_rank))
    return Launch(rank, world_size, local_rank, local_world_size, torch.device("cpu"))


def reason(error):
    """A communication error's message cut to its first clause, without the C++ source location:
    'Read error [127.0.0.1]:38836: Connection reset by peer'."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h|hpp):\d+\]\s*", "", text)
    return text.split(". This is typically")[0].rstrip(".")


def is_peer_failure(error):
    """Whether ``error`` came from the process group (a peer died, hung or cannot be reached) rather
    than from this rank's own computation."""
    if isinstance(error, (PeerLost, dist.DistError)):
        return True
    return isinstance(error, RuntimeError) and bool(
        re.search(r"gloo|nccl|connection|timed out|timeout|peer|socket|broken pipe", str(error), re.IGNORECASE))


@dataclass(frozen=True)
class Context:
    """This process's rank, the world it belongs to and its device, with the collectives the commands
    use. Every method works, and does nothing costly, in a single process (:data:`ALONE`)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    objects: object = None   # the gloo group for Python objects (None: the default group, itself gloo)
    patient: object = None   # a gloo group with the long timeout, for --per-category's final wait

    @property
    def is_main(self):
        """Rank 0: the one that writes checkpoints, data files, reports and progress bars."""
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1

    def label(self):
        """'rank 1 of 4' (for messages)."""
        return f"rank {self.rank} of {self.world_size}"

    def share(self, items):
        """This rank's items of ``items``: every world_size-th one, starting at its rank."""
        return list(items)[self.rank::self.world_size]

    def part(self, batch_size):
        """This rank's slice of a global batch of ``batch_size``; raises ValueError unless it splits evenly."""
        if batch_size % self.world_size:
            raise ValueError(f"--batch-size {batch_size} does not split evenly over {self.world_size} ranks: "
                             f"use a multiple of {self.world_size}")
        size = batch_size // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    def collective(self, what, run):
        """``run()``, a step that talks to the other ranks; a lost peer becomes a one-line :class:`PeerLost`
        saying what this rank was doing (``what``)."""
        try:
            return run()
        except Exception as e:  # gloo reports a dead peer as a plain RuntimeError
            if is_peer_failure(e):
                raise PeerLost(f"{self.label()}: lost contact with the other ranks while {what} ({reason(e)})",
                               reason(e)) from None
            raise

    def barrier(self, what="waiting for the other ranks"):
        if self.distributed:
            self.collective(what, lambda: dist.barrier(group=self.objects))

    def broadcast(self, obj, what="receiving rank 0's data"):
        """Rank 0's ``obj`` on every rank (the others pass anything, e.g. None)."""
        if not self.distributed:
            return obj
        box = [obj]
        self.collective(what, lambda: dist.broadcast_object_list(box, src=0, group=self.objects))
        return box[0]

    def gather(self, obj, what="sending results to rank 0"):
        """Every rank's ``obj`` in rank order on rank 0 (a list); None on the other ranks."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        self.collective(what, lambda: dist.gather_object(obj, out, dst=0, group=self.objects))
        return out

    def all_gather(self, obj, what="gathering every rank's results", patient=False):
        """Every rank's ``obj`` in rank order, on every rank. ``patient``: wait up to :data:`PATIENCE_S`
        for slow ranks instead of the session's timeout."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        group = self.patient if patient else self.objects
        self.collective(what, lambda: dist.all_gather_object(out, obj, group=group))
        return out

    def average(self, tensor, what="averaging the loss"):
        """The mean of ``tensor`` over the ranks (on the training group: the tensor stays on its device)."""
        if not self.distributed:
            return tensor
        total = tensor.detach().clone()
        self.collective(what, lambda: dist.all_reduce(total))
        return total / self.world_size

    def warm(self, compile_step):
        """Run ``compile_step`` (work that compiles kernels into the on-disk caches of numba and Triton) on
        rank 0, then on the first rank of each other node, each time with every rank waiting: the other
        ranks then load what was compiled instead of compiling the same files at once (numba#10128,
        triton#2688). On a single process it does nothing: nothing can race."""
        if not self.distributed:
            return
        if self.is_main:
            compile_step()
        self.barrier("waiting for rank 0 to compile the renderer's kernels")
        if self.local_rank == 0 and not self.is_main:
            compile_step()
        self.barrier("waiting for each node's first rank to compile the renderer's kernels")


ALONE = Context()


@contextmanager
def session(device=None, timeout_s=DEFAULT_TIMEOUT_S):
    """Join the launcher's process group for the duration of the ``with`` block -> :class:`Context`.

    ``device``: 'cpu', 'cuda' or None (cuda when this node has a GPU); each rank computes on
    ``cuda:LOCAL_RANK`` (set as its current device) or the CPU, and the group uses NCCL or gloo to
    match. ``timeout_s``: how long a collective waits for a silent peer before this rank gives up.
    Raises :class:`LaunchError` for unusable launcher settings, :class:`PeerLost` when the other ranks
    cannot be joined."""
    launch = launch_settings(device=device)
    if launch.world_size == 1:
        yield Context(device=launch.device)
        return
    if launch.device.type == "cuda":
        torch.cuda.set_device(launch.device)
    timeout = timedelta(seconds=timeout_s)
    backend = "nccl" if launch.device.type == "cuda" else "gloo"
    context = Context(launch.rank, launch.world_size, launch.local_rank, launch.device)
    try:
        dist.init_process_group(backend, timeout=timeout, rank=launch.rank, world_size=launch.world_size)
        objects = dist.new_group(backend="gloo", timeout=timeout) if backend == "nccl" else None
        patient = dist.new_group(backend="gloo", timeout=timedelta(seconds=max(timeout_s, PATIENCE_S)))
    except Exception as e:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise PeerLost(f"{context.label()}: could not join the other ranks at {os.environ.get('MASTER_ADDR')}:"
                       f"{os.environ.get('MASTER_PORT')} ({reason(e)})") from None
    try:
        yield Context(launch.rank, launch.world_size, launch.local_rank, launch.device, objects, patient)
    finally:
        dist.destroy_process_group()


__all__ = ["ALONE", "DEFAULT_TIMEOUT_S", "Context", "Launch", "LaunchError", "PATIENCE_S", "PeerLost",
           "is_peer_failure", "launch_settings", "reason", "session"]
