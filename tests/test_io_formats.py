"""load_mesh / save_mesh for PLY, STL, OFF, glTF and GLB through trimesh, OBJ through our reader.

Every file here is made by trimesh inside the test (or written by hand, for the OBJ twins): no
downloads. Round trips are exact where the format stores the values exactly; a textured GLB renders
the same picture as its OBJ + MTL + PNG twin.
"""
import io
import logging
import os
import subprocess
import sys
import warnings
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritonnmr as nr
from tritonnmr.apps.cli import main
from tritonnmr.io import NoTextureWarning
from tritonnmr.io.trimesh_write import off_decimals

trimesh = pytest.importorskip("trimesh")  # the io extra, which install.sh installs
from PIL import Image  # noqa: E402

FORMATS = ["obj", "ply", "stl", "off", "glb", "gltf"]
SETTINGS = settings(max_examples=int(os.environ.get("TRITONNMR_FUZZ_EXAMPLES", 15)), deadline=timedelta(seconds=10),
                    database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def load(path, **kw):
    return nr.load_mesh(str(path), normalization=False, device="cpu", **kw)


def one_line_warnings(caught, path):
    """The messages of ``caught``, each checked to be one line naming ``path``."""
    messages = [str(w.message) for w in caught]
    for m in messages:
        assert "\n" not in m and m.startswith(str(path)), m
    return messages


def in_first_use_order(faces, num_vertices):
    """``faces`` relabelled so that vertices first appear in order 0, 1, 2 ... (unused ones last):
    the order a triangle soup (STL) or a split vertex list (glTF) reads back in."""
    order = list(dict.fromkeys(faces.reshape(-1).tolist()))
    order += [i for i in range(num_vertices) if i not in set(order)]
    rank = np.empty(num_vertices, dtype=np.int64)
    rank[order] = np.arange(num_vertices)
    return rank[faces], np.array(order)


def random_mesh(seed, num_vertices=9, num_faces=10, spread=None):
    g = np.random.default_rng(seed)
    v = (g.normal(size=(num_vertices, 3)) * (spread if spread is not None else 1)).astype(np.float32)
    f = np.stack([g.choice(num_vertices, 3, replace=False) for _ in range(num_faces)])
    f[0] = [0, 1, 2]
    f = np.concatenate([f, [[3 + k % (num_vertices - 3), 3 + (k + 1) % (num_vertices - 3), 0]
                            for k in range(num_vertices - 3)]])  # every vertex used
    f, order = in_first_use_order(f, num_vertices)
    return torch.from_numpy(v[order]), torch.from_numpy(f.astype(np.int32))


# -- round trips ---------------------------------------------------------------------------------------

float32s = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)


@SETTINGS
@given(st.data())
def test_geometry_round_trips_exactly_in_every_format(tmp_path, data):
    fmt = data.draw(st.sampled_from(FORMATS))
    v, f = random_mesh(data.draw(st.integers(0, 10 ** 6)))
    v = v.clone()
    v[0] = torch.tensor([data.draw(float32s) for _ in range(3)])  # tiny, huge, subnormal, -0.0 ...
    if fmt == "stl" and (v[0] == v[1:]).all(1).any():
        return  # a duplicate position: STL has no vertex list, merging is all it can do (tested below)
    path = tmp_path / f"m.{fmt}"
    nr.save_mesh(str(path), v, f)
    v2, f2 = load(path)
    assert v2.dtype == torch.float32 and f2.dtype == torch.int32
    assert torch.equal(v2, v) and torch.equal(f2, f), fmt
    # normalised exactly as load_obj normalises the OBJ twin
    nr.save_obj(str(tmp_path / "twin.obj"), v, f)
    vn, _ = nr.load_mesh(str(path), device="cpu")
    assert torch.equal(vn, nr.load_obj(str(tmp_path / "twin.obj"), device="cpu")[0])


@pytest.mark.parametrize("fmt", ["ply", "off", "glb", "gltf"])
def test_the_teapot_round_trips_with_its_duplicate_and_unused_vertices(tmp_path, fmt):
    v, f = nr.load_obj(nr.data_path("teapot.obj"), normalization=False, device="cpu")
    assert len(torch.unique(v, dim=0)) < len(v)  # the premise: positions that repeat
    nr.save_mesh(str(tmp_path / f"teapot.{fmt}"), v, f)
    v2, f2 = load(tmp_path / f"teapot.{fmt}")
    assert torch.equal(v2, v) and torch.equal(f2, f)


