"""First-use compilation (issue 29): announced in one line when numba's cache is cold, silent when warm."""
import io
import subprocess
import sys

from tritonnmr.apps import first_use


def test_an_empty_cache_is_cold_and_the_helpers_are_left_out(tmp_path):
    code = ("from tritonnmr.apps import first_use as u; k = u.numba_kernels(); c = u.numba_cold(); "
            "print(len(k), len(c), 'corner' in c)")
    out = subprocess.run([sys.executable, "-c", code], env={"NUMBA_CACHE_DIR": str(tmp_path), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout.split()
    kernels, cold, helper = int(out[0]), int(out[1]), out[2]
    assert 0 < cold < kernels  # every kernel Python calls is cold; helpers compiled into callers are not counted
    assert helper == "False"


def test_one_line_when_cold_nothing_when_warm(monkeypatch):
    calls = []
    monkeypatch.setattr(first_use, "compile_kernels", lambda backend, device: calls.append(backend))
    monkeypatch.setattr(first_use, "numba_cold", lambda: ["raster_kernel"])
    stream = io.StringIO()
    first_use.prepare("numba", "cpu", stream=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritonnmr: compiling the CPU kernels (numba) once")
    assert "cached for next time" in lines[0] and lines[0].endswith(" s") and calls == ["numba"]
    monkeypatch.setattr(first_use, "numba_cold", lambda: [])
    stream = io.StringIO()
    assert first_use.prepare("numba", "cpu", stream=stream) == 0.0
    assert stream.getvalue() == "" and calls == ["numba"]
    assert first_use.prepare("torch", "cpu", stream=stream) == 0.0 and stream.getvalue() == ""
