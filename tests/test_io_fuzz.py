"""Property-based tests of the OBJ/MTL reader over generated files (hypothesis).

Well-formed files (fan-triangulated polygons, negative and forward indices, v, v/vt, v//vn, v/vt/vn
corners, comments with odd characters, blank lines, tabs, \n, \r\n or lone \r line ends, a
byte-order mark) load to exactly the generated vertices and faces, and equal to their twin with \n
line ends; a file with one corrupted line raises a one-line ValueError naming the file and that line.
"""
import os
import warnings
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritonnmr as nr

# TRITONNMR_FUZZ_EXAMPLES=2000 for a longer search; no example database is written
SETTINGS = settings(max_examples=int(os.environ.get("TRITONNMR_FUZZ_EXAMPLES", 75)), deadline=timedelta(seconds=10),
                    database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)
unit32s = st.floats(0, 1, width=32)
# comment text may hold anything but the line ends (\n, \r), including what str.splitlines would break lines on
comment_text = st.text(st.sampled_from(list("abc #/1.e-") + ["\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
                                                               "\x85", "\u2028", "\u2029", "\ufeff", "é"]),
                       max_size=12)


def number(draw, x):
    """``x`` (a float32 value) written so that it reads back exactly, in one of several styles."""
    style = draw(st.sampled_from(["g", "e", "E", "int", "plus"]))
    if style == "int" and float(x).is_integer() and abs(x) < 1e9:
        return "%d" % x
    text = {"e": "%.8e", "E": "%.8E"}.get(style, "%.9g") % x
    return "+" + text if style == "plus" and not text.startswith("-") else text


@st.composite
def obj_files(draw):
    """(lines (list of str, without line ends), data line numbers by kind, expected vertices,
    expected faces, counts) of a well-formed OBJ file."""
    kinds = ["v", "v", "v"] + draw(st.lists(st.sampled_from(["v", "vt", "vn", "f", "#", "", "other"]),
                                            max_size=20)) + ["f"]
    totals = {k: kinds.count(k) for k in ("v", "vt", "vn")}
    seen = {"v": 0, "vt": 0, "vn": 0}
    lines, where, vertices, faces = [], [], [], []
    sep = lambda: draw(st.sampled_from([" ", "\t", "  ", " \t "]))  # noqa: E731
    for kind in kinds:
        lead = draw(st.sampled_from(["", " ", "\t"]))
        tail = draw(st.sampled_from(["", " ", "\t", " # " + draw(comment_text)]))
        if kind in ("v", "vt", "vn"):
            count = {"v": 3, "vt": draw(st.integers(1, 3)), "vn": 3}[kind]
            values = [draw(float32s) for _ in range(count)]
            if kind == "v":
                vertices.append(values)
            lines.append(lead + kind + sep() + sep().join(number(draw, x) for x in values) + tail)
            seen[kind] += 1
        elif kind == "f":
            forms = ["v"] + (["v/vt"] if totals["vt"] else []) + (["v//vn"] if totals["vn"] else []) + \
                    (["v/vt/vn"] if totals["vt"] and totals["vn"] else [])
            form = draw(st.sampled_from(forms))
            n = draw(st.integers(3, 6))
            corners, targets = [], []
            for _ in range(n):
                parts = []
                for name in form.split("/"):
                    if not name:
                        parts.append("")
                        continue
                    t = draw(st.integers(0, totals[name] - 1))
                    if t < seen[name] and draw(st.booleans()):
                        parts.append(str(t - seen[name]))  # relative to what was read so far
                    else:
                        parts.append(str(t + 1))  # absolute, possibly a forward reference
                    if name == "v":
                        targets.append(t)
                corners.append("/".join(parts))
            faces += [(targets[0], targets[k], targets[k + 1]) for k in range(1, n - 1)]
            lines.append(lead + "f" + sep() + sep().join(corners) + tail)
        elif kind == "#":
            lines.append(lead + "#" + draw(comment_text))
        elif kind == "":
            lines.append(draw(st.sampled_from(["", " ", "\t", " \t"])))
        else:
            lines.append(draw(st.sampled_from(["o part", "g a b", "s 1", "s off", "l 1 2", "vp 0.5"])))
        where.append(kind)
    return lines, where, np.array(vertices, dtype=np.float32), np.array(faces, dtype=np.int64), totals


LINE_ENDS = ["\n", "\r\n", "\r"]


def join(draw, lines, ends=LINE_ENDS):
    """The file's bytes: a line end per line (one of ``ends``), maybe a BOM, maybe no final newline.
    A lone \r before an empty line that ends in \n would make one \r\n of the two line ends, and one
    line of the two lines: there the \r becomes \r\n."""
    chosen = [draw(st.sampled_from(ends)) for _ in lines]
    for i in range(len(lines) - 1):
        if chosen[i] == "\r" and lines[i + 1] == "" and chosen[i + 1].startswith("\n"):
            chosen[i] = "\r\n"
    text = "".join(line + end for line, end in zip(lines, chosen))
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return ("\ufeff" if draw(st.booleans()) else "") + text


@SETTINGS
@given(st.data())
def test_well_formed_files_load_exactly(tmp_path, data):
    lines, _, vertices, faces, _ = data.draw(obj_files())
    path = tmp_path / "m.obj"
    path.write_bytes(join(data.draw, lines).encode("utf-8"))
    v, f = nr.load_obj(str(path), normalization=False, device="cpu")
    assert np.array_equal(v.numpy(), vertices)
    assert f.dtype == torch.int32 and np.array_equal(f.numpy(), faces)
    vn, _ = nr.load_obj(str(path), device="cpu")
    assert torch.isfinite(vn).all() and vn.abs().max() <= 1


