"""What every ``tritonnmr`` subcommand shares: one-line errors, argument types that refuse bad values
before anything runs, the common options, and loading the inputs (device, mesh, target image,
renderer, output folder).

Order inside a command: argparse checks each value (the types below), then the inputs are read
(:func:`load_mesh`, :func:`load_target`, :func:`renderer`), and only then is the output folder made
(:func:`output_dir`, or :func:`output_paths` where a mesh is written), so a bad value or file leaves
nothing behind. Every problem a user can fix is a :class:`UserError` (or an argparse error): one line
on stderr, exit status 2.
"""
import argparse
import json
import math
import os
import re
import sys

from tritonnmr_entry import INTERRUPTED  # the exit status of a command Ctrl-C stopped

from .. import backends, checks


class UserError(Exception):
    """A problem with the command's input: reported in one line, exit status 2."""


def one_line(error):
    """The first line of an exception's message (some libraries add lines of hints)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- argparse: one-line errors, defaults in the help -----------------------------------------------

class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with one-line errors (``tritonnmr fit: error: argument --frames: ...``), exit 2.

    Subparsers made from it are of the same class (argparse's default), so every subcommand answers
    alike."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help, unless the help already tells its default or the
    default is None, False or suppressed (then the help says what happens)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False \
                or action.default == argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # a required positional has no default
        return f"{text} (default: %(default)s)"


def subcommand(sub, name, help, description=None):
    """A subparser with the shared formatter; ``description`` defaults to ``help``."""
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


# -- argument types: each refuses what makes no sense, with the reason --------------------------------

def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text):
    """An int >= 1 (sizes, counts, steps)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    """An int >= 0 (seeds)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text):
    """A finite number > 0 (learning rates, distances)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def non_negative_float(text):
    """A finite number >= 0 (loss weights)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def finite_float(text):
    """Any finite number (angles)."""
    return _number(text, float)


def fraction(text):
    """A number in [0, 1] (thresholds)."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


def image_size(text):
    """``S`` (a square S x S image) -> S, or ``WIDTHxHEIGHT`` (as screen resolutions are written,
    e.g. ``320x240``) -> (height, width), the order ``Renderer(image_size=...)`` takes."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match:
        width, height = int(match[1]), int(match[2])
        if width < 1 or height < 1:
            raise argparse.ArgumentTypeError(f"width and height must be positive, got {text}")
        return (height, width) if height != width else width
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a positive size S or WIDTHxHEIGHT (e.g. 256 or 320x240), "
                                         f"got {text!r}") from None


IMAGE_SIZE_HELP = "image size in pixels: S for S x S, or WIDTHxHEIGHT (e.g. 320x240)"


# The CLI's thread count for torch and numba on the CPU when --threads is not given. Measured in
# issue 29 on this project's 2-core shared machine, wall time of `style --iterations 20` and `fit shape
# --iterations 150 --image-size 128`, three runs each: alone, 2 threads saved at most 8% (style 7.2 s
# against 7.7 s, within the runs' spread); beside a busy process, 2 threads took 1.5x as long as one
# (style 12.2-12.9 s against 7.8-8.1 s; fit 7.8-8.3 against 6.5-7.5). On a GPU torch keeps its own.
CPU_THREADS = 1
THREADS_HELP = (f"threads for torch and numba (default: {CPU_THREADS} on the CPU, where a second thread gains "
                "little and loses much on a busy machine; torch's own with a GPU)")


def apply_threads(args):
    """Set torch's and numba's threads from ``args.threads``, or :data:`CPU_THREADS` for a CPU run."""
    threads = getattr(args, "threads", None)
    if threads is None and resolve_device(getattr(args, "device", None)).type == "cpu":
        threads = CPU_THREADS
    if threads:
        from ..threads import set_threads
        set_threads(threads)


# -- the options every rendering command takes --------------------------------------------------------

def add_device_options(parser, seed=False,
                       backend_help="rasterizer backend: auto runs triton on CUDA tensors and the fastest "
                                    "available backend on the CPU"):
    """--device and --backend (choices from :data:`tritonnmr.backends.BACKENDS`); --seed when asked."""
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="where the tensors live (default: cuda when a GPU is available, else cpu)")
    parser.add_argument("--backend", choices=list(backends.BACKENDS), default="auto", help=backend_help)
    if "--threads" not in parser._option_string_actions:  # bench and reconstruct have their own
        parser.add_argument("--threads", type=positive_int, default=None, help=THREADS_HELP)
    if seed:
        parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed")


def add_gradient_options(parser):
    """--gradient, --sigma, --gamma: the estimator of a command's silhouette or colour gradients."""
    from ..defaults import SOFT_GAMMA, SOFT_SIGMA
    from ..gradients import ESTIMATORS
    parser.add_argument("--gradient", choices=ESTIMATORS, default="blurred_edge",
                        help="how the gradient reaches the mesh: blurred_edge (the paper's), soft (SoftRas: soft "
                             "silhouettes and a depth softmax, with --sigma and --gamma)"
                             + (", analytic (nvdiffrast's antialiasing)" if "analytic" in ESTIMATORS else ""))
    parser.add_argument("--sigma", type=positive_float, default=SOFT_SIGMA,
                        help="--gradient soft: the sigmoid's sharpness, in squared NDC units (smaller: sharper)")
    parser.add_argument("--gamma", type=positive_float, default=SOFT_GAMMA,
                        help="--gradient soft: the depth softmax's temperature (smaller: nearer faces dominate)")


