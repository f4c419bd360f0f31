"""The notebooks in examples/ run headless from top to bottom (nbclient, a real kernel), in a
scratch folder, and their last cells show what they promise. Outputs are never committed:
the files in git must hold none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def execute(name: str, folder: Path):
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        f"{name} is committed with outputs; clear them"
    )
    shutil.copy(EXAMPLES / name, folder / name)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return notebook


def text_of(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.slow  # a kernel start and a training run each; about a minute together
def test_your_own_encoder_notebook(tmp_path):
    out = text_of(execute("your-own-encoder.ipynb", tmp_path))
    assert "probe_linear.test_accuracy" in out and "<iframe srcdoc=" in out
    assert any(p.name.startswith("analyze-SmallCNN") for p in (tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_your_own_images_notebook(tmp_path):
    out = text_of(execute("your-own-images.ipynb", tmp_path))
    assert "1797 images in 10 classes" in out
    assert "probe.test_accuracy" in out and "<iframe srcdoc=" in out
    assert sum(1 for _ in (tmp_path / "my-images").rglob("*.png")) == 1797