def test_off_decimals_keep_nine_significant_digits():
    assert off_decimals(np.array([1.5, -2.0])) == 10
    assert off_decimals(np.array([0.0, 1e-20])) == 29
    assert off_decimals(np.array([1.4e-45, 3.4e38])) == 54
    assert off_decimals(np.zeros(3)) == 10


@pytest.mark.parametrize("fmt", ["stl", "glb"])
def test_split_formats_merge_equal_positions_in_order_of_first_appearance(tmp_path, fmt):
    # trimesh writes a triangle soup (STL) / one vertex per corner (glTF, as a uv-seamed file has them)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    f = np.array([[0, 1, 2], [2, 1, 3], [0, 2, 3]])
    soup = trimesh.Trimesh(v[f.reshape(-1)], np.arange(9).reshape(3, 3), process=False)
    soup.vertices[0, 0] = -0.0  # equal to 0.0
    path = tmp_path / f"soup.{fmt}"
    soup.export(str(path))
    v2, f2 = load(path)
    assert v2.tolist() == v.tolist() and f2.tolist() == f.tolist()


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb", "gltf"])
def test_vertex_colours_round_trip(tmp_path, fmt):
    v, f = random_mesh(1)
    g = torch.Generator().manual_seed(0)
    colours = torch.randint(0, 256, (len(v), 3), generator=g).float() / 255  # 8-bit in PLY and glTF
    if fmt == "obj":
        colours = torch.rand(len(v), 3, generator=g)  # OBJ: 9 digits, any float32
    nr.save_mesh(str(tmp_path / f"c.{fmt}"), v, f, colours)
    v2, f2, c2 = load(tmp_path / f"c.{fmt}", texture_format="vertex")
    assert torch.equal(v2, v) and torch.equal(f2, f) and torch.equal(c2, colours)
    # the same colours as cubes: each cell mixes the corners' colours at its barycentric point
    _, _, cubes = load(tmp_path / f"c.{fmt}", texture_format="cubes", texture_size=2)
    corners = colours[f.long()]  # (F, 3, 3)
    assert torch.allclose(cubes[:, 1, 0, 0], corners[:, 0]) and torch.allclose(cubes[:, 0, 0, 1], corners[:, 2])
    assert torch.allclose(cubes[:, 0, 0, 0], corners.mean(1))


def uv_map(num_faces, materials, seed, grid=1024):
    """A UVMap with uvs on a 1/grid grid (glTF stores v downward: 1 - v is exact there), faces grouped
    by material, RGB images (one 1 x 1, a colour)."""
    g = torch.Generator().manual_seed(seed)
    uvs = torch.randint(0, grid + 1, (num_faces, 3, 2), generator=g).float() / grid
    material = torch.sort(torch.randint(0, materials, (num_faces,), generator=g)).values
    material[0], material[-1] = 0, materials - 1
    images = [torch.rand(5 + m, 7, 3, generator=g) for m in range(materials - 1)] + [torch.rand(1, 1, 3, generator=g)]
    return nr.UVMap(uvs, material, images)


@pytest.mark.parametrize("fmt", ["glb", "gltf"])
@pytest.mark.parametrize("materials", [1, 3])
def test_uv_maps_round_trip_through_gltf_as_through_obj(tmp_path, fmt, materials):
    v, f = random_mesh(2)
    uvmap = uv_map(len(f), materials, seed=materials) if materials > 1 else \
        nr.UVMap(uv_map(len(f), 2, 0).uvs, torch.zeros(len(f), dtype=torch.int64), [torch.rand(6, 4, 3)])
    nr.save_mesh(str(tmp_path / f"u.{fmt}"), v, f, uvmap)
    nr.save_mesh(str(tmp_path / "u.obj"), v, f, uvmap)
    v2, f2, u2 = load(tmp_path / f"u.{fmt}", texture_format="uv")
    _, _, twin = load(tmp_path / "u.obj", texture_format="uv")
    assert torch.equal(v2, v) and torch.equal(f2, f)
    assert torch.equal(u2.uvs, uvmap.uvs) and torch.equal(u2.material, uvmap.material)
    assert len(u2.images) == materials
    for got, obj, want in zip(u2.images, twin.images, uvmap.images):
        assert got.shape == want.shape and (got - want).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit
        if want.shape[:2] != (1, 1):
            assert torch.equal(got, obj)  # the same PNG pixels as the OBJ's
    # uvs off the grid come back within float32's rounding of 1 - v
    odd = nr.UVMap(torch.rand(len(f), 3, 2), torch.zeros(len(f), dtype=torch.int64), [torch.rand(4, 4, 3)])
    nr.save_mesh(str(tmp_path / f"odd.{fmt}"), v, f, odd)
    assert (load(tmp_path / f"odd.{fmt}", texture_format="uv")[2].uvs - odd.uvs).abs().max() <= 2 ** -24


