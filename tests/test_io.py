"""OBJ/MTL loading and saving."""
import pytest
import torch

import tritonnmr as nr


def test_teapot_loads_and_normalises():
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    assert v.shape == (1292, 3) and f.shape == (2464, 3) and f.dtype == torch.int32
    assert v.dtype == torch.float32
    extent = v.max(0).values - v.min(0).values
    assert extent.max().item() == pytest.approx(2.0, abs=1e-5)
    assert torch.allclose(v.max(0).values, -v.min(0).values, atol=1e-5)  # centred


def test_tetrahedron_maps_unit_cube_to_minus_one_one():
    v, f = nr.load_obj(nr.data_path("tetrahedron.obj"))
    assert torch.equal(f, torch.tensor([[1, 3, 2], [3, 1, 0], [2, 0, 1], [0, 2, 3]], dtype=torch.int32))
    assert torch.allclose(v, torch.tensor([[1., -1, -1], [-1, 1, -1], [-1, -1, 1], [-1, -1, -1]]))
    raw, _ = nr.load_obj(nr.data_path("tetrahedron.obj"), normalization=False)
    assert torch.allclose(raw, torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]))


def test_textured_model_bakes_colours_and_images():
    path = nr.data_path("textured_display/model.obj")
    v, f, t = nr.load_obj(path, load_texture=True, texture_size=4)
    assert f.shape == (3644, 3) and t.shape == (3644, 4, 4, 4, 3)
    assert t.min() >= 0 and t.max() <= 1
    # a Kd-only material is constant: (0, 0, 0.8) is the only blue one
    blue = (t[..., 2] > 0.79) & (t[..., 0] < 0.01)
    assert blue.all(dim=(1, 2, 3)).any()
    # image-textured faces vary within a face
    assert (t.flatten(1, 3).std(1).sum(-1) > 0.01).any()
    for wrapping in ("MIRRORED_REPEAT", "CLAMP_TO_EDGE"):
        _, _, t2 = nr.load_obj(path, load_texture=True, texture_size=2, texture_wrapping=wrapping)
        assert t2.shape == (3644, 2, 2, 2, 3) and torch.isfinite(t2).all()


def test_polygons_and_slash_forms(tmp_path):
    p = tmp_path / "quad.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\nf 1/1/1 2//1 3/1 -1\n")
    v, f = nr.load_obj(str(p), normalization=False)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_save_and_load_round_trip(tmp_path):
    v, f = nr.load_obj(nr.data_path("teapot.obj"))
    g = torch.Generator().manual_seed(0)
    colours = torch.rand(f.shape[0], 1, 1, 1, 3, generator=g).expand(-1, 2, 2, 2, 3)
    path = str(tmp_path / "out" / "teapot.obj")
    nr.save_obj(path, v, f, colours)
    v2, f2, t2 = nr.load_obj(path, normalization=False, load_texture=True, texture_size=2)
    assert torch.allclose(v, v2, atol=1e-6) and torch.equal(f, f2)
    assert torch.allclose(t2, colours, atol=1.5 / 255)  # 8-bit image


@pytest.mark.parametrize("text,match", [
    ("v 0 0\nf 1 2 3\n", "vertex needs 3 numbers"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "at least 3"),
    ("v a b c\n", "vertex needs 3 numbers"),
    ("v 0 0 0\n", "no faces"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 x 3\n", "bad index"),
])
def test_malformed_obj_files_raise_clear_errors(tmp_path, text, match):
    p = tmp_path / "bad.obj"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        nr.load_obj(str(p))


def test_missing_files_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="OBJ file not found"):
        nr.load_obj(str(tmp_path / "nope.obj"))
    p = tmp_path / "m.obj"
    p.write_text("mtllib missing.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(FileNotFoundError, match="MTL file not found"):
        nr.load_obj(str(p), load_texture=True)
    with pytest.raises(ValueError, match="texture_wrapping"):
        nr.load_obj(str(p), load_texture=True, texture_wrapping="WRAP")
