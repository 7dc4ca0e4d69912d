"""The Python examples of the README and of the docs/ pages run as written (on the CPU, ``.cuda()``
would need a GPU: none is used)."""
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCKS = [(page.name, block) for page in PAGES
          for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)]
# blocks that show an interface rather than a program (class Shader: ...) or read files that do not exist
RUNNABLE = [(name, b) for name, b in BLOCKS if "class Shader:" not in b and '"model.obj"' not in b]


def test_the_readme_has_runnable_examples():
    assert len(RUNNABLE) >= 4


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_example_runs(index, monkeypatch, capsys):
    name, code = RUNNABLE[index]
    namespace = {}
    exec(compile(code, f"{name} example {index}", "exec"), namespace)
    tensors = [v for v in namespace.values() if torch.is_tensor(v) and v.is_floating_point()]
    assert tensors and all(torch.isfinite(t).all() for t in tensors)


def test_the_readme_table_of_runs_is_the_committed_measurement():
    """README.md's table of runs (and the line saying where it was measured) is what
    benchmarks/readme_figures.py makes from its committed figures.json: a figure cannot drift."""
    import json

    from benchmarks import readme_figures
    figures = json.loads(Path(readme_figures.RESULTS).read_text())
    readme = (ROOT / "README.md").read_text()
    assert readme_figures.caption(figures) in readme.replace("\n", " ")
    assert readme_figures.table(figures) in readme
    assert figures["demo"]["iou_final"] > 0.99 and figures["fits"]["fit camera"]["iou_final"] > 0.9
