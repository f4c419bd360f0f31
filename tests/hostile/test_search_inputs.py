"""Hostile search and sweep inputs (issue 30, classes 3 and 6): keys that name one recipe key
twice, storages that fail, --jobs beyond the machine and confusion matrices of hundreds of
classes. Each refusal is exit status 2 with one line naming the problem and the fix, no
traceback, and nothing changed in the case's folder."""

from __future__ import annotations

import importlib.util
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from replab.cli import main
from replab.errors import ReplabError
from replab.reporting import figures
from replab.runs import forkserver, pool

RECIPE = "digits-autoencoder"
FAST = ("probe.enabled=false", "analysis.enabled=false")
LR = "{type: float, low: 1.0e-4, high: 1.0e-2, log: true}"


def snapshot(folder: Path) -> dict[str, bytes | str]:
    return {str(p): "dir" if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def refused(argv: list[str], folder: Path, capsys, *expect: str) -> str:
    """Run ``argv``: exit 2, one ``replab: error: ... Fix: ...`` line holding every fragment of
    ``expect``, no traceback, ``folder`` left exactly as it was; returns that line."""
    before = snapshot(folder)
    capsys.readouterr()
    started = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    seconds = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.startswith("replab: error:")]
    assert len(lines) == 1 and "Fix:" in lines[0], err
    for fragment in expect:
        assert fragment in lines[0], (fragment, lines[0])
    after = snapshot(folder)
    changed = sorted(set(before) ^ set(after) | {k for k in before if after.get(k) != before[k]})
    assert not changed, f"the refused command changed {changed[:5]}"
    assert seconds < 30, f"refusing took {seconds:.1f} s"
    return lines[0]


def tune(tmp_path: Path, space: str, *extra: str) -> list[str]:
    (tmp_path / "space.yaml").write_text(space, encoding="utf-8")
    return [
        "tune",
        RECIPE,
        *FAST,
        "--space",
        str(tmp_path / "space.yaml"),
        "--trials",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        *extra,
    ]


def sweep(tmp_path: Path, *extra: str) -> list[str]:
    return ["sweep", RECIPE, *FAST, "--runs-dir", str(tmp_path / "runs"), *extra]


# --- class 6: search and sweep keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "expect"),
    [
        (
            f"trainer.optimizer.lr: {LR}\n' trainer.optimizer.lr ': {LR}\n",
            ("'trainer.optimizer.lr' is tuned twice", "' trainer.optimizer.lr '"),
        ),
        (
            "model.encoder.dropout,model.decoder.dropout: {type: float, low: 0.0, high: 0.3}\n"
            "model.decoder.dropout: {type: float, low: 0.0, high: 0.5}\n",
            ("'model.decoder.dropout' is tuned twice", "'model.encoder.dropout,model.decoder"),
        ),
        (
            "'model.encoder.dropout, model.encoder.dropout': {type: float, low: 0.0, high: 0.3}\n",
            ("'model.encoder.dropout' is tuned twice", "names it twice"),
        ),
    ],
    ids=["spaces around a key", "a key alone and in a pair", "a pair of one key"],
)
def test_a_space_naming_one_recipe_key_twice_is_refused(space, expect, tmp_path, capsys):
    refused(tune(tmp_path, space), tmp_path, capsys, "space.yaml", *expect, "one entry per key")


def test_an_enqueued_point_naming_one_key_twice_is_refused(tmp_path, capsys):
    argv = tune(
        tmp_path,
        f"trainer.optimizer.lr: {LR}\n",
        "--enqueue",
        "{trainer.optimizer.lr: 0.001, ' trainer.optimizer.lr': 0.002}",
    )
    refused(argv, tmp_path, capsys, "--enqueue #1 gives a key twice")


