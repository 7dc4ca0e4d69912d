"""OBJ/MTL loading and saving: geometry, materials, texture cubes, errors (see also test_io_*.py)."""
import numpy as np
import pytest
import torch
from PIL import Image

import tritonnmr as nr
from tritonnmr.io.cubes import cube_colours
from tritonnmr.io.load import default_device

TRIANGLE = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(p)


def png(tmp_path, name, pixels):
    """Write ``pixels`` (uint8 (h, w[, 2 | 3]) or uint16 (h, w) array) as an image file, return its name."""
    Image.fromarray(pixels).save(tmp_path / name)
    return name


def one_line_error(excinfo, path, lineno, text):
    """The error is one line: ``path:lineno: ...text...``."""
    msg = str(excinfo.value)
    assert "\n" not in msg and "\r" not in msg, msg
    assert msg.startswith(f"{path}:{lineno}: "), msg
    assert text in msg, msg


def test_teapot_loads_and_normalises():
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    assert v.shape == (1292, 3) and f.shape == (2464, 3) and f.dtype == torch.int32
    assert v.dtype == torch.float32
    extent = v.max(0).values - v.min(0).values
    assert extent.max().item() == pytest.approx(2.0, abs=1e-5)
    assert torch.allclose(v.max(0).values, -v.min(0).values, atol=1e-5)  # centred


def test_tetrahedron_maps_unit_cube_to_minus_one_one():
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"), device="cpu")
    assert torch.equal(f, torch.tensor([[1, 3, 2], [3, 1, 0], [2, 0, 1], [0, 2, 3]], dtype=torch.int32))
    assert torch.allclose(v, torch.tensor([[1., -1, -1], [-1, 1, -1], [-1, -1, 1], [-1, -1, -1]]))
    raw, _ = nr.load_obj(nr.data_path("tetrahedron.obj"), normalization=False, device="cpu")
    assert torch.equal(raw, torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]))


def test_device_defaults_to_cuda_where_available(monkeypatch):
    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"
    v, f, t = nr.load_obj(nr.data_path("textured_display/model.obj"), load_texture=True, texture_size=2)
    assert v.device.type == f.device.type == t.device.type == "cpu"


def test_polygons_slash_forms_negative_and_forward_indices(tmp_path):
    p = write(tmp_path, "quad.obj", "f 1 2 3\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\n"
                                     "f 1/1/1 2//1 3/1 -1\nf -4/-1 -3/-1/-1 -2\n")
    v, f = nr.load_obj(p, normalization=False, device="cpu")
    assert f.tolist() == [[0, 1, 2], [0, 1, 2], [0, 2, 3], [0, 1, 2]]  # the first face refers forward


def test_whitespace_comments_crlf_and_byte_order_mark(tmp_path):
    # BOM, CRLF, tabs, trailing comments; only \n, \r\n and \r end a line: form feed, \x1c, \x85, U+2028
    # in a comment do not start a new line (str.splitlines would read "v 5 5 5" as a vertex)
    text = ("\ufeffv 0 0 0\r\n# a\x0cv 5 5 5 \x1cv 6 6 6\x85v 7 7 7\u2028v 8 8 8\n"
            "v\t1 0  0 # x\r\nv 0 +1 .0e0\n\n   \nf 1 2 3 # face\n")
    v, f = nr.load_obj(write(tmp_path, "m.obj", text), normalization=False, device="cpu")
    assert v.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]] and f.tolist() == [[0, 1, 2]]


def test_vertices_read_exactly_as_float32(tmp_path):
    text = "v 0.1 -2.5e-3 3.4028234e38\nv 1e-50 -0 1.5\nv 3 4 5 0.5 0.25 1\nf 1 2 3\n"
    v, _ = nr.load_obj(write(tmp_path, "m.obj", text), normalization=False, device="cpu")
    expected = np.array([[0.1, -2.5e-3, 3.4028234e38], [1e-50, 0, 1.5], [3, 4, 5]]).astype(np.float32)
    assert np.array_equal(v.numpy(), expected)


