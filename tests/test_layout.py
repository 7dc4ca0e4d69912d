"""The package's folders are its design: the core library imports downward only, and nothing in it
imports the applications (``tritonnmr/apps``) or the measurement layer (``tritonnmr/bench``); no two
modules import each other, directly or around a circle.

Imports are read from the source (every ``import`` and ``from ... import``, function-level ones
included; those under ``if TYPE_CHECKING:`` are for type checkers only and are skipped), so an
import that only runs in some call still counts.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tritonnmr"
LAYERS = {"core": 0, "bench": 1, "apps": 2}  # a module may import its own layer and those below


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("apps", "bench") else "core"


def _skipped(tree):
    """The nodes under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return skipped


def imports(module):
    """The tritonnmr modules that ``module`` imports, with the line of each import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skipped = _skipped(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = {}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from X import Y" imports module X.Y when there is one, else a name of X
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # "import a.b.c" of a name: its module
                target = target.rpartition(".")[0]
            if target.startswith("tritonnmr") and target != module:
                found.setdefault(target, node.lineno)
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_the_layers_exist():
    assert {layer(m) for m in MODULES} == set(LAYERS)
    assert sum(layer(m) == "core" for m in MODULES) > 20


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_a_higher_layer(module):
    upward = [f"line {line}: {target} ({layer(target)})" for target, line in GRAPH[module].items()
              if LAYERS[layer(target)] > LAYERS[layer(module)]]
    assert not upward, f"{module} ({layer(module)}) imports upward: " + "; ".join(upward)


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    cycles = _cycles({m: set(targets) for m, targets in GRAPH.items()})
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