@pytest.mark.parametrize(
    ("over", "expect"),
    [
        (
            ["--over", "seed=[0,1]", "--over", " seed =[2]"],
            ("sets 'seed' twice", "--over 'seed' and --over 'seed'", "one --over"),
        ),
        (
            [
                "--over",
                "model.encoder.dropout,model.decoder.dropout=[0.0,0.1]",
                "--over",
                "model.decoder.dropout=[0.3]",
            ],
            ("sets 'model.decoder.dropout' twice",),
        ),
        (["--over", "seed,seed=[0,1]"], ("--over 'seed,seed' names it twice",)),
        (["--over", "seed=[0,1,0]"], ("list 0 twice",)),
        (["seed=3", "--over", "seed=[0,1]"], ("override 'seed=3'", "would drop it")),
        (["--over", "name=[a/b,a_b]"], ("share the run folder",)),
    ],
    ids=["two --over", "a pair and a key", "a pair of one key", "a value twice", "fixed", "folder"],
)
def test_a_sweep_setting_one_key_twice_is_refused(over, expect, tmp_path, capsys):
    refused(sweep(tmp_path, *over), tmp_path, capsys, *expect)
    assert not (tmp_path / "runs").exists()


# --- class 6: storages that fail leave no study folder ---------------------------------------


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("nonsense", ("cannot open the Optuna storage nonsense", "check the URL")),
        ("postgres://u@127.0.0.1:1/db", ("postgresql://, not postgres://",)),
        (
            "postgresql+psycopg2://u:secret@127.0.0.1:1/db",
            ("u:***@127.0.0.1", "Connection refused", "server is up"),
        ),
        ("sqlite:///{tmp}/no/such/folder/x.db", ("unable to open database file",)),
    ],
    ids=["not a URL", "old scheme", "server down", "sqlite in a missing folder"],
)
def test_a_storage_that_fails_leaves_no_study_folder(url, expect, tmp_path, capsys):
    if "psycopg2" in url and importlib.util.find_spec("psycopg2") is None:
        pytest.skip("psycopg2 is not installed")
    argv = tune(tmp_path, f"trainer.optimizer.lr: {LR}\n", "--storage", url.format(tmp=tmp_path))
    line = refused(argv, tmp_path, capsys, *expect)
    assert "secret" not in line
    assert not (tmp_path / "runs").exists()


def test_a_shared_study_started_otherwise_is_refused_before_any_folder(tmp_path, capsys):
    """The study --storage names exists with another space: refused before the folder is made
    (it was refused by the first worker, the folder with its tune.json left behind)."""
    import optuna

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    other = optuna.create_study(storage=url, study_name="shared")
    other.set_user_attr("replab_tune", {"recipe": "0", "space": {}, "metric": "val.loss"})
    case = tmp_path / "case"
    case.mkdir()
    argv = tune(case, f"trainer.optimizer.lr: {LR}\n", "--storage", url, "--study-name", "shared")
    refused(argv, case, capsys, "study 'shared'", "was started with another recipe, space")
    assert not (case / "runs").exists()


@pytest.mark.parametrize(
    ("scheme", "driver", "package"),
    [
        ("postgresql", "psycopg", "pip install 'psycopg[binary]'"),  # SQLAlchemy 2.1's default
        ("postgresql+psycopg", "psycopg", "pip install 'psycopg[binary]'"),
        ("postgresql+psycopg2", "psycopg2", "pip install 'psycopg2-binary'"),
        ("postgresql+pg8000", "pg8000", "pip install 'pg8000'"),
        ("mysql+pymysql", "pymysql", "pip install 'PyMySQL'"),
    ],
)
def test_a_missing_driver_is_named_with_the_package_its_scheme_needs(
    scheme, driver, package, tmp_path, capsys
):
    """The old message said psycopg2 whatever the URL; SQLAlchemy 2.1 reads postgresql:// with
    psycopg (3), so a psycopg2 installation did not help."""
    import sqlalchemy

    from replab.search.tune import storage

    if scheme == "postgresql" and sqlalchemy.__version__.startswith(("1.", "2.0")):
        driver, package = "psycopg2", "pip install 'psycopg2-binary'"
    assert storage._driver(f"{scheme}://u@h/db") == (scheme, driver)
    if importlib.util.find_spec(driver) is not None:
        pytest.skip(f"{driver} is installed here: the missing-driver error cannot happen")
    argv = tune(tmp_path, f"trainer.optimizer.lr: {LR}\n", "--storage", f"{scheme}://u@h/db")
    line = refused(argv, tmp_path, capsys, f"the driver {driver}, which is not installed", package)
    if scheme.startswith("postgresql") and importlib.util.find_spec("psycopg2") is not None:
        assert "begin the URL with postgresql+psycopg2://" in line