def test_cubes_are_saved_as_their_atlas_and_bake_back(tmp_path):
    v, f = random_mesh(3)
    g = torch.Generator().manual_seed(0)
    cubes = torch.rand(len(f), 1, 1, 1, 3, generator=g).expand(-1, 2, 2, 2, 3)  # one colour per face
    nr.save_mesh(str(tmp_path / "c.glb"), v, f, cubes)
    _, _, back = load(tmp_path / "c.glb", texture_format="cubes", texture_size=2)
    assert torch.allclose(back, cubes, atol=0.5 / 255 + 1e-6)


# -- a textured GLB made by trimesh renders like its OBJ + MTL + PNG twin ----------------------------------

CUBE = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                 [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=np.float32) * 0.8
QUADS = [[4, 5, 6, 7], [1, 0, 3, 2], [5, 1, 2, 6], [0, 4, 7, 3], [7, 6, 2, 3], [0, 1, 5, 4]]


def checker(size=16, cells=4):
    """A (size, size, 3) uint8 checkerboard of two colours with a gradient, so a wrong uv shows."""
    y, x = np.mgrid[0:size, 0:size]
    board = ((y * cells // size + x * cells // size) % 2).astype(bool)
    image = np.where(board[..., None], [230, 40, 30], [30, 60, 220]).astype(np.float64)
    image[..., 1] += x * 8
    return np.clip(image, 0, 255).astype(np.uint8)


def textured_cube_twins(tmp_path):
    """(GLB path written by trimesh, OBJ path written by hand): one checker texture, a uv square per
    side; the GLB has 4 vertices per side (as exporters split uv seams), the OBJ 8 and 14 vt."""
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    positions, uv, faces = [], [], []
    for side, quad in enumerate(QUADS):
        offset = np.array([side % 3, side // 3], dtype=np.float32)
        base = len(positions)
        positions += [CUBE[i] for i in quad]
        uv += list((corners + offset) / np.array([3, 2]) * 0.75 + 0.125)  # inside the image, on a 1/32 grid
        faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    positions, uv, faces = np.array(positions), np.array(uv), np.array(faces)
    texture = checker()
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture),
                                                   baseColorFactor=[255, 255, 255, 255])
    mesh = trimesh.Trimesh(positions, faces, visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
                           process=False)
    glb = tmp_path / "cube.glb"
    glb.write_bytes(mesh.export(file_type="glb"))
    # the OBJ twin: vertices in order of first appearance in the GLB, one vt per corner
    order = list(dict.fromkeys(tuple(p) for p in positions.tolist()))
    lines = ["mtllib cube.mtl"] + ["v %r %r %r" % p for p in order] + ["vt %r %r" % tuple(t) for t in uv.tolist()]
    lines.append("usemtl checker")
    for a, b, c in faces.tolist():
        idx = [order.index(tuple(positions[k].tolist())) + 1 for k in (a, b, c)]
        lines.append("f " + " ".join(f"{i}/{k + 1}" for i, k in zip(idx, (a, b, c))))
    (tmp_path / "cube.obj").write_text("\n".join(lines) + "\n")
    (tmp_path / "cube.mtl").write_text("newmtl checker\nKd 1 1 1\nmap_Kd checker.png\n")
    Image.fromarray(texture).save(tmp_path / "checker.png")
    return glb, tmp_path / "cube.obj"


def render(v, f, textures, size=48):
    r = nr.Renderer(image_size=size, camera_mode="look_at", backend="torch")
    r.eye = nr.get_points_from_angles(2.732, 30, 35)
    return r.render(v[None], f[None], textures if isinstance(textures, nr.UVMap) else textures[None])[0][0]


def test_a_textured_glb_renders_like_its_obj_mtl_png_twin(tmp_path):
    glb, obj = textured_cube_twins(tmp_path)
    v, f, uv = nr.load_mesh(str(glb), texture_format="uv", device="cpu")
    v2, f2, uv2 = nr.load_obj(str(obj), load_texture=True, texture_format="uv", device="cpu")
    assert len(v) == 8 and torch.equal(v, v2) and torch.equal(f, f2)  # seams merged: the OBJ's 8 vertices
    assert torch.equal(uv.uvs, uv2.uvs) and torch.equal(uv.images[0], uv2.images[0])
    image, twin = render(v, f, uv), render(v2, f2, uv2)
    assert torch.equal(image, twin)
    # and the picture shows the texture: both checker colours on the cube, the background black
    pixels = image.permute(1, 2, 0).reshape(-1, 3)
    covered = pixels[pixels.sum(1) > 0.05]
    assert len(covered) > 0.3 * len(pixels)
    assert ((covered[:, 0] > covered[:, 2] + 0.2).float().mean() > 0.2 and
            (covered[:, 2] > covered[:, 0] + 0.2).float().mean() > 0.2)
    # as cubes too, equal to load_obj's
    _, _, cubes = nr.load_mesh(str(glb), texture_format="cubes", device="cpu")
    assert torch.equal(cubes, nr.load_obj(str(obj), load_texture=True, device="cpu")[2])


def test_the_bundled_textured_model_saved_as_glb_renders_as_the_obj(tmp_path):
    v, f, uv = nr.load_obj(nr.data_path("textured_display/model.obj"), load_texture=True, texture_format="uv",
                           device="cpu")
    nr.save_mesh(str(tmp_path / "display.glb"), v, f, uv)
    nr.save_mesh(str(tmp_path / "display.obj"), v, f, uv)
    v2, f2, uv2 = nr.load_mesh(str(tmp_path / "display.glb"), texture_format="uv", device="cpu")
    v3, f3, uv3 = nr.load_mesh(str(tmp_path / "display.obj"), texture_format="uv", device="cpu")
    grouped = torch.sort(uv3.material, stable=True).indices  # one glTF primitive per material
    assert len(uv3.images) > 1 and not torch.equal(grouped, torch.arange(len(f3)))
    assert torch.equal(v2, v3) and torch.equal(f2, f3[grouped]) and torch.equal(uv2.material, uv3.material[grouped])
    assert (uv2.uvs - uv3.uvs[grouped]).abs().max() <= 2 ** -24
    image, twin = render(v2, f2, uv2), render(v3, f3, uv3)
    # the images are the same PNGs; uvs differ by float32 rounding of 1 - v at most, and a Kd colour
    # (exact in MTL) is 8-bit as glTF's baseColorFactor (trimesh keeps it as uint8)
    assert (image - twin).abs().max() <= 0.5 / 255 + 1e-4
    assert image.std() > 0.05


# -- what each format gives ------------------------------------------------------------------------------

def test_ply_from_trimesh_with_vertex_and_face_colours(tmp_path):
    v, f = random_mesh(4)
    rgba = np.random.default_rng(0).integers(0, 256, (len(v), 4)).astype(np.uint8)
    trimesh.Trimesh(v.numpy(), f.numpy(), vertex_colors=rgba, process=False).export(str(tmp_path / "scan.ply"))
    _, _, colours = load(tmp_path / "scan.ply", texture_format="vertex")
    assert torch.equal(colours, torch.from_numpy(rgba[:, :3] / np.float32(255)))  # alpha dropped
    two = np.array([[255, 0, 0, 255], [0, 0, 255, 255]], dtype=np.uint8)[np.arange(len(f)) % 2]
    trimesh.Trimesh(v.numpy(), f.numpy(), face_colors=two, process=False).export(str(tmp_path / "faces.ply"))
    _, _, cubes = load(tmp_path / "faces.ply", texture_format="cubes", texture_size=1)
    assert torch.equal(cubes.reshape(-1, 3), torch.from_numpy(two[:, :3] / np.float32(255)))
    _, _, uv = load(tmp_path / "faces.ply", texture_format="uv")
    assert [im.shape for im in uv.images] == [(1, 1, 3)] * 2 and uv.material.tolist() == (np.arange(len(f)) % 2).tolist()


def test_scenes_are_concatenated_with_their_transforms(tmp_path):
    box = trimesh.creation.box()
    tetra = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
                            process=False)
    move = trimesh.transformations.rotation_matrix(0.5, [0, 0, 1])
    move[:3, 3] = [3, 0, 1]
    scene = trimesh.Scene()
    scene.add_geometry(box, geom_name="box")
    scene.add_geometry(tetra, geom_name="tetra", transform=move)
    scene.add_geometry(tetra, geom_name="tetra", node_name="again", transform=np.eye(4))  # an instance
    for fmt in ("glb", "gltf"):
        path = tmp_path / f"scene.{fmt}"
        scene.export(str(path))
        v, f = load(path)
        assert f.shape == (12 + 4 + 4, 3)
        moved = tetra.vertices @ move[:3, :3].T + move[:3, 3]
        expected = np.concatenate([box.vertices, moved, tetra.vertices]).astype(np.float32)
        assert np.allclose(np.sort(v.numpy(), 0), np.sort(expected, 0), atol=1e-6)
        soup = v[f.long()].reshape(-1, 9).numpy()  # the triangles themselves, in any vertex order
        want = np.concatenate([box.vertices[box.faces], moved[tetra.faces], tetra.vertices[tetra.faces]])
        assert np.allclose(soup, want.reshape(-1, 9).astype(np.float32), atol=1e-6)


def test_a_gltf_with_its_buffers_and_texture_in_files_beside_it(tmp_path):
    glb, obj = textured_cube_twins(tmp_path)
    files = trimesh.load_scene(str(glb)).export(file_type="gltf")  # model.gltf + .bin + .png files
    assert len(files) > 2
    for name, content in files.items():
        (tmp_path / "external" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "external" / name).write_bytes(content)
    v, f, uv = nr.load_mesh(str(tmp_path / "external" / "model.gltf"), texture_format="uv", device="cpu")
    v2, f2, uv2 = nr.load_mesh(str(glb), texture_format="uv", device="cpu")
    assert torch.equal(v, v2) and torch.equal(f, f2) and torch.equal(uv.images[0], uv2.images[0])
    (tmp_path / "external" / next(n for n in files if n.endswith(".bin"))).unlink()
    with pytest.raises(FileNotFoundError, match=r"model.gltf: a file it names is not found: gltf_buffer_0.bin$"):
        nr.load_mesh(str(tmp_path / "external" / "model.gltf"), device="cpu")


@pytest.mark.parametrize("geometry, kind", [
    (lambda: trimesh.PointCloud(np.random.default_rng(0).normal(size=(10, 3))), "points"),
    (lambda: trimesh.load_path(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 1.0]])), "lines"),
])
def test_points_lines_and_empty_files_get_one_line_errors(tmp_path, geometry, kind):
    path = tmp_path / "x.glb"
    trimesh.Scene(geometry()).export(str(path))
    with pytest.raises(ValueError, match=rf"^{path}: no triangles found \(it holds only {kind}\)$"):
        load(path)
    ply = tmp_path / "cloud.ply"
    trimesh.PointCloud(np.eye(3)).export(str(ply))
    with pytest.raises(ValueError, match=rf"^{ply}: no triangles found \(it holds only points\)$"):
        load(ply)
    for fmt in ("ply", "stl", "off", "glb", "gltf"):
        (tmp_path / f"empty.{fmt}").write_bytes(b"")
        with pytest.raises(ValueError, match=rf"^{tmp_path / f'empty.{fmt}'}: the file is empty$"):
            load(tmp_path / f"empty.{fmt}")


