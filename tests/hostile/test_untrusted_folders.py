"""A saved folder or file is data, never code (issue 30, class 1).

A run, study or tune folder, or an encoder file, may come from someone else. What it names
by import path (``model.encoder.name: pkg.mod:Class`` in a config.yaml, study.json or
tune.json) is imported only with ``trust_code`` (``--trust-code``); a .pt2 holding pickles,
guard code or anything beyond torch operators is refused the same way; a component named by
import path must be a class of its kind even when the user named it (``os:system`` and the
like are refused before anything is called); ``Run.show()`` sandboxes the folder's HTML.

Every hostile case plants a module of its own on sys.path whose import writes a marker file,
or a standard-library callable that would write one or delete a folder, and asserts: refused
with one line naming the component and the option, no traceback, no marker, nothing outside
the folder changed (and the folder itself unchanged).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import replab
from replab.augment import AUGMENTATIONS
from replab.cli import main
from replab.data import DATASETS
from replab.errors import ConfigError, ReplabError, UntrustedCodeError
from replab.models import MODELS
from replab.objectives import OBJECTIVES
from replab.runs.analyze import load_encoder
from replab.search.tune.settings import TuneSettings, save_settings
from replab.studies.runner import STUDIES
from replab.tasks import TASKS
from replab.training.optimizers import OPTIMIZERS
from replab.training.schedules import SCHEDULES

TINY = ["trainer.epochs=1", "probe.enabled=false", "analysis.enabled=false"]
MODULE = "planted_nets"
PLANTED = f"{MODULE}:PlantedEncoder"
OPTION = ("--trust-code", "trust_code=True")

PLANTED_SOURCE = '''
import os
from pathlib import Path

from torch import nn

Path(os.environ["PLANTED_MARKER"]).write_text("imported")


class PlantedEncoder(nn.Module):
    """A user's own encoder; importing its module writes the marker."""

    def __init__(self, in_shape: tuple, latent_dim: int = 4) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        n = 1
        for s in in_shape:
            n *= s
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n, latent_dim))

    def forward(self, x):
        return self.net(x)