def test_normalisation_stays_finite_at_the_float32_limits(tmp_path):
    # (3e38 - -3e38) overflows float32; in float64 the range is fine
    text = "v 3e38 -3e38 0\nv -3e38 3e38 1\nv 0 0 -3.4e38\nf 1 2 3\n"
    v, _ = nr.load_obj(write(tmp_path, "m.obj", text), device="cpu")
    assert torch.isfinite(v).all()
    expected = np.array([[1, -1, 3.4 / 6], [-1, 1, 3.4 / 6], [0, 0, -3.4 / 6]])  # longest side (6e38) -> 2
    assert np.allclose(v.numpy(), expected, atol=1e-6)
    # all vertices equal: the origin (neural_renderer divides 0 by 0)
    v, _ = nr.load_obj(write(tmp_path, "p.obj", "v 2 2 2\nv 2 2 2\nv 2 2 2\nf 1 2 3\n"), device="cpu")
    assert torch.equal(v, torch.zeros(3, 3))


@pytest.mark.parametrize("text,lineno,problem", [
    ("v 0 0\nf 1 2 3\n", 1, "v needs 3 to 7 numbers"),
    (TRIANGLE + "v nan 0 0\nf 1 2 3\n", 4, "'nan' is not a number"),
    (TRIANGLE + "v 0 -inf 0\nf 1 2 3\n", 4, "'-inf' is not a number"),
    (TRIANGLE + "v 0 0 1e39\nf 1 2 3\n", 4, "1e39 is out of float32 range"),
    (TRIANGLE + "v 1_0 0 0\nf 1 2 3\n", 4, "'1_0' is not a number"),
    (TRIANGLE + "v \u0661 0 0\nf 1 2 3\n", 4, "is not a number"),  # an Arabic-Indic digit
    (TRIANGLE + "v 0x1 0 0\nf 1 2 3\n", 4, "'0x1' is not a number"),
    (TRIANGLE + "v 1\x0c2 0 0\nf 1 2 3\n", 4, "'1\\x0c2' is not a number"),
    ("v a b c\n", 1, "'a' is not a number"),
    (TRIANGLE + "vt nan 0\nf 1 2 3\n", 4, "vt: 'nan' is not a number"),
    (TRIANGLE + "vt 0 0 0 0\nf 1 2 3\n", 4, "vt needs 1 to 3 numbers"),
    (TRIANGLE + "vn 0 0\nf 1 2 3\n", 4, "vn needs 3 numbers"),
    (TRIANGLE + "f 1 2 9\n", 4, "vertex index 9 is out of range (the file has 3)"),
    (TRIANGLE + "f 1 2\n", 4, "at least 3 vertices"),
    (TRIANGLE + "f 1 x 3\n", 4, "vertex index: 'x' is not an integer"),
    (TRIANGLE + "f 1 2 0_3\n", 4, "'0_3' is not an integer"),
    (TRIANGLE + "f 1 2 3.0\n", 4, "'3.0' is not an integer"),
    (TRIANGLE + "f 1 2 0\n", 4, "index 0 is invalid"),
    (TRIANGLE + "f 1 2 -4\n", 4, "vertex index -4 points before the first (there are 3 so far)"),
    (TRIANGLE + "f 1/1 2/1 3/1\n", 4, "texture coordinate index 1 is out of range (the file has 0)"),
    (TRIANGLE + "vt 0 0\nf 1/1 2/-2 3/1\n", 5, "texture coordinate index -2 points before"),
    (TRIANGLE + "vt 0 0\nf 1/1/1/1 2 3\n", 5, "is not v, v/vt, v//vn or v/vt/vn"),
    (TRIANGLE + "f 1/ 2 3\n", 4, "is not v, v/vt"),
    (TRIANGLE + "f /1 2 3\n", 4, "is not v, v/vt"),
])
def test_malformed_obj_files_raise_one_line_errors(tmp_path, text, lineno, problem):
    p = write(tmp_path, "bad.obj", text)
    with pytest.raises(ValueError) as e:
        nr.load_obj(p)
    one_line_error(e, p, lineno, problem)