def test_a_mesh_beside_points_loads_with_one_notice(tmp_path):
    scene = trimesh.Scene([trimesh.creation.box(), trimesh.PointCloud(np.eye(3))])
    scene.export(str(tmp_path / "mixed.glb"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v, f = load(tmp_path / "mixed.glb")
    assert f.shape == (12, 3)
    assert one_line_warnings(caught, tmp_path / "mixed.glb") == [
        f"{tmp_path / 'mixed.glb'}: trimesh skipped part of the file: PointCloud (not triangles)"]


@pytest.mark.parametrize("fmt, asked, hint", [
    ("stl", "uv", "no texture or material colours; the mesh is 0.5 grey"),
    ("off", "cubes", "no texture, material colours or vertex colours; the mesh is 0.5 grey"),
    ("ply", "vertex", "no per-vertex colours; the mesh is 0.5 grey"),
])
def test_a_mesh_without_colours_is_grey_with_one_notice(tmp_path, fmt, asked, hint):
    v, f = random_mesh(5)
    path = tmp_path / f"plain.{fmt}"
    nr.save_mesh(str(path), v, f)
    with pytest.warns(NoTextureWarning) as caught:
        _, _, t = load(path, texture_format=asked)
    assert one_line_warnings(caught, path) == [f"{path}: {hint}"]
    values = t.images[0] if asked == "uv" else t
    assert torch.equal(values, torch.full_like(values, 0.5))


def test_obj_goes_through_load_obj_unchanged(tmp_path):
    path = nr.data_path("textured_display/model.obj")
    for fmt in ("cubes", "uv"):
        a = nr.load_mesh(path, texture_format=fmt, device="cpu")
        b = nr.load_obj(path, load_texture=True, texture_format=fmt, device="cpu")
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        if fmt == "cubes":
            assert torch.equal(a[2], b[2])
        else:
            assert torch.equal(a[2].uvs, b[2].uvs) and all(torch.equal(x, y) for x, y in zip(a[2].images, b[2].images))
    v, f = nr.load_mesh(nr.data_path("teapot.obj"), device="cpu")
    assert torch.equal(v, nr.load_obj(nr.data_path("teapot.obj"), device="cpu")[0])
    # an OBJ without mtllib: grey with a notice (load_obj refuses load_texture=True there)
    (tmp_path / "plain.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.warns(NoTextureWarning):
        nr.load_mesh(str(tmp_path / "plain.obj"), texture_format="cubes", device="cpu")
    (tmp_path / "rgb.obj").write_text("v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0\nf 1 2 3\n")
    _, _, colours = load(tmp_path / "rgb.obj", texture_format="vertex")  # v x y z r g b; none: grey
    assert colours.tolist() == [[1, 0, 0], [0, 1, 0], [0.5, 0.5, 0.5]]


# -- bad input -------------------------------------------------------------------------------------------

def test_bad_paths_formats_and_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="mesh file not found"):
        nr.load_mesh(str(tmp_path / "nope.ply"))
    (tmp_path / "m.xyz3").write_text("x")
    with pytest.raises(ValueError, match=r"m.xyz3: '.xyz3' is not a mesh format tritonnmr reads \(it reads .obj, "):
        nr.load_mesh(str(tmp_path / "m.xyz3"))
    (tmp_path / "noext").write_text("x")
    with pytest.raises(ValueError, match="no file extension"):
        nr.load_mesh(str(tmp_path / "noext"))
    v, f = random_mesh(6)
    nr.save_mesh(str(tmp_path / "m.ply"), v, f)
    with pytest.raises(ValueError, match="texture_format must be one of uv, cubes, vertex"):
        nr.load_mesh(str(tmp_path / "m.ply"), texture_format="atlas")
    with pytest.raises(ValueError, match="texture_wrapping"):
        nr.load_mesh(str(tmp_path / "m.ply"), texture_format="uv", texture_wrapping="CLAMP_TO_BORDER")
    (tmp_path / "M.PLY").write_bytes((tmp_path / "m.ply").read_bytes())  # extensions in any case
    assert torch.equal(load(tmp_path / "M.PLY")[0], v)
    uvmap = nr.UVMap(torch.zeros(len(f), 3, 2), torch.zeros(len(f), dtype=torch.int64), [torch.rand(2, 2, 3)])
    for fmt in ("ply", "stl", "off"):
        with pytest.raises(ValueError, match=rf"^textures: {fmt.upper()} files hold no textures"):
            nr.save_mesh(str(tmp_path / f"t.{fmt}"), v, f, uvmap)
    with pytest.raises(ValueError, match="^textures: STL files hold no colours"):
        nr.save_mesh(str(tmp_path / "t.stl"), v, f, torch.rand(len(v), 3))
    with pytest.raises(ValueError, match=r"save_mesh writes .obj, .ply, .stl, .off, .glb, .gltf; not .dae"):
        nr.save_mesh(str(tmp_path / "t.dae"), v, f)
    with pytest.raises(ValueError, match="vertices must be finite"):
        nr.save_mesh(str(tmp_path / "t.glb"), v * float("nan"), f)
    with pytest.raises(ValueError, match=r"per-vertex colours\) must be a float tensor of shape \(V=9, 3\)"):
        nr.save_mesh(str(tmp_path / "t.ply"), v, f, torch.rand(3, 3))
    assert not any(p.name.startswith("t.") for p in tmp_path.iterdir())  # nothing half-written


def test_without_the_extra_a_one_line_message_names_the_package(tmp_path, monkeypatch):
    v, f = random_mesh(7)
    nr.save_mesh(str(tmp_path / "m.ply"), v, f)
    monkeypatch.setitem(sys.modules, "trimesh", None)  # import trimesh now fails
    with pytest.raises(ImportError) as e:
        nr.load_mesh(str(tmp_path / "m.ply"))
    assert str(e.value) == f"reading {tmp_path / 'm.ply'} needs trimesh: pip install 'tritonnmr[io]' (or: pip install trimesh)"
    with pytest.raises(ImportError, match=r"^writing .*m.glb needs trimesh: pip install 'tritonnmr\[io\]'"):
        nr.save_mesh(str(tmp_path / "m.glb"), v, f)
    (tmp_path / "m.abc").write_text("x")
    with pytest.raises(ValueError, match=r"it reads .obj, and with trimesh \(pip install 'tritonnmr\[io\]'\) .ply"):
        nr.load_mesh(str(tmp_path / "m.abc"))
    nr.save_mesh(str(tmp_path / "m.obj"), v, f)  # OBJ needs nothing
    assert torch.equal(load(tmp_path / "m.obj")[0], v)


def test_trimesh_logs_and_warnings_never_reach_the_user(tmp_path, caplog):
    v, f = random_mesh(8)
    nr.save_mesh(str(tmp_path / "m.stl"), v, f)
    data = bytearray((tmp_path / "m.stl").read_bytes())
    data[84:96] = b"\xff" * 12  # the first face normal: NaN, which trimesh logs about
    (tmp_path / "n.stl").write_bytes(bytes(data))
    logging.getLogger().addHandler(handler := logging.StreamHandler(stream := io.StringIO()))
    try:
        with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load(tmp_path / "n.stl")
            with pytest.raises(ValueError):
                (tmp_path / "bad.glb").write_bytes(b"glTF" + b"\x00" * 30)
                load(tmp_path / "bad.glb")
    finally:
        logging.getLogger().removeHandler(handler)
    assert not [r for r in caplog.records if r.name.startswith("trimesh")] and stream.getvalue() == ""
    one_line_warnings(caught, tmp_path)
    assert logging.getLogger("trimesh").level == logging.NOTSET and logging.getLogger("trimesh").propagate


def test_nothing_is_logged_from_a_fresh_process(tmp_path):
    # trimesh logs while it imports and reads: with the application's logging at DEBUG, none of it shows
    v, f = random_mesh(9)
    nr.save_mesh(str(tmp_path / "m.glb"), v, f)
    code = ("import logging, warnings; logging.basicConfig(level=logging.DEBUG); warnings.simplefilter('error');"
            f"import tritonnmr as nr; print(nr.load_mesh({str(tmp_path / 'm.glb')!r}, device='cpu')[1].shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "torch.Size([16, 3])\n" and done.stderr == "", done.stderr


# -- the command line ------------------------------------------------------------------------------------

def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_render_takes_a_ply_scan_and_a_glb_asset(tmp_path, capsys):
    v, f = random_mesh(10, num_vertices=12, num_faces=20)
    red = torch.tensor([1.0, 0.1, 0.1]).expand(len(v), 3)
    nr.save_mesh(str(tmp_path / "scan.ply"), v, f, red)
    glb, _ = textured_cube_twins(tmp_path)
    common = ["--image-size", "32", "--frames", "2", "--backend", "torch"]
    for mesh, check in [(tmp_path / "scan.ply", lambda p: (p[..., 0] > 2 * p[..., 1] + 20).mean() > 0.1),
                        (glb, lambda p: (p[..., 0] > p[..., 2] + 40).mean() > 0.05 and (p[..., 2] > p[..., 0] + 40).mean() > 0.05)]:
        out = tmp_path / f"out_{mesh.suffix[1:]}"
        code, _, err = run_cli(["render", str(mesh), "--out", str(out)] + common, capsys)
        assert code == 0 and err == ""
        picture = np.asarray(Image.open(out / "render.png")).astype(np.int16)
        assert check(picture)  # the vertex colours / the checker texture show


def test_a_mesh_is_written_where_out_names_one(tmp_path, capsys):
    v, f = random_mesh(11)
    nr.save_mesh(str(tmp_path / "start.stl"), v, f)
    common = ["--image-size", "32", "--iterations", "2", "--backend", "torch", "--frame-every", "1"]
    code, stdout, err = run_cli(["fit", "shape", "--mesh", str(tmp_path / "start.stl"),
                                 "--out", str(tmp_path / "fit" / "fitted.glb")] + common, capsys)
    assert code == 0 and "mesh fitted.glb" in stdout, err
    fitted, faces = nr.load_mesh(str(tmp_path / "fit" / "fitted.glb"), device="cpu")
    assert torch.equal(faces, f) and sorted(os.listdir(tmp_path / "fit")) == \
        ["fitted.glb", "metrics.json", "optimization.gif", "result.gif"]
    code, _, _ = run_cli(["fit", "texture", "--out", str(tmp_path / "tex" / "painted.glb")] + common, capsys)
    _, _, cubes = nr.load_mesh(str(tmp_path / "tex" / "painted.glb"), texture_format="cubes", device="cpu")
    assert code == 0 and cubes.std() > 0.01  # the painted texture, through its atlas
    for argv, problem in [(["fit", "texture", "--out", str(tmp_path / "no" / "t.ply")],
                           "the mesh has textures, which .ply files do not hold; use .obj, .glb or .gltf"),
                          (["fit", "camera", "--out", str(tmp_path / "no" / "c.glb")], "this command writes no mesh"),
                          (["render", str(tmp_path / "missing.ply"), "--out", str(tmp_path / "no")], "mesh not found")]:
        code, _, err = run_cli(argv + ["--image-size", "32", "--backend", "torch"], capsys)
        assert code == 2 and err.count("\n") == 1 and problem in err, err
    assert not (tmp_path / "no").exists()  # refused before anything was made


def test_the_command_line_without_the_extra_or_with_a_broken_file(tmp_path, capsys, monkeypatch):
    v, f = random_mesh(12)
    nr.save_mesh(str(tmp_path / "m.ply"), v, f)
    (tmp_path / "broken.glb").write_bytes((tmp_path / "m.ply").read_bytes()[:40])
    code, _, err = run_cli(["render", str(tmp_path / "broken.glb"), "--out", str(tmp_path / "no")], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"tritonnmr: error: {tmp_path / 'broken.glb'}: ")
    monkeypatch.setitem(sys.modules, "trimesh", None)
    for argv in (["render", str(tmp_path / "m.ply"), "--out", str(tmp_path / "no")],
                 ["fit", "shape", "--out", str(tmp_path / "no" / "x.glb"), "--iterations", "1"]):
        code, _, err = run_cli(argv + ["--image-size", "32", "--backend", "torch"], capsys)
        assert code == 2 and err.count("\n") == 1 and "needs trimesh: pip install 'tritonnmr[io]'" in err, err
    assert not (tmp_path / "no").exists()


def test_notices_reach_the_command_line_in_one_line(tmp_path, capsys):
    (tmp_path / "bare.obj").write_text("mtllib\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    # render loads textures: the bare mtllib is an error there; fit only needs the geometry: a note
    code, _, err = run_cli(["render", str(tmp_path / "bare.obj"), "--out", str(tmp_path / "r"),
                            "--image-size", "16", "--frames", "1", "--backend", "torch"], capsys)
    assert code == 2 and err == f"tritonnmr: error: {tmp_path / 'bare.obj'}:1: mtllib needs a file name\n"
    code, _, err = run_cli(["fit", "shape", "--mesh", str(tmp_path / "bare.obj"), "--out", str(tmp_path / "f"),
                            "--image-size", "16", "--iterations", "1", "--backend", "torch"], capsys)
    assert code == 0 and err.startswith(f"tritonnmr: note: {tmp_path / 'bare.obj'}:1: mtllib without a name "
                                        f"skipped: materials are not read\n")  # then the progress bar


def test_reconstruct_predict_writes_its_mesh_where_out_names_one(tmp_path, capsys):
    data, run = str(tmp_path / "data"), str(tmp_path / "run")
    assert main(["reconstruct", "make-data", "--objects-per-class", "2", "--test-objects", "1",
                 "--categories", "airplane", "--out", data]) == 0
    assert main(["reconstruct", "train", "--model", "mesh", "--data", data, "--out", run, "--quick",
                 "--iterations", "1", "--batch-size", "2"]) == 0
    y, x = np.mgrid[0:64, 0:64]
    disc = ((x - 32) ** 2 + (y - 32) ** 2 < 20 ** 2).astype(np.uint8) * 255
    Image.fromarray(np.dstack([disc, disc // 2, disc, disc])).save(tmp_path / "in.png")  # RGBA
    capsys.readouterr()
    out = tmp_path / "pred" / "plane.ply"
    code, stdout, _ = run_cli(["reconstruct", "predict", str(tmp_path / "in.png"), "--checkpoint",
                               os.path.join(run, "mesh.pt"), "--out", str(out), "--image-size", "16"], capsys)
    v, f = nr.load_mesh(str(out), normalization=False, device="cpu")
    assert code == 0 and stdout.startswith(f"wrote {out} ({len(v)} vertices, {len(f)} faces)")
    assert sorted(os.listdir(out.parent)) == ["plane.ply", "turntable.gif"]