# --- class 3: --jobs beyond what the machine holds --------------------------------------------


@pytest.fixture
def small_machine(monkeypatch):
    """Two usable CPUs and 8 GB of memory available, whatever this machine has."""
    monkeypatch.setattr(pool, "usable_cpus", lambda: 2)
    monkeypatch.setattr(pool, "available_memory_mb", lambda: 8192.0)
    monkeypatch.setattr(forkserver, "start", lambda: None)  # the command line starts it early
    started = []
    monkeypatch.setattr(pool.RunPool, "__init__", lambda *a, **k: started.append(a))
    return started


@pytest.mark.parametrize("command", ["tune", "sweep", "study"])
def test_jobs_beyond_the_cpus_are_refused_before_any_worker_starts(
    command, small_machine, tmp_path, capsys
):
    argv = {
        "tune": tune(tmp_path, f"trainer.optimizer.lr: {LR}\n"),
        "sweep": sweep(tmp_path, "--over", "seed=[0,1]"),
        "study": ["study", "b", "--quick", "--runs-dir", str(tmp_path / "runs")],
    }[command]
    refused(
        [*argv, "--jobs", "64"],
        tmp_path,
        capsys,
        "--jobs 64 would start 64 worker processes",
        "2 usable CPUs",
        "8.0 GiB of memory available",
        "pass --jobs 8 or fewer",
    )
    assert not small_machine and not (tmp_path / "runs").exists()


def test_jobs_beyond_the_memory_are_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(pool, "usable_cpus", lambda: 64)
    monkeypatch.setattr(pool, "available_memory_mb", lambda: 2000.0)
    line = refused(
        [*sweep(tmp_path, "--over", "seed=[0,1]"), "--jobs", "16"], tmp_path, capsys, "2.0 GiB"
    )
    assert f"about {pool.WORKER_MB} MB a worker" in line and "--jobs 3 or fewer" in line
    monkeypatch.setattr(pool, "available_memory_mb", lambda: 700.0)
    line = refused([*sweep(tmp_path, "--over", "seed=[0,1]"), "--jobs", "2"], tmp_path, capsys)
    assert "pass --jobs 1" in line and "free some memory" in line


def test_jobs_within_the_machine_pass(monkeypatch):
    monkeypatch.setattr(pool, "usable_cpus", lambda: 2)
    monkeypatch.setattr(pool, "available_memory_mb", lambda: None)  # unknown: CPUs only
    assert [pool.check_jobs(j) for j in (1, 2, 8)] == [1, 2, 8]
    with pytest.raises(ReplabError, match="--jobs 9 would start"):
        pool.check_jobs(9)
    monkeypatch.setattr(pool, "available_memory_mb", lambda: 100.0)
    assert pool.check_jobs(1) == 1  # one job starts no worker: never refused for memory