@pytest.mark.parametrize("text, lineno, problem", [
    (TRIANGLE + "usemtl\nf 1 2 3\n", 4, "usemtl needs a material name"),
    ("mtllib # x\n" + TRIANGLE + "f 1 2 3\n", 1, "mtllib needs a file name"),
])
def test_bare_mtllib_or_usemtl_is_an_error_only_when_textures_are_loaded(tmp_path, text, lineno, problem):
    p = write(tmp_path, "bare.obj", text)
    with pytest.raises(ValueError) as e:
        nr.load_obj(p, load_texture=True)
    one_line_error(e, p, lineno, problem)
    with pytest.warns(UserWarning) as caught:  # the geometry does not need it: one warning, the file loads
        v, f = nr.load_obj(p, normalization=False, device="cpu")
    assert [str(w.message) for w in caught] == [f"{p}:{lineno}: {problem.split()[0]} without a name skipped: "
                                                f"materials are not read"]
    assert v.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]] and f.tolist() == [[0, 1, 2]]
    many = write(tmp_path, "many.obj", "usemtl\n" * 3 + "mtllib\n" + TRIANGLE + "f 1 2 3\n")
    with pytest.warns(UserWarning, match=r"many.obj:1: usemtl without a name skipped \(and 3 more\)"):
        nr.load_obj(many, device="cpu")


def test_normal_indices_are_read_as_integers_and_otherwise_ignored(tmp_path):
    # normals are never used: 0, out of range or before the first vn does not reject the file
    p = write(tmp_path, "n.obj", TRIANGLE + "vn 0 0 1\nvn 0 1 0\nf 1//9 2//0 3//-7\nf 1/1/3 2/1/1 3/1/2\nvt 0 1\n")
    v, f = nr.load_obj(p, normalization=False, device="cpu")
    assert f.tolist() == [[0, 1, 2], [0, 1, 2]]
    with pytest.raises(ValueError) as e:  # still an integer
        nr.load_obj(write(tmp_path, "x.obj", TRIANGLE + "f 1//x 2 3\n"))
    one_line_error(e, str(tmp_path / "x.obj"), 4, "normal index: 'x' is not an integer")


def test_lone_carriage_returns_end_lines(tmp_path):
    # classic Mac OS line ends, with and without a BOM, mixed with \r\n and \n; line numbers count them
    text = "v 0 0 0\rv 1 0 0\r\nv 0 1 0\n\rf 1 2 3 # c\rf 3 2 1\r"
    for bom in ("", "\ufeff"):
        v, f = nr.load_obj(write(tmp_path, "mac.obj", bom + text), normalization=False, device="cpu")
        assert v.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]] and f.tolist() == [[0, 1, 2], [2, 1, 0]]
    with pytest.raises(ValueError) as e:
        nr.load_obj(write(tmp_path, "bad.obj", "v 0 0 0\rv 1 0 0\r\rv 0 1\rf 1 2 3\r"))
    one_line_error(e, str(tmp_path / "bad.obj"), 4, "v needs 3 to 7 numbers")


def test_files_without_vertices_or_faces(tmp_path):
    for text, problem in [("", "no vertices"), ("# nothing\n", "no vertices"), ("v 0 0 0\n", "no faces")]:
        p = write(tmp_path, "e.obj", text)
        with pytest.raises(ValueError, match=f"^{p}: {problem}"):
            nr.load_obj(p)
    p = write(tmp_path, "u16.obj", (TRIANGLE + "f 1 2 3\n").encode("utf-16"))
    with pytest.raises(ValueError, match="UTF-16"):
        nr.load_obj(p)


def test_missing_files_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="OBJ file not found"):
        nr.load_obj(str(tmp_path / "nope.obj"))
    p = write(tmp_path, "m.obj", "mtllib missing.mtl\n" + TRIANGLE + "f 1 2 3\n")
    nr.load_obj(p)  # materials are only read with load_texture
    with pytest.raises(FileNotFoundError, match=r"MTL file not found: .*missing.mtl \(mtllib at .*m.obj:1\)"):
        nr.load_obj(p, load_texture=True)
    with pytest.raises(ValueError, match="texture_wrapping"):
        nr.load_obj(p, load_texture=True, texture_wrapping="WRAP")
    with pytest.raises(ValueError, match="texture_size"):
        nr.load_obj(p, load_texture=True, texture_size=0)
    with pytest.raises(ValueError, match="texture_format"):
        nr.load_obj(p, load_texture=True, texture_format="atlas")
    q = write(tmp_path, "n.obj", TRIANGLE + "f 1 2 3\n")
    with pytest.raises(ValueError, match="mtllib"):  # the CLI falls back to no textures on this message
        nr.load_obj(q, load_texture=True)


