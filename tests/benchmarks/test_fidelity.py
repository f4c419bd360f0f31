"""benchmarks/fidelity.py: which figures it re-measures, the rule for "met", and what it writes,
from real (tiny) runs made by replab's own study machinery; no runner is mocked."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import fidelity  # noqa: E402

from replab.runs import rundir  # noqa: E402

RECIPES = REPO / "replab" / "recipes"


def published(datasets: tuple[str, ...]) -> set[tuple[str, str, float]]:
    """(recipe, metric, reference) of every bundled recipe on ``datasets``, read here with
    plain YAML, independently of the script."""
    out = set()
    for path in sorted(RECIPES.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        if (raw.get("data") or {}).get("dataset") not in datasets:
            continue
        for metric, value in ((raw.get("report") or {}).get("reference") or {}).items():
            if value is not None:
                out.add((path.stem, metric, float(value)))
    return out


def outside_blocks(text: bytes) -> list[bytes]:
    """The bytes of ``text`` outside the generated blocks (the markers included)."""
    pieces = [text]
    for start, end in (fidelity.MAKE_RUN_MARKERS, fidelity.TABLE_MARKERS):
        head, rest = pieces.pop().split(start.encode())
        _, tail = rest.split(end.encode())
        pieces += [head, tail]
    return pieces


def as_set(figures: list[fidelity.Figure]) -> set[tuple[str, str, float]]:
    return {(f.recipe, f.metric, f.reference) for f in figures}


def test_every_mnist_and_fashion_figure_is_collected_and_cifar_only_when_asked():
    mnist = published(("mnist", "fashion_mnist"))
    cifar = published(("cifar10",))
    assert len(mnist) >= 10 and len(cifar) >= 10  # the recipes as shipped
    # the recipes' own figures (report 003's per-class table is tested below)
    figures = [f for f in fidelity.collect() if f.label is None and ".f1" not in f.metric]
    assert as_set(figures) == mnist
    assert len(figures) == len(mnist)  # each once
    with_cifar = [
        f for f in fidelity.collect(cifar=True) if f.label is None and ".f1" not in f.metric
    ]
    assert as_set(with_cifar) == mnist | cifar
    # every figure's part has one key, and the study-dependent ones say which study runs them
    keys = {f.recipe: f.part for f in with_cifar}
    assert keys["a1-mnist-autoencoder"] == "A1" and keys["a1-cifar10-autoencoder"] != "A1"
    assert len(set(keys.values())) == len(keys)
    by_recipe = {f.recipe: f for f in figures}
    assert (by_recipe["e3-fashion-classifier"].study, by_recipe["e3-fashion-classifier"].part) == (
        "e",
        "E3",
    )
    assert by_recipe["a2-mnist-classifier"].study is None


# Report 001's figures that no recipe carries, restated from the report (problems 1-2):
# PCA's component counts, the dropout table and the four transfer cases (train, test CE).
REPORT_001_TABLES = {
    ("B2", "PCA components for 95% variance"): 150,
    ("B2", "PCA components for 99% variance"): 330,
    ("B3", "train.loss k=300 p=0.0"): 0.00151,
    ("B3", "test.loss k=300 p=0.0"): 0.00146,
    ("B3", "train.loss k=300 p=0.1"): 0.00622,
    ("B3", "test.loss k=300 p=0.1"): 0.00421,
    ("B3", "train.loss k=300 p=0.3"): 0.01174,
    ("B3", "test.loss k=300 p=0.3"): 0.00760,
    ("B3", "train.loss k=500 p=0.1"): 0.00622,
    ("B3", "test.loss k=500 p=0.1"): 0.00418,
    ("B3", "train.loss k=500 p=0.3"): 0.01194,
    ("B3", "test.loss k=500 p=0.3"): 0.00785,
    ("B4.1", "train.loss"): 0.0178,
    ("B4.1", "test.loss"): 0.1180,
    ("B4.2", "train.loss"): 0.2892,
    ("B4.2", "test.loss"): 0.2806,
    ("B4.3", "train.loss"): 0.4140,
    ("B4.3", "test.loss"): 0.3793,
    ("B4.4", "train.loss"): 0.2893,
    ("B4.4", "test.loss"): 0.2805,
}


def test_report_001_tables_are_read_from_study_b():
    table = [f for f in fidelity.collect() if f.label is not None]
    assert {(f.part, f.label): f.reference for f in table} == REPORT_001_TABLES
    assert all(f.study == "b" and f.study_part == f.part for f in table)
    assert [f.part for f in table if not f.seeded] == ["B2", "B2"]  # PCA: no training
    assert not [f for f in fidelity.collect(datasets=["fashion_mnist"]) if f.label]
    assert fidelity.STUDY_ROWS["b"] == {"ks": [300]}


# Report 003's table 6, restated from the report: per-class F1 (%) of its CNN and of its
# classifier (CL), the CNN's column first as the report prints it.
REPORT_003_TABLE_6 = {
    "T-shirt/top": (89.21, 85.36),
    "Trouser": (99.35, 98.24),
    "Pullover": (90.71, 83.02),
    "Dress": (93.31, 89.97),
    "Coat": (90.22, 84.04),
    "Sandal": (98.89, 97.65),
    "Shirt": (79.94, 72.82),
    "Sneaker": (97.07, 95.77),
    "Bag": (98.32, 97.41),
    "Ankle boot": (97.55, 96.74),
}


def test_report_003_per_class_f1_is_measured_for_e3_its_variant_and_the_cnn():
    f1 = [f for f in fidelity.collect() if f.metric.endswith(".f1")]
    expected = {}
    for cls, (cnn, classifier) in REPORT_003_TABLE_6.items():
        for part, ref in (("E3", classifier), ("E3.long", classifier), ("E3.cnn", cnn)):
            expected[(part, f"per_class.{cls}.f1")] = pytest.approx(ref / 100)
    assert {(f.part, f.metric): f.reference for f in f1} == expected
    assert all(f.study == "e" and f.study_part == f.part for f in f1)
    assert not [f for f in fidelity.collect(datasets=["mnist"]) if f.metric.endswith(".f1")]


def test_per_class_figures_are_read_from_each_seeds_run(tmp_path):
    study = tmp_path / "study-e-20261201-120000"
    study.mkdir()
    settings = {"study": "e", "params": {}, "quick": False, "seeds": [0, 1], "overrides": []}
    (study / fidelity.STUDY_FILE).write_text(json.dumps(settings))
    for seed, f1 in enumerate((0.70, 0.72)):
        run = study / "E3" / f"seed{seed}"
        run.mkdir(parents=True)
        per_class = {"Shirt": {"precision": 0.9, "recall": 0.5, "f1": f1, "support": 1000}}
        metrics = {"test.accuracy": 0.89}
        summary = {"name": "e3", "metrics": metrics, "per_class": per_class, "data": "x"}
        (run / "summary.json").write_text(json.dumps(summary))
        rundir.set_status(run, "finished")
    figures = [
        f
        for f in fidelity.collect()
        if f.part == "E3" and f.metric in ("per_class.Shirt.f1", "test.accuracy")
    ]
    rows = {r.figure.metric: r for r in fidelity.gather(figures, tmp_path, seeds=2)}
    assert rows["per_class.Shirt.f1"].values == {0: 0.70, 1: 0.72}
    assert rows["per_class.Shirt.f1"].mean == pytest.approx(0.71)
    assert rows["per_class.Shirt.f1"].met is False  # 0.71 < 0.7282 - 0.005
    assert rows["test.accuracy"].values == {0: 0.89, 1: 0.89}
    assert fidelity.metric_value({"per_class": {}}, "per_class.Shirt.f1") is None
    assert fidelity.why_not(rows["per_class.Shirt.f1"]) == fidelity.WHY_NOT[("E3", "*")]


def write_study_b(folder, params, rows):
    """A study folder as ``replab study b`` leaves it: its settings and its reference table."""
    study = folder / "study-b-20261201-120000"
    study.mkdir(parents=True)
    settings = {"study": "b", "params": params, "quick": False, "seeds": [0, 1, 2]}
    (study / fidelity.STUDY_FILE).write_text(json.dumps({**settings, "overrides": []}))
    timings = [{"part": "B3", "title": "grid", "seconds": 600.0}, {"part": "B2", "seconds": 3.0}]
    summary = {"reference": rows, "timings": timings}
    (study / fidelity.SUMMARY_FILE).write_text(json.dumps(summary))
    return study


def test_table_figures_take_every_seed_from_the_studys_table(tmp_path):
    table = [f for f in fidelity.collect() if f.label is not None]
    rows = [
        {"part": "B2", "metric": "PCA components for 95% variance", "values": [154.0]},
        {"part": "B2", "metric": "PCA components for 99% variance", "values": [350.0]},
        {"part": "B3", "metric": "test.loss k=300 p=0.3", "values": [0.0075, 0.0079, 0.0077]},
        {"part": "B4.2", "metric": "test.loss", "values": [0.30, 0.31]},
    ]
    # a study with other options (the full k sweep) is not the one this script keeps
    write_study_b(tmp_path / "other", {}, rows)
    assert fidelity.gather(table, tmp_path / "other", seeds=3) == []
    write_study_b(tmp_path / "kept", {"ks": [300]}, rows)
    got = {(r.figure.part, r.figure.name): r for r in fidelity.gather(table, tmp_path / "kept", 3)}
    assert set(got) == {(r["part"], r["metric"]) for r in rows}
    pca95, pca99 = (got[("B2", f"PCA components for {f}% variance")] for f in (95, 99))
    assert pca95.complete and pca95.values == {0: 154.0} and pca95.met is True  # within 5%
    assert pca99.met is False  # 350 is 6% above 330
    b3 = got[("B3", "test.loss k=300 p=0.3")]
    assert b3.values == {0: 0.0075, 1: 0.0079, 2: 0.0077} and b3.complete and b3.met is True
    assert b3.seconds == 600.0 and pca95.seconds == 3.0
    b4 = got[("B4.2", "test.loss")]
    assert not b4.complete and b4.met is False  # 0.305 > 0.2806 x 1.05
    assert "(2 of 3 seeds)" in fidelity._mean_std(b4)
    assert not fidelity._measured(tmp_path / "kept", b4.figure, 3)
    assert fidelity._measured(tmp_path / "kept", b3.figure, 3)
    missing = [f for f in table if (f.part, f.name) not in got]
    doc = fidelity.render_doc(list(got.values()), {**fake_facts(), "invocations": []}, missing)
    assert "| B3 | `test.loss k=300 p=0.3` (study b's table) | 0.0076 |" in doc
    assert "| 154 | 154 | yes |" in doc
    # what was asked for and not measured is named, never left out silently
    (note,) = [line for line in doc.splitlines() if line.startswith("**Not measured yet**")]
    assert "B4.4 `train.loss` (reference 0.2893)" in note and "--only B3,B4.1," in note
    assert "`test.loss k=300 p=0.3`" not in note


def fake_facts() -> dict:
    return {
        "commit": "abc1234",
        "dirty": False,
        "date": "2026-12-01",
        "cpu": "cpu",
        "cores": 2,
        "usable_cores": 2,
        "torch": "2.14.1",
        "python": "3.11",
        "devices": ["cpu"],
    }


def test_only_picks_parts_or_recipes_and_refuses_unknown_names():
    figures = fidelity.collect()
    picked = fidelity.select(figures, "A1,e3-fashion-cnn")
    assert {f.part for f in picked} == {"A1", "E3.cnn"}
    assert {f.metric for f in picked if f.part == "A1"} == {
        "probe.test_accuracy",
        "probe.val_accuracy",
        "test.mae",
    }
    with pytest.raises(fidelity.ReplabError, match="Z9"):
        fidelity.select(figures, "A1,Z9")


@pytest.mark.parametrize(
    ("metric", "reference", "mean", "expected"),
    [
        # accuracies: at least the reference minus half a point
        ("test.accuracy", 0.9, 0.95, True),
        ("test.accuracy", 0.9, 0.9, True),
        ("probe.test_accuracy", 0.9735, 0.9685, True),  # exactly on the line
        ("probe.test_accuracy", 0.9735, 0.96849, False),
        ("val.accuracy", 0.26, 0.2549, False),
        ("probe.test_macro_f1", 0.8, 0.795, True),
        # errors and losses: at most the reference plus 5% of it
        ("test.loss", 0.00146, 0.001533, True),  # exactly 1.05x
        ("test.loss", 0.00146, 0.00154, False),
        ("test.mae", 0.0347, 0.0300, True),
        ("val.loss", 0.014777, 0.0156, False),
        ("test.mse", 0.01, 0.0105, True),
        # nothing measured, or a metric with no direction
        ("test.accuracy", 0.9, None, None),
        ("parameters", 1000.0, 1000.0, None),
        # a count the report gives as "about N": within 5% either side
        ("pca.components", 150.0, 157.5, True),
        ("pca.components", 150.0, 142.5, True),
        ("pca.components", 150.0, 158.0, False),
        ("pca.components", 150.0, 142.0, False),
    ],
)
def test_the_met_rule_at_its_boundaries(metric, reference, mean, expected):
    assert fidelity.met(metric, reference, mean) is expected


def test_the_readme_block_is_replaced_and_everything_outside_kept_byte_for_byte():
    start, end = fidelity.TABLE_MARKERS
    before, after = "top\r\n  trailing  \n\n", "\nbottom  \t\n\nno final newline"
    text = f"{before}{start}\nold table\n| a | b |\n{end}{after}"
    new = fidelity.replace_block(text, fidelity.TABLE_MARKERS, "new block")
    assert new == f"{before}{start}\nnew block\n{end}{after}"
    assert new.startswith(before + start) and new.endswith(end + after)
    for broken in (f"{before}{after}", f"{start}{end}{start}{end}", f"{end}x{start}"):
        with pytest.raises(fidelity.ReplabError):
            fidelity.replace_block(broken, fidelity.TABLE_MARKERS, "x")
    # the shipped README carries both pairs of markers once
    readme = fidelity.README.read_text(encoding="utf-8")
    for markers in (fidelity.TABLE_MARKERS, fidelity.MAKE_RUN_MARKERS):
        assert fidelity.replace_block(readme, markers, "x").count("x") >= 1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A digits recipe with 1 epoch and fake reference figures, measured over 2 seeds by the
    script's own measure() in a results folder; then measured again (everything reused)."""
    tmp = tmp_path_factory.mktemp("fidelity")
    raw = yaml.safe_load((RECIPES / "digits-autoencoder.yaml").read_text())
    raw["name"] = "fid-digits"
    raw["trainer"]["epochs"] = 1
    raw["probe"]["trainer"]["epochs"] = 2
    raw["analysis"] = {"enabled": False}
    raw["report"]["reference"] = {"probe.test_accuracy": 0.99, "test.mae": 0.5}
    recipe = tmp / "fid-digits.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    figures = fidelity.collect([str(recipe)], datasets=["digits"])
    folder = tmp / "runs"
    logs: list[str] = []
    fidelity.measure(figures, folder, seeds=2, log=logs.append)
    first = len(logs)
    fidelity.measure(figures, folder, seeds=2, log=logs.append)
    console = fidelity.measure_make_run(
        folder, log=logs.append, overrides=["trainer.epochs=1", "probe.trainer.epochs=2"]
    )
    return {"figures": figures, "folder": folder, "logs": logs, "first": first, "console": console}