@SETTINGS
@given(st.data())
def test_lone_carriage_return_files_load_equal_to_their_newline_twins(tmp_path, data):
    lines, _, _, _, _ = data.draw(obj_files())
    mac, unix = tmp_path / "mac.obj", tmp_path / "unix.obj"
    mac.write_bytes(join(data.draw, lines, ["\r"]).encode("utf-8"))  # every line ends with a lone \r
    unix.write_bytes("\n".join(lines).encode("utf-8"))
    for a, b in zip(nr.load_obj(str(mac), device="cpu"), nr.load_obj(str(unix), device="cpu")):
        assert torch.equal(a, b)


BAD_NUMBERS = ["nan", "NaN", "inf", "-Infinity", "1e39", "-3.5e38", "1e999", "1_0", "0x1", "1.2.3", "e5", "1e",
               "+-1", "1\x0c", "\x1c1", "1\x85", "\u0661", "1,5", "--1", ".", "1d5"]
BAD_INDICES = ["0", "-0", "1_0", "x", "1.0", "+-1", "\u0661", "1\x0b", "1//", "1/2/3/4"]


@SETTINGS
@given(st.data())
def test_one_corrupted_line_gives_a_one_line_error(tmp_path, data):
    lines, kinds, _, _, totals = data.draw(obj_files())
    targets = [i for i, k in enumerate(kinds) if k in ("v", "vt", "vn", "f")]
    i = data.draw(st.sampled_from(targets))
    tokens = lines[i].split("#")[0].split()
    k = data.draw(st.integers(1, len(tokens) - 1))
    if kinds[i] == "f":
        corner = tokens[k].split("/")
        seen = kinds[:i].count("v")
        bad = data.draw(st.sampled_from(BAD_INDICES + ["too far", "before first", "drop"]))
        if bad == "too far":
            corner[0] = str(totals["v"] + data.draw(st.integers(1, 5)))
        elif bad == "before first":
            corner[0] = str(-seen - data.draw(st.integers(1, 5)))
        elif bad == "drop":
            tokens = tokens[:3]  # f with two corners
            corner = tokens[k if k < 3 else 1].split("/")
            k = k if k < 3 else 1
        else:
            corner[0] = bad
        tokens[k] = "/".join(corner)
    else:
        bad = data.draw(st.sampled_from(BAD_NUMBERS + ["drop"]))
        if bad == "drop":
            tokens = tokens[:-1] if kinds[i] != "vt" else tokens[:1] + ["0"] * 4
        else:
            tokens[k] = bad
    lines = list(lines)
    lines[i] = " ".join(tokens)
    path = tmp_path / "bad.obj"
    path.write_bytes(join(data.draw, lines).encode("utf-8"))
    with pytest.raises(ValueError) as e:
        nr.load_obj(str(path), device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "\r" not in msg
    assert msg.startswith(f"{path}:{i + 1}: "), (msg, lines[i])


names = st.text(st.sampled_from(list("abcXYZ019_.-")), min_size=1, max_size=6)


@SETTINGS
@given(st.data())
def test_generated_materials_give_their_kd_or_grey(tmp_path, data):
    materials = data.draw(st.lists(names, min_size=1, max_size=4, unique=True))
    mtl, colours = [], {}
    for name in materials:
        mtl += [draw_noise(data) for _ in range(data.draw(st.integers(0, 2)))]
        mtl.append(f"newmtl {name}")
        if data.draw(st.booleans()):
            rgb = [data.draw(unit32s) for _ in range(data.draw(st.sampled_from([1, 3])))]
            mtl.append("Kd " + " ".join(number(data.draw, x) for x in rgb))
            colours[name] = rgb * 3 if len(rgb) == 1 else rgb
        mtl.append(data.draw(st.sampled_from(["Ka 0 0 0", "Ns 10", "illum 2", "d 1", "", "# c\x0cKd 1 1 1"])))
    (tmp_path / "m.mtl").write_bytes(join(data.draw, mtl).encode("utf-8"))
    obj, expected = ["mtllib m.mtl", "v 0 0 0", "v 1 0 0", "v 0 1 0"], []
    current = None
    for _ in range(data.draw(st.integers(1, 6))):
        if data.draw(st.booleans()):
            current = data.draw(st.sampled_from(materials + ["unknown_material"]))
            obj.append(f"usemtl {current}")
        obj.append("f 1 2 3")
        expected.append(colours.get(current, [0.5] * 3))
    (tmp_path / "m.obj").write_bytes(join(data.draw, obj).encode("utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, t = nr.load_obj(str(tmp_path / "m.obj"), load_texture=True, texture_size=1, device="cpu")
    assert np.array_equal(t.reshape(-1, 3).numpy(), np.array(expected, dtype=np.float32))


def draw_noise(data):
    return data.draw(st.sampled_from(["", "# Blender MTL", "\t", "# \u2028 comment"]))


@SETTINGS
@given(st.data())
def test_corrupted_kd_names_the_mtl_line(tmp_path, data):
    n = data.draw(st.integers(1, 4))
    lines = []
    for m in range(n):
        lines += [f"newmtl m{m}", "Kd " + " ".join(number(data.draw, data.draw(unit32s)) for _ in range(3))]
    i = 2 * data.draw(st.integers(0, n - 1)) + 1
    tokens = lines[i].split()
    tokens[data.draw(st.integers(1, 3))] = data.draw(st.sampled_from(BAD_NUMBERS))
    lines[i] = " ".join(tokens)
    (tmp_path / "m.mtl").write_bytes(join(data.draw, lines).encode("utf-8"))
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl m0\nf 1 2 3\n")
    with pytest.raises(ValueError) as e:
        nr.load_obj(str(tmp_path / "m.obj"), load_texture=True, device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'm.mtl'}:{i + 1}: "), msg