# ---------------------------------------------------------------------------------------------
# Materials: Kd, grey defaults, several libraries, errors
# ---------------------------------------------------------------------------------------------
def test_kd_colours_and_neural_renderer_grey(tmp_path):
    write(tmp_path, "a.mtl", "newmtl red\nKd 1 0 0\nnewmtl grey\nKd 0.25\nnewmtl bare\nNs 10\n")
    write(tmp_path, "b.mtl", "# second library\nnewmtl blue\r\nKd 0 0 1\r\n")
    p = write(tmp_path, "m.obj", "mtllib a.mtl b.mtl\n" + TRIANGLE +
              "f 1 2 3\nusemtl red\nf 1 2 3\nusemtl blue\nf 1 2 3\nusemtl grey\nf 1 2 3\n"
              "usemtl bare\nf 1 2 3\nusemtl nowhere\nf 1 2 3\n")
    with pytest.warns(UserWarning, match=r"m.obj:14: material 'nowhere' is not defined"):
        _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    expected = [[.5, .5, .5], [1, 0, 0], [0, 0, 1], [.25, .25, .25], [.5, .5, .5], [.5, .5, .5]]
    assert torch.equal(t, torch.tensor(expected)[:, None, None, None].expand(-1, 2, 2, 2, 3))


def test_mtllib_name_with_a_space(tmp_path):
    write(tmp_path, "my lib.mtl", "newmtl c\nKd 0.5 0.25 1\n")
    p = write(tmp_path, "m.obj", "mtllib my lib.mtl\n" + TRIANGLE + "usemtl c\nf 1 2 3\n")
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=1, device="cpu")
    assert t.reshape(3).tolist() == [0.5, 0.25, 1]


@pytest.mark.parametrize("mtl,lineno,problem", [
    ("newmtl a\nKd nan 0 0\n", 2, "Kd: 'nan' is not a number"),
    ("newmtl a\nKd 1 inf 0\n", 2, "Kd: 'inf' is not a number"),
    ("newmtl a\nKd 1 0\n", 2, "Kd needs 1 or 3 numbers, got 2"),
    ("newmtl a\nKd 1 0 0 0\n", 2, "Kd needs 1 to 3 numbers"),
    ("newmtl a\nKd spectral x.rfl\n", 2, "Kd spectral is not supported"),
    ("Kd 1 0 0\nnewmtl a\n", 1, "Kd before any newmtl"),
    ("newmtl\n", 1, "newmtl needs a material name"),
    ("newmtl a\nnewmtl b\nnewmtl a\n", 3, "material 'a' is defined twice"),
    ("newmtl a\nmap_Kd\n", 2, "map_Kd needs an image file name"),
    ("newmtl a\nmap_Kd -s\n", 2, "map_Kd option -s needs a number"),
    ("newmtl a\nmap_Kd -clamp on\n", 2, "map_Kd needs an image file name"),
])
def test_malformed_mtl_files_raise_one_line_errors(tmp_path, mtl, lineno, problem):
    m = write(tmp_path, "m.mtl", mtl)
    p = write(tmp_path, "m.obj", "mtllib m.mtl\n" + TRIANGLE + "usemtl a\nf 1 2 3\n")
    with pytest.raises(ValueError) as e:
        nr.load_obj(p, load_texture=True)
    one_line_error(e, m, lineno, problem)


# ---------------------------------------------------------------------------------------------
# Texture images: formats and broken files
# ---------------------------------------------------------------------------------------------
def textured(tmp_path, image_name, map_line=None, uv="vt 0 0\nvt 1 0\nvt 0 1\n"):
    write(tmp_path, "m.mtl", f"newmtl a\nKd 0.3 0.3 0.3\n{map_line or 'map_Kd ' + image_name}\n")
    return write(tmp_path, "m.obj", "mtllib m.mtl\n" + TRIANGLE + uv + "usemtl a\nf 1/1 2/2 3/3\n")


