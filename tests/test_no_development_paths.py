"""What replab shows a user never names the development folder (``../shared``): no help
text, bundled recipe, template or study module (which writes the study reports) does."""

from __future__ import annotations

from pathlib import Path

import pytest

import replab
from replab.cli import main

PACKAGE = Path(replab.__file__).parent
COMMANDS = [
    "run",
    "sweep",
    "study",
    "tune",
    "recipes",
    "report",
    "compare",
    "datasets",
    "analyze",
    "plugins",
]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_no_help_names_the_development_folder(command, capsys):
    with pytest.raises(SystemExit):
        main([*([command] if command else []), "--help"])
    out = capsys.readouterr().out
    assert "usage: replab" in out and "../shared" not in out and "STUDIES.md" not in out


def test_no_file_the_product_ships_names_it():
    shipped = [p for ext in ("*.py", "*.yaml", "*.j2") for p in PACKAGE.rglob(ext)]
    assert len(shipped) > 100
    named = [
        str(p.relative_to(PACKAGE))
        for p in shipped
        if "../shared" in (text := p.read_text(encoding="utf-8")) or "STUDIES.md" in text
    ]
    assert named == []


def test_the_readme_names_no_development_folder():
    """The README speaks of the project alone: the tests' data folder is "a data folder set by
    REPLAB_DATA", never the contributors' own path."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in readme and "STUDIES.md" not in readme