# -- inputs ----------------------------------------------------------------------------------------

def resolve_device(name):
    """'cpu', 'cuda' or None (cuda when available) -> torch.device; UserError if cuda is missing."""
    import torch
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available")
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def output_dir(path):
    """Make ``path`` (and its parents) and check it is writable; -> path."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"output directory {path} is not writable")
    return path


def folders_before(out):
    """Before a command runs: (the outermost folder its ``--out`` is or would be, the folders that
    exist in it already). ``top`` is ``out`` when it exists, else the child of the nearest existing
    folder on the way to it; (None, ()) without an ``--out``."""
    if out is None:
        return None, ()
    path, child = os.path.abspath(out), None
    while not os.path.exists(path):
        path, child = os.path.dirname(path), path
    top = child or path
    existing = {folder for folder, _, _ in os.walk(top)} if child is None and os.path.isdir(top) else set()
    return top, existing


def remove_empty_folders(top, existing):
    """Remove, deepest first, the folders in ``top`` (``top`` included) that are empty and were not
    in ``existing``: what a command that stopped early (an error, Ctrl-C) made and left empty."""
    if top is None or not os.path.isdir(top):
        return
    for folder, _, _ in os.walk(top, topdown=False):
        if folder not in existing:
            try:
                os.rmdir(folder)  # refuses a folder with anything in it
            except OSError:
                pass


MESH_HELP = ("mesh file: .obj, or .ply .stl .off .glb .gltf (and what else trimesh reads) with the io extra, "
             "pip install 'tritonnmr[io]'")
OUT_MESH_HELP = ("output folder, or DIR/NAME.obj|.ply|.stl|.off|.glb|.gltf to write the mesh there in that format "
                 "(the other outputs go into DIR)")
DEFAULT_MESH = "result.obj"


def load_mesh(path, device, texture_size=None, texture_format="cubes", notes=True):
    """A mesh file of any format :func:`tritonnmr.load_mesh` reads (default: the bundled teapot) ->
    vertices (1, V, 3), faces (1, F, 3) on ``device`` and, when ``texture_size`` is given and the file
    has a texture, material colours or vertex colours, textures (1, F, T, T, T, 3), else None; with
    ``texture_format="uv"``, its :class:`tritonnmr.UVMap` (texture images or material colours), or None
    where it has neither. Notices (an unknown material, what trimesh skipped) go to stderr, one line
    each (none with ``notes=False``: a second read of a file). Missing or malformed files (mesh, MTL
    or texture image) and a missing trimesh are a UserError naming the file."""
    import warnings

    import tritonnmr as nr
    from ..io import NoTextureWarning
    path = path or nr.data_path("teapot.obj")
    if not os.path.isfile(path):
        raise UserError(f"mesh not found: {path}")
    textures = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if texture_format == "uv":
                v, f, textures = nr.load_mesh(path, texture_format="uv", device=device)
            elif texture_size:
                v, f, textures = nr.load_mesh(path, texture_format="cubes", texture_size=texture_size, device=device)
            else:
                v, f = nr.load_mesh(path, device=device)
    except (OSError, ValueError, ImportError) as e:  # imageio reports an unreadable texture image as an OSError
        message = one_line(e)  # the readers' messages name the file (mesh, MTL or image) and line
        raise UserError(message if os.path.basename(path) in message or os.sep in message
                        else f"{path}: {message}") from None
    for w in caught:
        if issubclass(w.category, NoTextureWarning):
            textures = None  # nothing to show: the plain mesh, as for an OBJ without materials
        elif issubclass(w.category, UserWarning) and notes:
            print(f"tritonnmr: note: {one_line(w.message)}", file=sys.stderr)
    if textures is not None and texture_format != "uv":  # a UVMap is not batched
        textures = textures[None]
    return v[None], f[None], textures


def output_paths(out, mesh="geometry", default=DEFAULT_MESH):
    """``--out`` of a command that writes a mesh -> (output folder, made; mesh path).

    ``out`` ending in a mesh extension (:data:`tritonnmr.io.trimesh_write.WRITTEN` or .obj, any case)
    names the mesh file, the command's other outputs going into its folder; any other ``out`` is the
    folder, the mesh ``default`` in it. ``mesh``: "geometry" (any format), "textured" (.obj, .glb,
    .gltf only: they hold textures) or None (the command writes no mesh: ``out`` must be a folder).
    A format that needs trimesh when it is missing is a UserError before anything is made."""
    from ..io.trimesh_guard import require_trimesh
    from ..io.trimesh_write import HOLDS_TEXTURES, WRITTEN
    ext = os.path.splitext(out)[1].lower()[1:]
    if ext != "obj" and ext not in WRITTEN:
        return output_dir(out), os.path.join(out, default)
    if mesh is None:
        raise UserError(f"--out {out}: this command writes no mesh; --out is its output folder")
    if mesh == "textured" and ext not in ("obj",) + HOLDS_TEXTURES:
        raise UserError(f"--out {out}: the mesh has textures, which .{ext} files do not hold; use .obj, .glb or .gltf")
    if ext != "obj":
        try:
            require_trimesh(out, "writing")
        except ImportError as e:
            raise UserError(f"--out {one_line(e)}") from None
    return output_dir(os.path.dirname(out) or "."), out


def write_mesh(path, vertices, faces, textures=None):
    """:func:`tritonnmr.save_mesh` of one mesh (no batch dimension); a file it cannot write is a UserError."""
    import tritonnmr as nr
    try:
        nr.save_mesh(path, vertices, faces, textures)
    except (OSError, ValueError, ImportError) as e:
        raise UserError(f"cannot write {path}: {one_line(e)}") from None
    return path


def is_bundled(path):
    """Whether ``path`` is one of the package's own data files."""
    import tritonnmr as nr
    return os.path.abspath(path).startswith(os.path.abspath(nr.DATA_DIR) + os.sep)