def test_image_formats_are_scaled_to_unit_range(tmp_path):
    # 16-bit grey: divided by 65535 (was 255: colours up to 257)
    grey16 = np.array([[65535, 0], [32768, 13107]], dtype=np.uint16)
    p = textured(tmp_path, png(tmp_path, "g16.png", grey16))
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    # cell (1, 0, 0) is uv (0, 0), the picture's bottom-left; (0, 1, 0) uv (1, 0); (0, 0, 1) uv (0, 1)
    assert t[0, 1, 0, 0].tolist() == pytest.approx([32768 / 65535] * 3)
    assert t[0, 0, 1, 0].tolist() == pytest.approx([13107 / 65535] * 3)
    assert t[0, 0, 0, 1].tolist() == pytest.approx([1.0] * 3)
    # grey + alpha: the grey channel (alpha dropped), was a reshape error
    la = np.stack([np.array([[10, 20], [30, 40]], np.uint8), np.full((2, 2), 7, np.uint8)], -1)
    p = textured(tmp_path, png(tmp_path, "la.png", la))
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    assert t[0, 1, 0, 0].tolist() == pytest.approx([30 / 255] * 3)
    # an animated GIF: its first frame, was a reshape error
    frames = [Image.new("RGB", (2, 2), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    p = textured(tmp_path, "a.gif")
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    assert torch.allclose(t[0], torch.tensor([1.0, 0, 0]).expand(2, 2, 2, 3))
    # map_Kd options before the file name are skipped
    p = textured(tmp_path, None, "map_Kd -s 1 1 1 -clamp on g16.png")
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    assert t[0, 0, 0, 1].tolist() == pytest.approx([1.0] * 3)


@pytest.mark.parametrize("content", [b"", b"not an image", "truncated"])
def test_broken_images_raise_one_line_errors(tmp_path, content):
    if content == "truncated":
        png(tmp_path, "full.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        content = (tmp_path / "full.png").read_bytes()[:300]
    (tmp_path / "bad.png").write_bytes(content)
    p = textured(tmp_path, "bad.png")
    with pytest.raises(ValueError) as e:
        nr.load_obj(p, load_texture=True)
    one_line_error(e, str(tmp_path / "m.mtl"), 3, "cannot read texture image")
    assert "bad.png" in str(e.value)


def test_missing_image_raises_file_not_found(tmp_path):
    p = textured(tmp_path, "nowhere.png")
    with pytest.raises(FileNotFoundError, match=r"texture image not found: .*nowhere.png \(map_Kd at .*m.mtl:3\)"):
        nr.load_obj(p, load_texture=True)


# ---------------------------------------------------------------------------------------------
# Baking images into cubes: neural_renderer's sampling, hand-derived
# ---------------------------------------------------------------------------------------------
def test_cube_cells_sample_the_image_corner_aligned(tmp_path):
    # 2 x 2 picture, row 0 the top: A B / C D. Face uvs (0,0), (1,0), (0,1).
    pix = np.array([[[200, 0, 0], [0, 200, 0]], [[0, 0, 200], [100, 100, 100]]], dtype=np.uint8)
    A, B, C, D = (pix.reshape(4, 3) / 255.0)
    p = textured(tmp_path, png(tmp_path, "abcd.png", pix))
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    t = t[0].double()
    assert np.allclose(t[1, 0, 0], C) and np.allclose(t[0, 1, 0], D) and np.allclose(t[0, 0, 1], A)
    assert np.allclose(t[1, 1, 0], (C + D) / 2)  # uv (1/2, 0)
    assert np.allclose(t[0, 1, 1], (A + D) / 2 / 2 + (B + C) / 2 / 2)  # uv (1/2, 1/2): all four
    # cell (0, 0, 0): the face's centroid uv (1/3, 1/3): x = 1/3, y = 2/3 (neural_renderer: uv (0, 0))
    assert np.allclose(t[0, 0, 0], (2 * A + B) / 9 + 2 * (2 * C + D) / 9)
    _, _, n = nr.load_obj(p, load_texture=True, texture_size=2, use_bilinear=False, device="cpu")
    assert np.allclose(n[0, 1, 1, 0], D) and np.allclose(n[0, 0, 0, 0], C)  # (1/2, 0) -> x 0.5 rounds up


def test_centre_cell_makes_a_linear_image_exact_at_the_face_centre(tmp_path):
    from tritonnmr.backends import torch as reference
    # a picture linear in column and row; corner-aligned bilinear reading keeps it linear in uv
    h, w = 4, 5
    rows, cols = np.mgrid[0:h, 0:w]
    pix = np.stack([50 * cols + 10 * rows + 5, 3 * cols + 7, 50 - 9 * rows], -1).astype(np.uint8)
    p = textured(tmp_path, png(tmp_path, "lin.png", pix), uv="vt 0.1 0.2\nvt 0.9 0.3\nvt 0.4 0.8\n")
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, device="cpu")
    u, v = (0.1 + 0.9 + 0.4) / 3, (0.2 + 0.3 + 0.8) / 3
    x, y = u * (w - 1), (1 - v) * (h - 1)
    centre = torch.tensor([50 * x + 10 * y + 5, 3 * x + 7, 50 - 9 * y]) / 255
    bary = torch.full((1, 1, 1, 3), 1 / 3)
    got = reference.sample_cubes(torch.zeros(1, 1, 1, dtype=torch.int64), bary, t[None], 1e-3)
    assert torch.allclose(got.reshape(3), centre, atol=1e-6)
    # neural_renderer's cell (0, 0, 0), the picture's bottom-left texel, weighs 8/27 there
    nr_cube = t.clone()
    nr_cube[0, 0, 0, 0] = torch.from_numpy(pix[-1, 0] / 255.0)
    off = reference.sample_cubes(torch.zeros(1, 1, 1, dtype=torch.int64), bary, nr_cube[None], 1e-3)
    assert (off.reshape(3) - centre).abs().max() > 0.05


@pytest.mark.parametrize("wrapping,expected", [
    ("REPEAT", [1.0, 0.25, 0.75]),  # u = 1 stays 1 (neural_renderer swaps 0 and 1), 1.25 -> 0.25
    ("MIRRORED_REPEAT", [1.0, 0.75, 0.75]),
    ("CLAMP_TO_EDGE", [1.0, 1.0, 0.75]),
    ("CLAMP_TO_BORDER", [1.0, None, 0.75]),  # outside [0, 1]: the border colour, 0
])
def test_wrapping_of_sampled_uvs(tmp_path, wrapping, expected):
    # 1 x 3 picture: texels at u = 0, 0.5, 1 hold 10, 100, 250; face uvs u = 1, 1.25, 0.75
    pix = np.array([[[10] * 3, [100] * 3, [250] * 3]], dtype=np.uint8)
    p = textured(tmp_path, png(tmp_path, "row.png", pix), uv="vt 1 0\nvt 1.25 0\nvt 0.75 0\n")
    _, _, t = nr.load_obj(p, load_texture=True, texture_size=2, texture_wrapping=wrapping, device="cpu")

    def at(u):  # x = u (w - 1) = 2u, linear between texels
        return 0.0 if u is None else np.interp(2 * u, [0, 1, 2], [10, 100, 250]) / 255

    got = [t[0, 1, 0, 0, 0], t[0, 0, 1, 0, 0], t[0, 0, 0, 1, 0]]
    assert [float(g) for g in got] == pytest.approx([at(u) for u in expected], abs=1e-6)


def neural_renderer_cells(image, uv, T):
    """neural_renderer 1.1.3's load_textures kernel for one face, written out per cell from its
    formulas (flipped image, pos = uv (size - 1), truncation, clamped +1 neighbour, bilinear), without
    its in-place REPEAT wrap of the corner uvs (which turns 0 into 1 and 1 into 0)."""
    flipped = image[::-1]
    h, w = flipped.shape[:2]
    out = np.zeros((T, T, T, 3))
    for i in range(T):
        for j in range(T):
            for k in range(T):
                d = np.array([i, j, k]) / (T - 1.0)
                if d.sum() > 0:
                    d = d / d.sum()
                px, py = (d @ uv[:, 0]) * (w - 1), (d @ uv[:, 1]) * (h - 1)
                x0, y0 = int(px), int(py)
                fx, fy = px - x0, py - y0
                x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
                out[i, j, k] = (flipped[y0, x0] * (1 - fx) * (1 - fy) + flipped[y1, x0] * (1 - fx) * fy
                                + flipped[y0, x1] * fx * (1 - fy) + flipped[y1, x1] * fx * fy)
    return out


def test_textured_display_matches_neural_renderer_formulas():
    from tritonnmr.io.images import read_texture
    from tritonnmr.io.obj import parse_obj
    path = nr.data_path("textured_display/model.obj")
    _, f, t = nr.load_obj(path, load_texture=True, texture_size=4, device="cpu")
    assert f.shape == (3644, 3) and t.shape == (3644, 4, 4, 4, 3)
    obj = parse_obj(path)
    kd = {"material_0_24": 0.401569, "material_1_24": 0.109804, "material_2_24": 0.602353,
          "material_3_24": 0.8, "material_4_24": [0, 0, 0.8]}
    images = {"material_3_1_0": "texture1.jpg", "material_5_2_8": "texture0.jpg"}
    checked = 0
    for face, m in enumerate(obj.material.tolist()):
        name = obj.material_names[m]
        if name in kd:
            assert torch.equal(t[face], torch.tensor(kd[name], dtype=torch.float32).expand(4, 4, 4, 3))
        else:
            image = read_texture(nr.data_path("textured_display/images/" + images[name])).astype(np.float64)
            expected = neural_renderer_cells(image, obj.uvs[face].astype(np.float64), 4)
            diff = np.abs(t[face].numpy() - expected)
            assert diff.reshape(64, 3)[1:].max() < 1e-6  # every cell but (0, 0, 0)
            checked += 1
    assert checked == 12


def test_cube_colours_are_the_trilinear_interpolant():
    g = torch.Generator().manual_seed(1)
    cubes = torch.rand(2, 3, 3, 3, 4, generator=g, dtype=torch.float64)
    w = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0.5, 0.25, 0.25], [0.2, 0.3, 0.5]], dtype=torch.float64)
    got = cube_colours(cubes, w)
    assert torch.allclose(got[:, 0], cubes[:, 2, 0, 0]) and torch.allclose(got[:, 1], cubes[:, 0, 0, 2])
    # t = (1, 0.5, 0.5): halfway between cells (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)
    assert torch.allclose(got[:, 2], cubes[:, 1, 0:2, 0:2].mean((1, 2)))
    # t = (0.4, 0.6, 1.0)
    ref = sum(wi * wj * cubes[:, i, j, 1] for i, wi in ((0, 0.6), (1, 0.4)) for j, wj in ((0, 0.4), (1, 0.6)))
    assert torch.allclose(got[:, 3], ref)