def test_available_memory_reads_meminfo_and_the_cgroup_limit(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 16000000 kB\nMemAvailable: 8388608 kB\n")
    v2 = tmp_path / "v2"
    v2.mkdir()
    assert pool.available_memory_mb(meminfo, v2) == 8192.0  # no limit file: MemAvailable
    (v2 / "memory.max").write_text("max\n")
    assert pool.available_memory_mb(meminfo, v2) == 8192.0  # unlimited
    (v2 / "memory.max").write_text(f"{3 << 30}\n")
    (v2 / "memory.current").write_text(f"{2 << 30}\n")
    (v2 / "memory.stat").write_text(f"anon 1\ninactive_file {1 << 29}\n")
    assert pool.available_memory_mb(meminfo, v2) == 1536.0  # 3 GiB - (2 GiB - 0.5 GiB cache)
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    (v1 / "memory.usage_in_bytes").write_text(f"{1 << 30}\n")
    assert pool.available_memory_mb(meminfo, v1.parent) == 8192.0
    (v1 / "memory.limit_in_bytes").write_text(f"{2 << 30}\n")
    assert pool.available_memory_mb(meminfo, v1.parent) == 1024.0
    assert pool.available_memory_mb(tmp_path / "none", tmp_path / "none") is None


def test_usable_cpus_ignore_the_per_process_thread_setting(monkeypatch):
    from replab.training import threads

    monkeypatch.setattr(threads, "affinity_cpus", lambda: 16)
    monkeypatch.setattr(threads, "cgroup_cpus", lambda root=None: None)
    monkeypatch.setattr(threads, "_default", 1)  # OMP_NUM_THREADS=1
    assert pool.usable_cpus() == 16
    monkeypatch.setattr(threads, "cgroup_cpus", lambda root=None: 2.5)
    assert pool.usable_cpus() == 2


# --- class 3: a confusion matrix of hundreds of classes --------------------------------------


def drawn(monkeypatch, matrix, classes) -> tuple[bytes, object]:
    """The PNG and the figure it was drawn from."""
    seen = []
    real = figures.to_png

    def capture(fig):
        seen.append((fig.get_size_inches().tolist(), fig.axes[0]))
        return real(fig)

    monkeypatch.setattr(figures, "to_png", capture)
    return figures.confusion(matrix, classes), seen[0]


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def test_a_confusion_matrix_of_500_classes_is_compact(monkeypatch):
    rng = np.random.default_rng(0)
    n = 500
    matrix = (np.eye(n, dtype=int) * 20 + rng.poisson(0.05, (n, n))).tolist()
    matrix[3][7] = 90  # the most confused pair, named under the image
    classes = [f"class number {i} with a long name $x$" for i in range(n)]
    started = time.perf_counter()
    png, (size, ax) = drawn(monkeypatch, matrix, classes)
    seconds = time.perf_counter() - started
    width, height = png_size(png)
    assert seconds < 20, f"{seconds:.1f} s"
    assert len(png) < 400_000 and width <= 1200 and height <= 1200, (len(png), width, height)
    assert size == [7.5, 7.2] and not ax.texts  # no text per cell
    assert len(ax.get_xticklabels()) < 20  # class indices, not 500 names
    note = ax.figure.texts[0].get_text()
    assert note.startswith("most confused") and "class number 3 " in note.split(";")[0]


def test_a_confusion_matrix_of_10_classes_keeps_its_layout(monkeypatch):
    n = 10
    matrix = (np.eye(n, dtype=int) * 5 + 1).tolist()
    classes = [f"c{i}" for i in range(n)]
    png, (size, ax) = drawn(monkeypatch, matrix, classes)
    assert png_size(png)[0] < 1000
    assert size == [0.5 * n + 2, (0.5 * n + 2) * 0.85]  # 0.5 inch a class, as before
    assert len(ax.texts) == n * n and ax.texts[0].get_text() == "6"  # the count in each cell
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert [t.get_text() for t in ax.get_yticklabels()] == classes


def test_the_compact_form_starts_above_the_cell_limit(monkeypatch):
    for n, cells in ((figures.CONFUSION_CELLS, True), (figures.CONFUSION_CELLS + 1, False)):
        matrix = np.eye(n, dtype=int).tolist()
        _, (_, ax) = drawn(monkeypatch, matrix, [str(i) for i in range(n)])
        assert bool(ax.texts) == cells, n
        monkeypatch.undo()
