"""The README's Python examples run as written (on the CPU, ``.cuda()`` would need a GPU: none is used)."""
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
# blocks that show an interface rather than a program (class Shader: ...) or read files that do not exist
RUNNABLE = [b for b in BLOCKS if "class Shader:" not in b and '"model.obj"' not in b]


def test_the_readme_has_runnable_examples():
    assert len(RUNNABLE) >= 4


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_example_runs(index, monkeypatch, capsys):
    code = RUNNABLE[index]
    namespace = {}
    exec(compile(code, f"README.md example {index}", "exec"), namespace)
    tensors = [v for v in namespace.values() if torch.is_tensor(v) and v.is_floating_point()]
    assert tensors and all(torch.isfinite(t).all() for t in tensors)
