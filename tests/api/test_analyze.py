"""``replab analyze`` / ``replab.analyze``: the analysis of encoders trained elsewhere — a
hand-written CNN in memory, the same CNN as a TorchScript file, a run folder with its
decoder — and the clear errors for what cannot be analysed."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import replab
from replab.cli import main
from replab.data import load_splits
from replab.errors import ConfigError

SMALL = ["analysis.tsne_sample=300"]


class SmallCNN(nn.Module):
    """What a user writes in a notebook: 8x8 digits to 16-d vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8 * 4 * 4, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def trained_cnn() -> SmallCNN:
    """Trained with a plain PyTorch loop (a linear head, cross-entropy) on the digits' training
    split, as a user would before handing the encoder to replab."""
    torch.manual_seed(0)
    splits = load_splits("digits", seed=0)
    x, y = splits.train.images.float() / 255, splits.train.labels
    cnn, head = SmallCNN(), nn.Linear(16, 10)
    opt = torch.optim.Adam([*cnn.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(15):
        for i in range(0, len(x), 64):
            loss = nn.functional.cross_entropy(head(cnn(x[i : i + 64])), y[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return cnn


def test_a_cnn_trained_in_plain_pytorch_gets_probes_knn_and_a_tsne_map(tmp_path):
    run = replab.analyze(trained_cnn(), "digits", *SMALL, runs_dir=tmp_path)
    m = run.metrics
    # measured (seed 0): linear probe 0.858, MLP probe 0.916, latent kNN 0.972
    assert m["linear_probe.test_accuracy"] >= 0.75 and m["probe.test_accuracy"] >= 0.8
    assert m["latent.knn_accuracy"] >= 0.85 and "latent.tsne_trustworthiness" in m
    names = [f["name"] for f in summary(run.dir)["figures"]]
    assert any("t-SNE" in n for n in names) and any("linear probe" in n for n in names)
    html = run.report.read_text()
    assert "linear_probe.test_accuracy" in html and "hover-map" in html
    assert summary(run.dir)["epochs"] == 0 and run.spec.task.name == "analyze"


def test_a_torchscript_file_through_the_cli(tmp_path, capsys):
    path = tmp_path / "cnn.ts"
    torch.jit.save(torch.jit.script(trained_cnn()), str(path))
    runs = tmp_path / "runs"
    assert main(["analyze", str(path), "--data", "digits", *SMALL, "--runs-dir", str(runs)]) == 0
    (folder,) = runs.iterdir()
    assert folder.name.startswith("analyze-cnn-")
    assert summary(folder)["metrics"]["probe.test_accuracy"] >= 0.8
    assert "report:" in capsys.readouterr().out


def test_a_torch_export_program(tmp_path):
    cnn = trained_cnn().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(cnn, (torch.rand(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    path = tmp_path / "cnn.pt2"
    torch.export.save(program, str(path))
    run = replab.analyze(path, "digits", *SMALL, runs_dir=tmp_path / "runs")
    assert run.dir.name.startswith("analyze-cnn-")
    assert run.metrics["probe.test_accuracy"] >= 0.8


def test_a_run_folder_brings_its_decoder(tmp_path):
    trained = replab.run(
        "digits-autoencoder",
        "trainer.epochs=2",
        "probe.enabled=false",
        "analysis.enabled=false",
        runs_dir=tmp_path / "runs",
    )
    run = replab.analyze(trained.dir, "digits", *SMALL, runs_dir=tmp_path / "analysed")
    m = run.metrics
    assert {"test.mae", "test.psnr", "linear_probe.test_accuracy"} <= set(m)
    names = [f["name"] for f in summary(run.dir)["figures"]]
    assert any("reconstructions" in n for n in names)
    assert any("interpolation" in n for n in names)


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: p.write_bytes(b"not torchscript"), "is not a TorchScript file nor a torch"),
        (lambda p: None, "neither a run folder nor a file"),
    ],
)
def test_what_cannot_be_analysed_is_one_clear_error(tmp_path, capsys, make, needle):
    path = tmp_path / "enc.ts"
    make(path)
    assert main(["analyze", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("replab: error:") and needle in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_an_encoder_for_other_images_is_named_before_any_probe(tmp_path):
    wrong = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())  # wants colour images
    with pytest.raises(ConfigError, match=r"cannot take this dataset's images \(2, 1, 8, 8\)"):
        replab.analyze(wrong, "digits", runs_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    assert json.loads((folder / "status.json").read_text())["state"] == "failed"
