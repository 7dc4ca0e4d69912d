"""UV texture maps: load_obj(..., texture_format="uv"), the UVMap container, save_obj round trips."""
import numpy as np
import pytest
import torch
from PIL import Image

import tritonnmr as nr
from tritonnmr.backends import torch as reference
from tritonnmr.io.obj import parse_obj
from tritonnmr.uvmap import UVMap, unpack

DISPLAY = nr.data_path("textured_display/model.obj")


def test_display_model_as_uv_map():
    v, f, uv = nr.load_obj(DISPLAY, load_texture=True, texture_format="uv", device="cpu")
    assert isinstance(uv, UVMap) and uv.wrap == "REPEAT"
    assert uv.uvs.shape == (3644, 3, 2) and uv.uvs.dtype == torch.float32
    assert uv.material.shape == (3644,) and uv.material.dtype == torch.int64
    # 7 materials, numbered by first use: texture1 (4 faces), five Kd colours, texture0 (8 faces)
    assert [tuple(im.shape) for im in uv.images] == [(100, 545, 3)] + [(1, 1, 3)] * 4 + [(225, 225, 3), (1, 1, 3)]
    assert uv.material.bincount().tolist() == [4, 2753, 333, 294, 12, 8, 240]
    assert torch.allclose(uv.images[4], torch.tensor([0.0, 0.0, 0.8]))  # material_4_24: Kd 0 0 0.8
    assert all(im.dtype == torch.float32 and im.min() >= 0 and im.max() <= 1 for im in uv.images)
    textured = (uv.material == 0) | (uv.material == 5)
    assert uv.uvs[textured].min() >= 0 and uv.uvs[textured].max() <= 1
    # the uvs are the file's vt values, corner by corner
    obj = parse_obj(DISPLAY)
    assert torch.equal(uv.uvs, torch.from_numpy(obj.uvs))
    assert uv.uvs[textured].unique().tolist() == pytest.approx([0.0, 0.992363, 1.0])
    # the image is the picture as stored, row 0 the top
    top_left = np.asarray(Image.open(nr.data_path("textured_display/images/texture0.jpg")))[0, 0] / 255
    assert uv.images[5][0, 0].tolist() == pytest.approx(top_left.tolist())


def test_faces_without_material_use_half_grey(tmp_path):
    (tmp_path / "m.mtl").write_text("newmtl red\nKd 1 0 0\n")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nusemtl red\nf 1 2 3\n"
                                    "usemtl other\nf 1 2 3\n")
    with pytest.warns(UserWarning, match="'other' is not defined"):
        _, _, uv = nr.load_obj(str(tmp_path / "m.obj"), load_texture=True, texture_format="uv", device="cpu")
    assert uv.material.tolist() == [0, 1, 0]  # the unknown material shares the grey
    assert [im.tolist() for im in uv.images] == [[[[0.5, 0.5, 0.5]]], [[[1.0, 0.0, 0.0]]]]
    assert torch.equal(uv.uvs, torch.zeros(3, 3, 2))  # no vt: (0, 0)


def test_known_uv_gets_the_exact_texel(tmp_path):
    h, w = 5, 7
    pixels = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "tex.png")
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd tex.png\n")
    i, j = 1, 4  # row 1 from the top, column 4: centre at u = (j + 0.5) / w, v = 1 - (i + 0.5) / h
    u, v = (j + 0.5) / w, 1 - (i + 0.5) / h
    (tmp_path / "m.obj").write_text(f"mtllib m.mtl\nv -1 -1 2\nv 1 -1 2\nv 0 1 2\nvt {u!r} {v!r}\n"
                                    "usemtl a\nf 1/1 2/1 3/1\n")
    _, _, uv = nr.load_obj(str(tmp_path / "m.obj"), load_texture=True, texture_format="uv", device="cpu")
    texel = torch.from_numpy(pixels[i, j] / 255.0).float()
    assert torch.equal(uv.images[0][i, j], texel)
    texels, table = uv.packed()
    offset, th, tw = table[uv.material[0]].tolist()
    assert (th, tw) == (h, w) and torch.equal(texels[offset + i * w + j], texel)
    # the renderer's op (docs/backend-contract.md) reads exactly that texel at every pixel of the face
    if not hasattr(reference, "sample_uv"):
        pytest.skip("reference.sample_uv not available")
    face_index = torch.zeros(1, 2, 2, dtype=torch.int64)
    bary = torch.tensor([0.2, 0.3, 0.5]).expand(1, 2, 2, 3).contiguous()
    out = reference.sample_uv(face_index, bary, uv.uvs[None], texels, uv.material[None], table, 0)
    assert torch.allclose(out, texel.expand(1, 2, 2, 3), atol=1e-6)


def test_save_load_round_trip(tmp_path):
    _, f, uv = nr.load_obj(DISPLAY, load_texture=True, texture_format="uv", device="cpu")
    v, _ = nr.load_obj(DISPLAY, normalization=False, device="cpu")
    path = str(tmp_path / "out" / "display.obj")
    nr.save_obj(path, v, f, uv)
    v2, f2, uv2 = nr.load_obj(path, normalization=False, load_texture=True, texture_format="uv", device="cpu")
    assert torch.equal(v2, v) and torch.equal(f2, f)
    assert torch.equal(uv2.uvs, uv.uvs) and torch.equal(uv2.material, uv.material)
    assert [im.shape for im in uv2.images] == [im.shape for im in uv.images]
    for a, b in zip(uv.images, uv2.images):
        assert (a - b).abs().max() <= 0.5 / 255 + 1e-6
        if a.shape[:2] == (1, 1):  # plain colours are written as Kd: exact
            assert torch.equal(a, b)
    # a second trip changes nothing: 8-bit images are stored exactly
    nr.save_obj(path, v2, f2, uv2)
    _, _, uv3 = nr.load_obj(path, normalization=False, load_texture=True, texture_format="uv", device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(uv2.images, uv3.images))