def load_target(path, image_size, alpha=False):
    """An image file as float (3 or 4, H, W) in [0, 1], resized to ``image_size`` (an int or (height,
    width); None keeps its size) with a notice on stderr, except for the bundled targets."""
    from .media import load_image
    quiet = is_bundled(path)
    try:
        return load_image(path, image_size, alpha=alpha,
                          notice=(lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr)))
    except (FileNotFoundError, ValueError) as e:
        raise UserError(one_line(e)) from None


def renderer(image_size, backend, **options):
    """A look_at ``Renderer``; a size or option it refuses is a UserError (``--image-size ...``)."""
    import tritonnmr as nr
    try:
        return nr.Renderer(image_size=image_size, camera_mode="look_at", backend=backend, **options)
    except ValueError as e:
        raise UserError(f"--image-size {size_text(image_size)}: {one_line(e)}" if "image_size" in str(e)
                        else one_line(e)) from None


# the commands that make a torch optimizer, whose first one imports torch._dynamo (about a second)
OPTIMIZING = ("fit", "demo", "style", "dream", "reconstruct")


def load_libraries(command=None):
    """Import what ``command`` would import later, on first use (imageio, trimesh and the scipy it
    loads, the CPU kernels' modules, torch._dynamo where it optimizes): while a command starts, a
    Ctrl-C ends it at once (see ``tritonnmr_entry``), and some of these imports would swallow a
    KeyboardInterrupt."""
    import multiprocessing.synchronize  # noqa: F401  (numba's first kernel call)

    import imageio.plugins.pillow  # noqa: F401  (what reading and writing PNG and GIF files loads)
    import imageio.v3  # noqa: F401
    from PIL import Image
    Image.init()  # every image plugin, as the first file read would
    try:
        import cffi  # numba makes an FFI with its first kernel, where cffi is installed
        cffi.FFI()
    except ImportError:
        pass
    if command in OPTIMIZING:
        import torch._dynamo  # noqa: F401
        import torch.profiler  # noqa: F401  (an optimizer's first step)

    from ..io.trimesh_guard import require_trimesh
    from .first_use import numba_kernels
    try:
        require_trimesh("meshes")
    except ImportError:  # optional: the formats it reads say so when asked for
        pass
    numba_kernels()


def compile_first(backend, device):
    """Compile the kernels before a command's progress bar starts, announced in one line on stderr when
    the cache is cold (:func:`tritonnmr.apps.first_use.prepare`); silent when it is warm."""
    from .first_use import prepare
    prepare(backend, device)


def write_metrics(out, result, extra=None):
    """OUT/metrics.json: a run's metrics, ``extra`` and whether it was interrupted; -> that dict."""
    metrics = dict(result.metrics, **(extra or {}), interrupted=result.interrupted)
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=2)
    return metrics


def size_text(size):
    """An image size as the user writes it: S, or WIDTHxHEIGHT."""
    h, w = checks.image_size(size)
    return str(h) if h == w else f"{w}x{h}"


__all__ = ["ArgumentParser", "HelpFormatter", "IMAGE_SIZE_HELP", "INTERRUPTED", "MESH_HELP", "OUT_MESH_HELP", "UserError",
           "add_device_options", "apply_threads", "compile_first", "finite_float", "fraction", "image_size", "is_bundled", "load_libraries", "load_mesh", "load_target",
           "folders_before", "non_negative_float", "non_negative_int", "one_line", "output_dir", "output_paths", "positive_float",
           "positive_int", "remove_empty_folders", "renderer", "resolve_device", "size_text", "subcommand", "write_mesh", "write_metrics"]
