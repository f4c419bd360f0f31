"""The package's imports point down the stack, never up or sideways (see replab/__init__.py).

Every ``import replab.x`` / ``from replab.x import ...`` in replab/ (module level or inside
a function) is read with ``ast`` and checked against the layer order below; a new module in
an unknown place fails too, so the order is kept in one list here and in the package
docstring, which this test also compares against.
"""

from __future__ import annotations

import ast
from pathlib import Path

import replab

ROOT = Path(replab.__file__).parent

# Top to bottom. A layer may import the layers below it and the base modules; the four
# packages at the bottom are peers that do not import each other.
LAYERS = [
    "cli",
    "api",
    "studies",
    "search",
    "runs",
    "reporting",
    "evaluation",
    "training",
    "tasks",
    ("models", "objectives", "data", "augment"),
]
# Usable from every layer; among themselves only spec <- recipes (errors, io, registry and
# spec import nothing above them, and recipes reads recipes into specs).
BASE = {
    "spec": {"errors"},
    "registry": {"errors"},
    "errors": set(),
    "io": {"errors"},
    "recipes": {"spec", "errors"},
}


def rank(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part == layer or (isinstance(layer, tuple) and part in layer):
            return len(LAYERS) - i
    raise AssertionError(f"replab.{part} is in no layer: add it to LAYERS or BASE")


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = (
                [node.module]
                if node.module != "replab"
                else [f"replab.{a.name}" for a in node.names]
            )
            found += [(node.lineno, n) for n in names if n.startswith("replab.")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("replab.")]
    return found


def top(module: str) -> str:
    return module.split(".")[1]


def violations() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        here = rel.parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for line, module in imports(path):
            there = top(module)
            if there == "__version__" or there == here:
                continue
            if here in BASE:
                ok = there in BASE[here]
            elif there in BASE:
                ok = True
            else:
                ok = rank(there) < rank(here)
            if not ok:
                bad.append(f"replab/{rel}:{line} ({here}) imports {module} ({there})")
    return bad


def test_every_import_points_down_the_stack():
    assert violations() == []


def test_the_package_docstring_draws_the_same_stack():
    doc = " ".join(replab.__doc__.split())
    order = " -> ".join(layer if isinstance(layer, str) else ", ".join(layer) for layer in LAYERS)
    assert order in doc, f"replab/__init__.py should say: {order}"
    for name in BASE:
        assert f"``{name}``" in doc


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """The test above can fail: an evaluation module importing the runs layer is reported."""
    fake = tmp_path / "evaluation"
    fake.mkdir()
    (fake / "bad.py").write_text("def f():\n    from replab.runs import rundir\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations() == ["replab/evaluation/bad.py:2 (evaluation) imports replab.runs (runs)"]
