"""Ctrl-C at any moment and sizes beyond memory: one line on stderr, exit status 130 (interrupted) or 2
(refused), no traceback and no empty output folder. The commands run as a user runs them, as the
installed ``tritonnmr`` script in a process of their own, and get SIGINT after several delays: while
the libraries load, while the kernels load or compile, while frames render."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("tritonnmr")
# seconds after the start: while torch imports, around the first kernels, in the frames
DELAYS = [0.3, 1.5, 3.0, 6.0, 9.0, 12.0]


def _start(argv):
    env = dict(os.environ, TRITON_INTERPRET="1", NUMBA_NUM_THREADS="1")
    return subprocess.Popen([str(SCRIPT), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _stderr_lines(err):
    """The lines a terminal shows (a progress bar redraws its line with carriage returns)."""
    return [line.rsplit("\r", 1)[-1] for line in err.splitlines() if line.rsplit("\r", 1)[-1].strip()]


def _check_interrupted(process, out):
    stdout, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    if process.returncode in (0, -signal.SIGINT):  # it finished before the signal came: what it wrote is
        assert any(out.iterdir()), stdout  # there (-SIGINT: it came while Python exited, its handlers
        return  # gone; a shell reports that as 130 too)
    assert process.returncode == 130, (process.returncode, stderr)
    lines = [line for line in _stderr_lines(stderr) if not line.startswith(("tritonnmr: compiling", "render", "fit"))]
    if stdout.startswith("interrupted; "):  # a fit's loop stopped and said so with its results
        assert not lines, stderr
    else:
        assert lines == ["tritonnmr: interrupted"], stderr
    assert not out.exists() or any(out.iterdir()), "an empty output folder was left"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the tritonnmr script is not installed next to this Python")
@pytest.mark.parametrize("delay", DELAYS)
def test_ctrl_c_during_render_is_one_line_and_130(tmp_path, delay):
    out = tmp_path / "new" / "out"
    process = _start(["render", "--frames", "60", "--image-size", "96", "--out", str(out)])
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _check_interrupted(process, out)
    assert not (tmp_path / "new").exists() or any((tmp_path / "new").iterdir()), "an empty parent folder was left"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the tritonnmr script is not installed next to this Python")
@pytest.mark.parametrize("delay", [2.0, 9.0, 14.0])
def test_ctrl_c_during_a_fit_keeps_what_it_has(tmp_path, delay):
    out = tmp_path / "fit"
    process = _start(["fit", "shape", "--iterations", "100000", "--image-size", "32", "--out", str(out)])
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _check_interrupted(process, out)
    if out.exists():  # the fit's loop had started: it stopped cleanly and wrote its results
        assert (out / "metrics.json").exists() and (out / "result.obj").exists()


@pytest.mark.parametrize("argv", [["render", "--image-size", "100000"], ["fit", "camera", "--image-size", "60000"],
                                  ["style", "--image-size", "20000x30000"], ["demo", "--image-size", "90000"]])
def test_sizes_beyond_memory_are_refused_in_one_line(tmp_path, capsys, argv):
    from tritonnmr.apps.cli import main
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tritonnmr: error: --image-size") and err.count("\n") == 1, err
    assert "GiB of memory" in err and "available" in err
    assert not out.exists()


def test_the_memory_estimate_grows_with_the_sizes():
    from tritonnmr.apps import memory
    from tritonnmr.apps.cli import build_parser
    parse = build_parser().parse_args
    small, large = (memory.estimate(parse(["render", "--image-size", str(s)])) for s in (256, 512))
    assert large - memory.BASE_BYTES == pytest.approx(4 * (small - memory.BASE_BYTES))
    frames = memory.estimate(parse(["render", "--image-size", "256", "--frames", "48"]))
    assert frames - small == 24 * 256 * 256 * memory.FRAME_BYTES  # 24 frames more than the default
    one, two = (memory.estimate(parse(["style", "--views", str(v)])) for v in (1, 2))
    assert two - memory.BASE_BYTES == pytest.approx(2 * (one - memory.BASE_BYTES), rel=0.01)
    assert memory.estimate(parse(["bench", "--quick"])) is None  # no --image-size: nothing to estimate


@pytest.mark.parametrize("stop", [KeyboardInterrupt, "user error"])
def test_a_stopped_command_leaves_no_empty_folder_and_keeps_what_existed(tmp_path, monkeypatch, capsys, stop):
    from tritonnmr.apps import cli
    from tritonnmr.apps.cli_common import UserError, output_dir

    def stops_after_making_folders(args):
        output_dir(os.path.join(args.out, "frames", "deeper"))
        (tmp_path / "kept").mkdir(exist_ok=True)  # made by someone else meanwhile: not ours to remove
        if stop is KeyboardInterrupt:
            raise KeyboardInterrupt
        raise UserError("something is wrong")
    monkeypatch.setattr(cli, "cmd_render", stops_after_making_folders)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "old.txt").write_text("x")
    assert cli.main(["render", "--out", str(tmp_path / "new" / "out")]) == (130 if stop is KeyboardInterrupt else 2)
    assert not (tmp_path / "new").exists()
    assert cli.main(["render", "--out", str(existing / "out")]) in (2, 130)
    assert sorted(p.name for p in existing.iterdir()) == ["old.txt"] and (tmp_path / "kept").is_dir()
    assert cli.main(["render", "--out", str(existing)]) in (2, 130)
    assert existing.is_dir()  # it existed before the command: kept, with its subfolders removed
    assert sorted(p.name for p in existing.iterdir()) == ["old.txt"]


_CALLBACK_CHILD = """
import ctypes, os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import tritonnmr_entry as entry
signal.signal(signal.SIGINT, entry._while_starting)
entry.work_begins()

def callback():  # what llvmlite's object-cache notification is to numba: Python called from C
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(100000):  # the handler runs in here, and ctypes drops what it raises
        pass

try:
    ctypes.CFUNCTYPE(None)(callback)()
    time.sleep(10)  # the interrupt must come again here
    print("not interrupted")
except KeyboardInterrupt:
    sys.exit(entry.interrupted())
"""


def test_ctrl_c_inside_a_callback_from_c_still_interrupts():
    """A SIGINT handled while C code runs a Python callback (numba writing its cache on first use, as in
    a fresh clone's CI: the render above once ended with ctypes's "Exception ignored" traceback and
    exit 0) interrupts the code after the callback: one line, 130."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", _CALLBACK_CHILD, str(root)], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "tritonnmr: interrupted\n")
