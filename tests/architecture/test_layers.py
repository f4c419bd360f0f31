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


def absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module an import names, relative imports (``from ..runs import x``) resolved
    against the package of ``path`` (a file under ROOT)."""
    if node.level == 0:
        return node.module or ""
    package = ["replab", *path.relative_to(ROOT).parent.parts]
    if node.level > len(package):
        raise AssertionError(f"{path}:{node.lineno}: a relative import above the package")
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = absolute(node, path)
            names = (
                [module]
                if module != "replab" and (node.level == 0 or node.module)
                else [f"{module}.{a.name}" for a in node.names]
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


def test_a_relative_import_up_the_stack_is_caught(tmp_path, monkeypatch):
    """Relative imports are resolved, not skipped: ``from ..runs import rundir`` in the
    evaluation layer and ``from .. import cli`` in the training layer point up the stack."""
    fake = tmp_path / "evaluation"
    fake.mkdir()
    (fake / "bad.py").write_text("from ..runs import rundir\nfrom . import metrics\n")
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "worse.py").write_text("from .. import cli\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations() == [
        "replab/evaluation/bad.py:1 (evaluation) imports replab.runs (runs)",
        "replab/training/worse.py:1 (training) imports replab.cli (cli)",
    ]


# Where a module's private names (``_name``) may not be imported from: every Python file of
# the package, its benchmarks and its tests. A name another module needs is public.
CHECKED = [ROOT, ROOT.parent / "benchmarks", ROOT.parent / "tests"]


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def ours(parts: list[str]) -> list[str]:
    """The module path's parts where it is this project's (replab's, or a benchmark's or
    test's own module, imported by its bare name); a library's own layout is its business."""
    return parts if parts[0] == "replab" or len(parts) == 1 else []


def private_imports(folders: list[Path]) -> list[str]:
    """Each import of a private name or a private module, as ``path:line name``."""
    bad = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    parts = ours((node.module or "").split("."))
                    names = [a.name for a in node.names]
                    hits = [n for n in [*parts, *names] if private(n)]
                elif isinstance(node, ast.Import):
                    hits = [p for a in node.names for p in ours(a.name.split(".")) if private(p)]
                else:
                    continue
                bad += [f"{path.relative_to(folder.parent)}:{node.lineno} {h}" for h in hits]
    return bad


def test_no_module_imports_another_modules_private_names():
    assert private_imports(CHECKED) == []


def test_the_private_import_check_can_fail(tmp_path):
    """A planted import of a private helper, a private module and a private
    name in a multi-line import are each reported; dunders and public names are not."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(
        "from __future__ import annotations\n"
        # split so that a grep for private imports over the tree finds none in this file
        "from replab.runs.evaluate import "
        "_helper\n"
        "import "
        "_common\n"
        "from replab.search.tune import (\n    TuneResult,\n    _surplus,\n)\n"
        "from replab import __version__\n"
    )
    assert private_imports([tmp_path / "pkg"]) == [
        "pkg/bad.py:2 _helper",
        "pkg/bad.py:3 _common",
        "pkg/bad.py:4 _surplus",
    ]