def test_save_and_load_round_trip_with_cubes(tmp_path):
    v, f = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    f = f[:500]
    g = torch.Generator().manual_seed(0)
    colours = torch.rand(f.shape[0], 1, 1, 1, 3, generator=g).expand(-1, 2, 2, 2, 3)
    path = str(tmp_path / "out" / "teapot.obj")
    nr.save_obj(path, v, f, colours)
    v2, f2, t2 = nr.load_obj(path, normalization=False, load_texture=True, texture_size=2, device="cpu")
    assert torch.equal(v, v2) and torch.equal(f, f2)  # 9 significant digits: float32 exactly
    assert torch.allclose(t2, colours, atol=0.5 / 255 + 1e-6)  # 8-bit image
    # varying cubes: the atlas holds the renderer's colours, corners come back within 8-bit steps
    cubes = torch.rand(f.shape[0], 2, 2, 2, 3, generator=g)
    nr.save_obj(path, v, f, cubes, texture_tile=16)
    _, _, t3 = nr.load_obj(path, normalization=False, load_texture=True, texture_size=2, device="cpu")
    for cell in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):  # the face's corners are inset by 1.5 pixels
        assert (t3[(slice(None),) + cell] - cubes[(slice(None),) + cell]).abs().mean() < 0.1


def test_save_obj_rejects_bad_input(tmp_path):
    v, f = torch.zeros(3, 3), torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="vertices"):
        nr.save_obj(str(tmp_path / "a.obj"), torch.zeros(3, 2), f)
    with pytest.raises(ValueError, match="faces indices"):
        nr.save_obj(str(tmp_path / "a.obj"), v, torch.tensor([[0, 1, 3]]))
    with pytest.raises(ValueError, match="finite"):
        nr.save_obj(str(tmp_path / "a.obj"), torch.full((3, 3), float("nan")), f)
    with pytest.raises(ValueError, match="textures"):
        nr.save_obj(str(tmp_path / "a.obj"), v, f, torch.zeros(2, 2, 2, 2, 3))
