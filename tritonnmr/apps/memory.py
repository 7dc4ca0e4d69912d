"""What a command's sizes ask of memory, estimated before anything is allocated, so that a size that
cannot fit (``--image-size 100000``: hundreds of GiB) is refused in one line with the estimate, instead
of a MemoryError traceback minutes later.

The model is linear in the pixels of one view: peak memory = BASE_BYTES (the libraries) + pixels x
(the command's bytes a pixel, x views where a step renders several) + pixels x frames x FRAME_BYTES
(the GIF frames kept). The slopes are peak resident memory (``/usr/bin/time -f %M``) between two image
sizes of each command, measured on the CPU in issue 29 (render 1024 -> 2048 px, fit 512 -> 1024,
style and dream 224 -> 448), rounded up: an estimate, not a bound.
"""
import os

from .cli_common import UserError, size_text

GIB = 1 << 30
BASE_BYTES = 600 << 20  # torch, numba, triton and the bundled meshes, before the first pixel
FRAME_BYTES = 4  # a kept RGB uint8 frame's pixel, with the GIF writer's copy
# bytes a pixel of one view, by command (fit by what it fits)
BYTES_PER_PIXEL = {"render": 260, "demo": 400, "fit shape": 400, "fit texture": 500, "fit camera": 1400,
                   "style": 2000, "dream": 2000, "reconstruct": 260}
GIF_FRAMES = {"fit camera": 36}  # frames a command keeps when it has no --frames of its own
VIEWS_DEFAULT = 1


def _name(args):
    name = args.command
    return f"{name} {args.what}" if name == "fit" else name


def estimate(args):
    """-> (bytes the command is expected to need at its sizes, or None where it has no image size)."""
    size = getattr(args, "image_size", None)
    name = _name(args)
    if size is None or name not in BYTES_PER_PIXEL:
        return None
    width, height = (size, size) if isinstance(size, int) else size
    pixels = width * height
    views = getattr(args, "views", None) if name in ("style", "dream") else None
    frames = getattr(args, "frames", None) or GIF_FRAMES.get(name, 0)
    return BASE_BYTES + pixels * (BYTES_PER_PIXEL[name] * (views or VIEWS_DEFAULT) + frames * FRAME_BYTES)


def available(device=None):
    """Bytes free for the command: the GPU's free memory for ``cuda``, else the machine's MemAvailable."""
    if device == "cuda":
        import torch
        if torch.cuda.is_available():
            return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this system: nothing to compare with
        return None


def refuse_beyond_memory(args):
    """Raise a UserError when the command's estimated memory exceeds what is available."""
    need = estimate(args)
    if need is None:
        return
    free = available(getattr(args, "device", None))
    if free is not None and need > free:
        where = "the GPU has" if getattr(args, "device", None) == "cuda" else "this machine has"
        raise UserError(f"--image-size {size_text(args.image_size)}: {args.command} needs about "
                        f"{need / GIB:.1f} GiB of memory at this size, and {where} {free / GIB:.1f} GiB available")
