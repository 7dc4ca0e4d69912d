"""Truncated and corrupted bytes of every format load_mesh reads through trimesh (hypothesis).

Each example takes a small valid file (made by trimesh or save_mesh here), damages it (cut short,
bytes overwritten, inserted or deleted, digits changed) and loads it: the result is either a valid mesh
(finite vertices, face indices in range, textures of the right shape) or a one-line ValueError naming
the file (FileNotFoundError where a glTF's buffer uri became a file name); every warning is one line naming the file; nothing reaches the logging handlers; no example
takes longer than the deadline (no hang).
"""
import datetime
import logging
import os
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tritonnmr as nr

trimesh = pytest.importorskip("trimesh")  # the io extra, which install.sh installs

# a fixed number of examples (TRITONNMR_FUZZ_EXAMPLES for a longer search), each bounded in time
SETTINGS = settings(max_examples=int(os.environ.get("TRITONNMR_FUZZ_EXAMPLES", 120)),
                    deadline=datetime.timedelta(seconds=10), database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _sources(directory):
    """{name: bytes} of small valid files: every format, binary and text, with and without textures."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn(7, 3, generator=g)
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 5, 2], [3, 4, 5], [4, 6, 5]], dtype=torch.int32)
    uvmap = nr.UVMap(torch.rand(5, 3, 2, generator=g), torch.tensor([0, 0, 1, 1, 1]),
                     [torch.rand(4, 5, 3, generator=g), torch.rand(1, 1, 3, generator=g)])
    colours = torch.rand(7, 3, generator=g)
    files = {}
    for name, textures in [("colours.ply", colours), ("plain.stl", None), ("plain.off", None),
                           ("textured.glb", uvmap), ("textured.gltf", uvmap), ("colours.glb", colours)]:
        nr.save_mesh(os.path.join(directory, name), v, f, textures)
        with open(os.path.join(directory, name), "rb") as fh:
            files[name] = fh.read()
    mesh = trimesh.Trimesh(v.numpy(), f.numpy(), process=False)
    files["ascii.ply"] = trimesh.exchange.ply.export_ply(mesh, encoding="ascii")
    files["ascii.stl"] = trimesh.exchange.stl.export_stl_ascii(mesh).encode()
    return files


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return _sources(str(tmp_path_factory.mktemp("sources")))


@st.composite
def damaged(draw, data):
    """``data`` cut short, or with bytes overwritten, inserted, deleted or digits changed."""
    data = bytearray(data)
    how = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete", "digits"]))
    at = draw(st.integers(0, len(data) - 1))
    if how == "truncate":
        return bytes(data[:at])
    if how == "overwrite":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif how == "delete":
        del data[at:at + draw(st.integers(1, 16))]
    else:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = ord(draw(st.sampled_from("0123456789-.e")))
    return bytes(data)


def check_loaded(out, texture_format):
    v, f = out[0], out[1]
    assert v.dtype == torch.float32 and f.dtype == torch.int32 and v.shape[1:] == (3,) and f.shape[1:] == (3,)
    assert torch.isfinite(v).all() and len(f) > 0 and f.min() >= 0 and f.max() < len(v)
    if texture_format == "vertex":
        assert out[2].shape == v.shape and torch.isfinite(out[2]).all()
    elif texture_format == "cubes":
        assert out[2].shape == (len(f), 2, 2, 2, 3) and torch.isfinite(out[2]).all()
    elif texture_format == "uv":
        assert out[2].uvs.shape == (len(f), 3, 2) and torch.isfinite(out[2].uvs).all()


@SETTINGS
@given(st.data())
def test_damaged_files_load_or_give_one_line_errors(tmp_path, sources, caplog, data):
    name = data.draw(st.sampled_from(sorted(sources)))
    path = tmp_path / name
    path.write_bytes(data.draw(damaged(sources[name])))
    texture_format = data.draw(st.sampled_from([None, "uv", "cubes", "vertex"]))
    caplog.clear()
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = nr.load_mesh(str(path), texture_format=texture_format, texture_size=2, device="cpu")
        except (ValueError, FileNotFoundError) as e:  # FileNotFoundError: a glTF uri damaged into a file name
            message = str(e)
            assert "\n" not in message and "\r" not in message and message.startswith(f"{path}: "), message
            assert len(message) < 400, message
        else:
            check_loaded(out, texture_format)
    for w in caught:
        assert "\n" not in str(w.message) and str(w.message).startswith(f"{path}: "), str(w.message)
    assert not [r for r in caplog.records if r.name.startswith("trimesh")]


def test_the_damage_is_seen(tmp_path, sources):
    """The fuzz's premise: cutting each source in half makes it unreadable, with a one-line error."""
    for name, content in sources.items():
        path = tmp_path / name
        path.write_bytes(content[:len(content) // 2])
        with pytest.raises(ValueError, match=rf"^{path}: "):
            nr.load_mesh(str(path), device="cpu")
        path.write_bytes(content)
        v, f = nr.load_mesh(str(path), device="cpu")
        assert v.shape == (7, 3) and f.shape == (5, 3) and np.isfinite(v.numpy()).all()
