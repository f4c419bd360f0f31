"""Every ``log`` parameter in replab is the one progress callback, typed ``replab.io.Log``
(a line of text in, nothing out), so a caller can pass the same function at every layer."""

from __future__ import annotations

import ast
from pathlib import Path

import replab

ROOT = Path(replab.__file__).parent
TYPED = {"Log", "Log | None"}


def untyped(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                shown = ast.unparse(arg.annotation) if arg.annotation else "no annotation"
                if arg.arg == "log" and shown not in TYPED:
                    bad.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {shown}")
    return bad


def test_every_log_parameter_is_typed_log():
    assert untyped(ROOT) == []


def test_the_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text(
        "def a(log=print): ...\ndef b(log: bool = False): ...\ndef c(x, log: Log): ...\n"
    )
    assert untyped(tmp_path) == ["m.py:1 a: no annotation", "m.py:2 b: bool"]