'''


@contextlib.contextmanager
def planted(folder: Path, marker: Path):
    """The planted module importable (from ``folder``), its marker at ``marker``; afterwards
    neither it nor its import is left in this process."""
    (folder / f"{MODULE}.py").write_text(PLANTED_SOURCE)
    old = os.environ.get("PLANTED_MARKER")
    os.environ["PLANTED_MARKER"] = str(marker)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(MODULE, None)
        if old is None:
            os.environ.pop("PLANTED_MARKER", None)
        else:
            os.environ["PLANTED_MARKER"] = old


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    """A finished run whose encoder is the user's own class, named by import path this time
    (which is allowed: the user passed it)."""
    root = tmp_path_factory.mktemp("user-run")
    with planted(root, root / "marker"):
        run = replab.run(
            "digits-autoencoder",
            f"model.encoder={{name: '{PLANTED}', latent_dim: 4}}",
            *TINY,
            runs_dir=root / "runs",
        )
    assert run is not None and (root / "marker").is_file()
    return run.dir


@pytest.fixture
def plant(tmp_path):
    """(marker path) with the planted module importable; the marker must not appear."""
    marker = tmp_path / "outside" / "marker"
    marker.parent.mkdir()
    with planted(tmp_path, marker):
        yield marker
    assert MODULE not in sys.modules


def copy_run(user_run: Path, tmp_path: Path, **config) -> Path:
    """A copy of the finished run with ``config`` keys (dotted) set in its config.yaml."""
    folder = tmp_path / "downloaded" / user_run.name
    shutil.copytree(user_run, folder)
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    for key, value in config.items():
        node = raw
        *parents, leaf = key.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def assert_refused(code: int, err: str, *needles: str) -> None:
    """Exit 2, one ``replab: error:`` line naming each needle and the option, no traceback."""
    assert code == 2, err
    assert err.startswith("replab: error:") and err.strip().count("\n") == 0, err
    assert "Traceback" not in err
    for needle in (*needles, *OPTION):
        assert needle in err, (needle, err)


def assert_names(err: ReplabError, *needles: str) -> None:
    assert "\n" not in err.message
    for needle in (*needles, *OPTION):
        assert needle in err.message, (needle, err.message)


# --- run folders: load, analyze, resume -------------------------------------------------


@pytest.mark.parametrize("use", ["encoder", "model", "embed", "spec", "task"])
def test_load_refuses_a_folder_naming_code_before_importing_it(user_run, tmp_path, plant, use):
    folder = copy_run(user_run, tmp_path)
    before = snapshot(folder)
    run = replab.load(folder)  # reads the summary: nothing to import yet
    with pytest.raises(UntrustedCodeError) as caught:
        run.embed("test") if use == "embed" else getattr(run, use)
    assert_names(caught.value, f"model.encoder.name={PLANTED}", str(folder))
    assert not plant.exists() and MODULE not in sys.modules
    assert snapshot(folder) == before


def test_with_trust_code_the_users_own_class_is_rebuilt(user_run, tmp_path, plant):
    run = replab.load(copy_run(user_run, tmp_path), trust_code=True)
    assert type(run.encoder).__name__ == "PlantedEncoder" and plant.exists()
    assert run.embed(torch.zeros(3, 1, 8, 8, dtype=torch.uint8)).shape == (3, 4)
    assert isinstance(run.model, nn.Module)


def test_trust_code_must_be_true_or_false(user_run):
    with pytest.raises(ReplabError, match="trust_code='yes' is not True or False"):
        replab.load(user_run, trust_code="yes")  # type: ignore[arg-type]


# case -> (key, sections joined by __; the planted value; what it names; whether rebuilding
# the model builds it). Each would write the marker or delete the victim folder if called.
HOSTILE = {
    "os.system": (
        "model__encoder",
        {"name": "os:system", "command": "touch {marker}"},
        "os:system",
        True,
    ),
    "shutil.rmtree": (
        "objective",
        {"name": "shutil:rmtree", "path": "{victim}"},
        "shutil:rmtree",
        True,
    ),
    "builtins.eval": (
        "model__decoder",
        {"name": "builtins:eval", "source": "open('{marker}', 'w')"},
        "builtins:eval",
        True,
    ),
    "subprocess.Popen": (
        "model__encoder",
        {"name": "subprocess:Popen", "args": ["touch", "{marker}"]},
        "subprocess:Popen",
        True,
    ),
    "task": ("task", {"name": "os:system", "command": "touch {marker}"}, "os:system", True),
    "dataset": ("data__dataset", "os:getcwd", "os:getcwd", True),
    "optimizer": ("trainer__optimizer__name", "os:system", "os:system", False),
    "schedule": ("trainer__lr_schedule", "os:system", "os:system", False),
    "augment": ("augment", [{"name": "shutil:rmtree", "path": "{victim}"}], "rmtree", False),
    "probe head": (
        "probe__head",
        {"name": "os:system", "command": "touch {marker}"},
        "os:system",
        False,
    ),
}


def fill(value, marker: Path, victim: Path):
    if isinstance(value, str):
        return value.format(marker=marker, victim=victim)
    if isinstance(value, list):
        return [fill(v, marker, victim) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, marker, victim) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_planted_standard_library_callable_is_never_called(user_run, tmp_path, plant, case):
    victim, called = tmp_path / "outside" / "victim", tmp_path / "outside" / "called"
    victim.mkdir()
    key, value, needle, built = HOSTILE[case]
    folder = copy_run(user_run, tmp_path, **{key: fill(value, called, victim)})
    before = snapshot(folder)
    with pytest.raises(UntrustedCodeError) as caught:
        replab.load(folder).encoder  # noqa: B018
    assert_names(caught.value, needle)
    assert not plant.exists()  # not even the folder's own encoder module was imported
    if built:  # trusted or not, it is no class of its kind: refused before being called
        with pytest.raises(ConfigError) as caught:
            run = replab.load(folder, trust_code=True)
            run.embed("test") if key == "data__dataset" else run.encoder  # noqa: B018
        assert needle in caught.value.message and "\n" not in caught.value.message
        assert not isinstance(caught.value, UntrustedCodeError)
    assert not called.exists() and victim.is_dir() and snapshot(folder) == before


def test_analyze_of_a_folder_naming_code_is_refused(user_run, tmp_path, plant):
    folder = copy_run(user_run, tmp_path)
    runs = tmp_path / "analysed"
    code, err = cli(["analyze", str(folder), "--data", "digits", "--runs-dir", str(runs)])
    assert_refused(code, err, f"model.encoder.name={PLANTED}")
    with pytest.raises(UntrustedCodeError):
        replab.analyze(folder, "digits", runs_dir=runs)
    assert not runs.exists() and not plant.exists()
    encoder, decoder, _ = load_encoder(folder, trust_code=True)
    assert type(encoder).__name__ == "PlantedEncoder" and decoder is not None


def test_resume_of_a_folder_naming_code_is_refused(user_run, tmp_path, plant):
    folder = copy_run(user_run, tmp_path)
    before = snapshot(folder)
    code, err = cli(["run", "--resume", str(folder)])
    assert_refused(code, err, f"model.encoder.name={PLANTED}")
    with pytest.raises(UntrustedCodeError):
        replab.run(resume=folder)
    assert not plant.exists() and snapshot(folder) == before


def test_show_sandboxes_the_folders_html(user_run, tmp_path):
    # the default card holds no frame and escapes what the folder's summary says
    folder = copy_run(user_run, tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    evil = "<script>alert(1)</script>"
    summary |= {"name": evil, "data": evil, "metrics": {**summary["metrics"], evil: 1.0}}
    (folder / "summary.json").write_text(json.dumps(summary))
    card = replab.load(folder).show().data
    assert "<script" not in card and "<iframe" not in card and "&lt;script&gt;" in card
    page = replab.load(user_run).show(full=True).data
    assert page.startswith('<iframe srcdoc="')
    # the escaped report holds no raw quote: the first one closes srcdoc, the tag goes on
    tag = page.split('srcdoc="', 1)[1].split('"', 1)[1].split(">", 1)[0]
    assert 'sandbox="allow-scripts"' in tag and "allow-same-origin" not in tag
    assert "&lt;html" in page  # the report itself, escaped in srcdoc


# --- study and tune folders -------------------------------------------------------------


def study_folder(tmp_path: Path, **settings) -> Path:
    folder = tmp_path / "study-downloaded"
    folder.mkdir()
    data = {"study": "a", "params": {}, "quick": True, "seeds": [0], "overrides": [], **settings}
    (folder / "study.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    "settings, needle",
    [
        ({"overrides": [f"*:model.encoder={{name: '{PLANTED}'}}"]}, PLANTED),
        ({"overrides": ["A1:objective.name=shutil:rmtree"]}, "objective.name=shutil:rmtree"),
        ({"study": "os:system"}, "study=os:system"),
        ({"study": "g", "params": {"dataset": "os:getcwd"}}, "params.dataset=os:getcwd"),
    ],
)
def test_study_resume_refuses_code_its_study_json_names(tmp_path, plant, settings, needle):
    folder = study_folder(tmp_path, **settings)
    before = snapshot(folder)
    code, err = cli(["study", "--resume", str(folder)])
    assert_refused(code, err, needle, str(folder))
    with pytest.raises(UntrustedCodeError):
        replab.study(resume=folder)
    assert not plant.exists() and snapshot(folder) == before


def test_a_study_named_by_import_path_is_refused_even_when_trusted(tmp_path):
    folder = study_folder(tmp_path, study="subprocess:Popen", params={"args": ["true"]})
    with pytest.raises(ConfigError, match="a study must be a registered one") as caught:
        replab.study(resume=folder, trust_code=True)
    assert not isinstance(caught.value, UntrustedCodeError)
    with pytest.raises(ConfigError, match="'os:system' names code by import path"):
        replab.study("os:system")


def tune_folder(tmp_path: Path, space: dict, overrides: list[str] = ()) -> Path:
    from replab.recipes import read_recipe

    folder = tmp_path / "tune-downloaded"
    folder.mkdir()
    settings = TuneSettings(
        recipe=read_recipe("digits-autoencoder"),
        recipe_source="digits-autoencoder",
        space=space,
        trials=1,
        overrides=[*TINY, *overrides],
    )
    save_settings(folder, settings)
    return folder


@pytest.mark.parametrize(
    "space, overrides, needle",
    [
        (
            {"model.encoder.name": {"type": "categorical", "choices": ["mlp", "os:system"]}},
            [],
            "model.encoder.name=os:system",
        ),
        (
            {"model.encoder": {"type": "categorical", "choices": [{"name": PLANTED}]}},
            [],
            f"model.encoder.name={PLANTED}",
        ),
        (
            {"trainer.optimizer.lr": {"type": "float", "low": 0.001, "high": 0.01}},
            ["objective={name: 'shutil:rmtree', path: '{victim}'}"],
            "objective.name=shutil:rmtree",
        ),
    ],
)
def test_tune_resume_refuses_code_its_tune_json_names(tmp_path, plant, space, overrides, needle):
    victim = tmp_path / "outside" / "victim"
    victim.mkdir()
    folder = tune_folder(tmp_path, space, [o.replace("{victim}", str(victim)) for o in overrides])
    before = snapshot(folder)
    code, err = cli(["tune", "--resume", str(folder)])
    assert_refused(code, err, needle, str(folder))
    with pytest.raises(UntrustedCodeError):
        replab.tune(resume=folder)
    assert not plant.exists() and victim.is_dir() and snapshot(folder) == before


def test_a_trusted_tune_resume_still_refuses_a_callable(tmp_path):
    space = {"model.encoder.name": {"type": "categorical", "choices": ["mlp", "os:system"]}}
    folder = tune_folder(tmp_path, space)
    with pytest.raises(ConfigError, match="'os:system' is a builtin_function_or_method") as e:
        replab.tune(resume=folder, trust_code=True)
    assert not isinstance(e.value, UntrustedCodeError)


# --- what the user names this time ------------------------------------------------------


@pytest.mark.parametrize(
    "registry, name, needle",
    [
        (MODELS, "os:system", "not a class"),
        (MODELS, "shutil:rmtree", "not a class"),
        (MODELS, "builtins:eval", "not a class"),
        (MODELS, "subprocess:Popen", "is not a torch.nn.modules.module.Module subclass"),
        (OBJECTIVES, "subprocess:Popen", "is not a torch.nn.modules.module.Module subclass"),
        (TASKS, "torch.nn:Linear", "is not a replab.tasks.base.Task subclass"),
        (DATASETS, "os:system", "not a class"),
        (AUGMENTATIONS, "shutil:rmtree", "must be a registered one"),
        (OPTIMIZERS, "os:system", "must be a registered one"),
        (SCHEDULES, "os:system", "must be a registered one"),
        (STUDIES, "subprocess:Popen", "must be a registered one"),
    ],
)
def test_a_named_callable_must_be_a_class_of_its_kind(registry, name, needle):
    with pytest.raises(ConfigError, match=needle) as caught:
        registry.get(name, where="here")
    assert name in caught.value.message


@pytest.mark.parametrize(
    "name", ["os:system", "shutil:rmtree", "builtins:eval", "subprocess:Popen"]
)
def test_a_run_naming_a_callable_is_refused_before_calling_it(tmp_path, name):
    marker = tmp_path / "marker"
    override = f"model.encoder={{name: '{name}', command: 'touch {marker}'}}"
    if name == "shutil:rmtree":
        override = f"model.encoder={{name: '{name}', path: '{tmp_path}'}}"
    elif name == "subprocess:Popen":
        override = f"model.encoder={{name: '{name}', args: [touch, '{marker}']}}"
    elif name == "builtins:eval":
        override = f"model.encoder={{name: '{name}', source: 'open(\"{marker}\", \"w\")'}}"
    runs = tmp_path / "runs"
    code, err = cli(["run", "digits-autoencoder", override, *TINY, "--runs-dir", str(runs)])
    assert code == 2 and name in err and "Traceback" not in err, err
    assert "not a class" in err or "not a torch.nn" in err
    assert not marker.exists() and tmp_path.is_dir()


# --- encoder files ----------------------------------------------------------------------


class _Writes:
    """Unpickled, writes the marker: what a pickled payload can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def exported(path: Path) -> Path:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4)).eval()
    batch = torch.export.Dim("batch", min=2, max=4096)
    program = torch.export.export(model, (torch.rand(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


def rewritten(source: Path, target: Path, edit) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            new.writestr(name, edit(name, old.read(name)))
    return target


def pickled_weight(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("_weights_config.json"):
            config = json.loads(data)
            for meta in config["config"].values():
                meta["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("/weight_0"):
            buffer = io.BytesIO()
            torch.save(_Writes(marker), buffer)
            return buffer.getvalue()
        return data

    return edit


def guard_code(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("models/model.json"):
            program = json.loads(data)
            program["guards_code"] = [f"open({str(marker)!r}, 'w') is None"]
            return json.dumps(program).encode()
        return data

    return edit


def pickled_sample_inputs(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        if "sample_inputs/" in name:
            return pickle.dumps(_Writes(marker))
        return data

    return edit


def target(name: str):
    """A graph node calling ``name``: torch.export.load resolves any name under torch."""

    def planted(marker: Path):
        def edit(entry: str, data: bytes) -> bytes:
            if entry.endswith("models/model.json"):
                program = json.loads(data)
                program["graph_module"]["graph"]["nodes"][0]["target"] = name
                return json.dumps(program).encode()
            return data

        return edit

    return planted


def shape_expression(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("models/model.json"):
            program = json.loads(data)
            (bounds,) = program["range_constraints"].values()
            evil = f"__import__('os').system('touch {marker}')"
            program["range_constraints"] = {evil: bounds}
            return json.dumps(program).encode()
        return data

    return edit


@pytest.mark.parametrize(
    "edit, needle",
    [
        (pickled_weight, "(pickled)"),
        (guard_code, "guard code"),
        (pickled_sample_inputs, "sample_inputs/model.pt (pickled objects)"),
        (target("torch.os.system"), "target torch.os.system"),
        (target("torch.ops.aten.save.default"), "target torch.ops.aten.save.default"),
        (target("torch.ops.import_module.__call__"), "target torch.ops.import_module"),
        (shape_expression, "expression"),
    ],
)
def test_a_pt2_holding_more_than_torch_operators_is_refused(tmp_path, edit, needle):
    marker = tmp_path / "marker"
    clean = exported(tmp_path / "clean.pt2")
    hostile = rewritten(clean, tmp_path / "encoder.pt2", edit(marker))
    runs = tmp_path / "runs"
    code, err = cli(["analyze", str(hostile), "--data", "digits", "--runs-dir", str(runs)])
    assert_refused(code, err, needle, str(hostile))
    with pytest.raises(UntrustedCodeError):
        replab.analyze(hostile, "digits", runs_dir=runs)
    assert not marker.exists() and not runs.exists()


def test_a_clean_pt2_opens_without_trust(tmp_path):
    encoder, decoder, name = load_encoder(exported(tmp_path / "clean.pt2"))
    assert encoder(torch.rand(3, 1, 8, 8)).shape == (3, 4) and decoder is None
    assert name == "clean"


class SavesItsInput(nn.Module):
    """A TorchScript encoder whose forward writes a file anywhere (``torch.save``)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.path)
        return x.flatten(1)


def test_a_torchscript_file_writing_files_is_refused(tmp_path):
    marker = tmp_path / "outside" / "written"
    path = tmp_path / "encoder.ts"
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, still what many have
        torch.jit.save(torch.jit.script(SavesItsInput(str(marker))), str(path))
    runs = tmp_path / "runs"
    code, err = cli(["analyze", str(path), "--data", "digits", "--runs-dir", str(runs)])
    assert_refused(code, err, ".py: save", str(path))
    assert not marker.exists() and not runs.exists()
    clean = tmp_path / "clean.ts"
    with pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(64, 4))), str(clean))
    encoder, _, _ = load_encoder(clean)
    assert encoder(torch.rand(2, 1, 8, 8)).shape == (2, 4)


# --- the opt-in, from the command line --------------------------------------------------


def interrupted(folder: Path) -> Path:
    """The copied run as a run killed before it finished: no summary, status failed."""
    (folder / "summary.json").unlink()
    status = json.loads((folder / "status.json").read_text())
    (folder / "status.json").write_text(json.dumps({**status, "state": "failed"}))
    return folder


def test_trust_code_lets_resume_and_analyze_import_what_the_folder_names(user_run, tmp_path, plant):
    folder = interrupted(copy_run(user_run, tmp_path))
    code, err = cli(["run", "--resume", str(folder)])
    assert_refused(code, err, f"model.encoder.name={PLANTED}")
    assert not plant.exists()
    code, err = cli(["run", "--resume", str(folder), "--trust-code"])
    assert code == 0, err
    assert plant.is_file()  # imported: the user said they trust the folder
    assert json.loads((folder / "status.json").read_text())["state"] == "finished"
    runs = tmp_path / "analysed"
    code, err = cli(
        ["analyze", str(folder), "--data", "digits", "--runs-dir", str(runs), "--trust-code"]
        + ["probe.trainer.epochs=2", "analysis.enabled=false"]
    )
    assert code == 0, err
    assert len(list(runs.glob("*/summary.json"))) == 1


def test_a_new_run_rebuilds_the_code_its_caller_named(user_run, tmp_path):
    with planted(tmp_path, tmp_path / "marker"):
        run = replab.run(
            "digits-autoencoder",
            f"model.encoder={{name: '{PLANTED}', latent_dim: 4}}",
            *TINY,
            runs_dir=tmp_path / "runs",
        )
        assert run is not None and run.trust_code
        assert type(run.encoder).__name__ == "PlantedEncoder"


@pytest.mark.parametrize("command", ["run", "study", "tune", "analyze"])
def test_trust_code_is_in_the_help_of_each_command_that_opens_saved_folders(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--trust-code" in capsys.readouterr().out
