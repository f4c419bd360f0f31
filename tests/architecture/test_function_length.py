"""No function or method in replab/ is longer than 80 lines.

Every ``def`` and ``async def`` in replab/ (module level, in a class or nested) is read with
``ast``; its length is ``end_lineno - lineno + 1``, from the ``def`` line to its last line,
docstring and comments inside it included and decorators excluded (``lineno`` of a decorated
function is its ``def`` line). A longer function does more than one thing: split it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import replab

ROOT = Path(replab.__file__).parent
LIMIT = 80


def too_long() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None  # ast.parse sets it on every node
            lines = node.end_lineno - node.lineno + 1
            if lines > LIMIT:
                rel = path.relative_to(ROOT.parent).as_posix()
                found.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    return sorted(found)


def test_no_function_is_longer_than_80_lines():
    found = too_long()
    assert not found, f"functions over {LIMIT} lines (split them):\n" + "\n".join(found)


def test_the_checker_catches_a_long_function(tmp_path, monkeypatch):
    """The test above can fail: an 81-line function is reported (an 80-line one, decorated,
    and a method of 80 lines are not)."""
    package = tmp_path / "replab"
    (package / "sub").mkdir(parents=True)

    def body(lines: int, indent: str) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(lines))

    # the def line and 80 more: 81 lines
    (package / "sub" / "bad.py").write_text(f"import os\n\n\ndef long_one():\n{body(80, '    ')}")
    # 80 lines each: a decorated function (its decorator not counted) and a method
    (package / "fine.py").write_text(
        f"@staticmethod\ndef at_limit():\n{body(79, '    ')}\n\n"
        f"class C:\n    def method(self):\n{body(79, '        ')}"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", package)
    assert too_long() == ["replab/sub/bad.py:4 long_one (81 lines)"]