def test_round_trip_keeps_face_order_and_uvs_outside_the_unit_square(tmp_path):
    g = torch.Generator().manual_seed(5)
    images = [torch.rand(3, 4, 3, generator=g), torch.tensor([[[0.1, 0.2, 0.3]]]), torch.rand(2, 2, 3, generator=g)]
    material = torch.tensor([1, 0, 0, 2, 1, 2])
    uvs = (torch.rand(6, 3, 2, generator=g) * 6 - 3)  # outside [0, 1]: kept unwrapped
    uvmap = UVMap(uvs, material, images, "MIRRORED_REPEAT")
    v = torch.rand(4, 3, generator=g)
    f = torch.tensor([[0, 1, 2], [1, 2, 3], [0, 2, 3], [0, 1, 3], [3, 2, 1], [2, 1, 0]])
    path = str(tmp_path / "m.obj")
    nr.save_obj(path, v, f, uvmap)
    _, _, back = nr.load_obj(path, load_texture=True, texture_format="uv", texture_wrapping="MIRRORED_REPEAT",
                             device="cpu")
    assert torch.equal(back.uvs, uvs)
    assert back.material.tolist() == [0, 1, 1, 2, 0, 2]  # numbered by first use
    order = [1, 0, 2]
    for m, im in enumerate(back.images):
        assert (im - images[order[m]]).abs().max() <= 0.5 / 255 + 1e-6


def test_uvmap_checks_and_packing():
    images = [torch.rand(2, 3, 4), torch.rand(1, 1, 4), torch.rand(4, 2, 4)]
    uvmap = UVMap(torch.rand(5, 3, 2), torch.tensor([2, 0, 1, 0, 2]), images, "CLAMP_TO_EDGE")
    texels, table = uvmap.packed()
    assert texels.shape == (6 + 1 + 8, 4) and table.tolist() == [[0, 2, 3], [6, 1, 1], [7, 4, 2]]
    for m, (offset, h, w) in enumerate(table.tolist()):
        for i in range(h):
            for j in range(w):
                assert torch.equal(texels[offset + i * w + j], images[m][i, j])
    # a texel gradient back to per-image gradients, and the map back from its packed form
    grads = uvmap.unpack(torch.arange(15.0)[:, None].expand(15, 4))
    assert [tuple(gr.shape) for gr in grads] == [(2, 3, 4), (1, 1, 4), (4, 2, 4)]
    assert grads[2][3, 1, 0].item() == 7 + 3 * 2 + 1
    again = UVMap.from_packed(uvmap.uvs, uvmap.material, texels, table, uvmap.wrap)
    assert all(torch.equal(a, b) for a, b in zip(again.images, images))
    moved = uvmap.to("cpu")
    assert moved.wrap == "CLAMP_TO_EDGE" and torch.equal(moved.material, uvmap.material)
    with pytest.raises(ValueError, match="wrap"):
        UVMap(uvmap.uvs, uvmap.material, images, "CLAMP_TO_BORDER")
    with pytest.raises(ValueError, match=r"uvs must have shape \(F, 3, 2\)"):
        UVMap(torch.rand(5, 3), uvmap.material, images)
    with pytest.raises(TypeError, match="material must be an int64"):
        UVMap(uvmap.uvs, uvmap.material.int(), images)
    with pytest.raises(ValueError, match="must index the 3 images"):
        UVMap(uvmap.uvs, torch.tensor([0, 1, 2, 3, 0]), images)
    with pytest.raises(ValueError, match=r"images\[1\] must have shape"):
        UVMap(uvmap.uvs, uvmap.material, [images[0], torch.rand(1, 1, 3), images[2]])
    with pytest.raises(ValueError, match="does not fit"):
        unpack(texels, torch.tensor([[0, 4, 4]]))


def test_uv_format_arguments(tmp_path):
    with pytest.raises(ValueError, match="CLAMP_TO_BORDER"):
        nr.load_obj(DISPLAY, load_texture=True, texture_format="uv", texture_wrapping="CLAMP_TO_BORDER")
    _, _, uv = nr.load_obj(DISPLAY, load_texture=True, texture_format="uv", texture_wrapping="CLAMP_TO_EDGE",
                           device="cpu")
    assert uv.wrap == "CLAMP_TO_EDGE"
    with pytest.raises(ValueError, match=r"C = 4"):
        nr.save_obj(str(tmp_path / "a.obj"), torch.rand(3, 3), torch.tensor([[0, 1, 2]]),
                    UVMap(torch.rand(1, 3, 2), torch.tensor([0]), [torch.rand(2, 2, 4)]))
    with pytest.raises(ValueError, match="one uv triangle per face"):
        nr.save_obj(str(tmp_path / "a.obj"), torch.rand(3, 3), torch.tensor([[0, 1, 2]]),
                    UVMap(torch.rand(2, 3, 2), torch.tensor([0, 0]), [torch.rand(2, 2, 3)]))