@pytest.mark.heavy(12, group=True)  # seconds on one thread: tests/scheduling.py
def test_measured_runs_are_real_and_reused(tiny):
    (accuracy, mae) = sorted(tiny["figures"], key=lambda f: f.metric)
    assert (accuracy.part, accuracy.metric, mae.metric) == (
        "fid-digits",
        "probe.test_accuracy",
        "test.mae",
    )
    dirs = fidelity.run_dirs(tiny["folder"], accuracy, 2)
    assert [d.name for d in dirs] == ["seed0", "seed1"]
    assert all(fidelity.finished_summary(d)["epochs"] == 1 for d in dirs)
    again = tiny["logs"][tiny["first"] :]
    assert sum("reusing the finished run" in line for line in again) == 2


@pytest.mark.heavy(12, group=True)  # seconds on one thread: tests/scheduling.py
def test_rendering_writes_only_what_was_measured(tiny, tmp_path):
    rows = fidelity.gather(tiny["figures"], tiny["folder"], seeds=2)
    summaries = [
        fidelity.finished_summary(d) for d in fidelity.run_dirs(tiny["folder"], rows[0].figure, 2)
    ]
    by_metric = {r.figure.metric: r for r in rows}
    acc, mae = by_metric["probe.test_accuracy"], by_metric["test.mae"]
    assert acc.values == {s: summaries[s]["metrics"]["probe.test_accuracy"] for s in (0, 1)}
    assert acc.complete and acc.met is False  # one epoch does not reach a 0.99 reference
    assert mae.met is True  # an MAE far below the fake 0.5

    info = fidelity.facts(tiny["folder"], rows)
    readme = tmp_path / "README.md"
    original = fidelity.README.read_bytes()
    readme.write_bytes(original)
    doc = tmp_path / "fidelity.md"
    written = fidelity.write(rows, info, tiny["console"], doc=doc, readme=readme)
    assert written == [doc, readme]

    text = doc.read_text()
    assert f"commit: `{info['commit']}`" in text and info["torch"] in text
    # the data is named, not the folder it was read from on the measuring machine
    assert acc.data.startswith("scikit-learn digits") and str(REPO) not in text
    mnist = (
        "MNIST train (60,000 images) from /data/dev/MNIST/raw; "
        "MNIST test (10,000 images) from /data/dev/MNIST/raw"
    )
    named = "MNIST train (60,000 images); MNIST test (10,000 images)"
    assert fidelity._without_paths(mnist) == named
    refit = (
        "Fashion-MNIST train (60,000 images) from /d/FashionMNIST/raw, validation images "
        "included (12,000; refit); Fashion-MNIST test (10,000 images) from /d/FashionMNIST/raw"
    )
    assert fidelity._without_paths(refit) == (
        "Fashion-MNIST train (60,000 images), validation images included (12,000; refit); "
        "Fashion-MNIST test (10,000 images)"
    )
    line = next(x for x in text.splitlines() if "`probe.test_accuracy`" in x)
    assert "| 0.9900 |" in line and "**no**" in line and "no measured explanation yet" in line
    assert fidelity._fmt(acc.mean) in line
    assert all(fidelity._fmt(v) in line for v in acc.values.values())
    assert "| yes |" in next(x for x in text.splitlines() if "`test.mae`" in x)

    new = readme.read_bytes()
    assert outside_blocks(new) == outside_blocks(original) and new != original
    block = new.decode().split(fidelity.TABLE_MARKERS[0])[1].split(fidelity.TABLE_MARKERS[1])[0]
    assert "fid-digits" in block and "`test.mae`" in block
    sample = (
        new.decode().split(fidelity.MAKE_RUN_MARKERS[0])[1].split(fidelity.MAKE_RUN_MARKERS[1])[0]
    )
    assert "[replab] trained 1 epochs" in sample and "report:     runs/" in sample

    # a seed asked for but not measured shows as such, and is not filled in
    (three,) = [
        r
        for r in fidelity.gather(tiny["figures"], tiny["folder"], 3)
        if r.figure.metric == "test.mae"
    ]
    assert not three.complete and len(three.values) == 2
    assert "(2 of 3 seeds)" in fidelity._mean_std(three)


def test_with_nothing_measured_nothing_is_written(tmp_path):
    figures = fidelity.collect()
    rows = fidelity.gather(figures, tmp_path / "empty", seeds=3)
    assert rows == []
    doc, readme = tmp_path / "fidelity.md", tmp_path / "README.md"
    readme.write_text("x")
    assert fidelity.write(rows, {}, None, doc=doc, readme=readme) == []
    assert not doc.exists() and readme.read_text() == "x"
    assert fidelity.main(["--no-run", "--write", "--folder", str(tmp_path / "empty")]) == 1
