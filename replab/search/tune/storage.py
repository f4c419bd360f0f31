"""The Optuna study behind a tune folder: storage, sampler, pruner and the workers' agreement."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, cast

from replab.errors import ConfigError, ReplabError
from replab.search.space import (
    Space,
    trial_config,
)
from replab.search.tune.settings import DB, TuneSettings, masked_url

# SQLAlchemy's name of a DB-API driver -> what to pip install for it
PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "mysqldb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysqlconnector": "mysql-connector-python",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
}
# the schemes that pick each PostgreSQL driver, for a fix that names an installed one
POSTGRES = {"psycopg": "postgresql+psycopg", "psycopg2": "postgresql+psycopg2"}
CONNECT_SECONDS = 30  # a PostgreSQL server that does not answer: refused after this long


def connect(url: str):
    """The Optuna storage at ``url``; a URL that does not parse, a driver that is missing and a
    server that cannot be reached are each one ReplabError naming the fix."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine: dict = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 120}}
    elif _driver(url)[1] in ("psycopg", "psycopg2") and "connect_timeout" not in url:
        engine["connect_args"] = {"connect_timeout": CONNECT_SECONDS}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except ImportError as err:  # Optuna's own message names no module: SQLAlchemy's does
        raise _missing_driver(url, err.__cause__ or err) from None
    except Exception as err:  # sqlalchemy and driver errors (bad URL, server down)
        raise ReplabError(
            f"cannot open the Optuna storage {masked_url(url)}: {str(err).splitlines()[0][:300]}",
            "write postgresql://, not postgres:// (SQLAlchemy dropped that name)"
            if url.startswith("postgres:")
            else "check the URL (e.g. postgresql+psycopg2://user:password@host:port/db, or "
            "sqlite:///file.db in a folder that exists) and that its server is up and reachable",
        ) from None


def _driver(url: str) -> tuple[str, str]:
    """(the URL's scheme, the DB-API driver SQLAlchemy loads for it), ("", "") if unknown.
    SQLAlchemy 2.1 loads psycopg (3) for postgresql:// and psycopg2 only for
    postgresql+psycopg2://; mysql:// loads mysqldb (mysqlclient)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        return parsed.drivername, str(parsed.get_dialect().driver)
    except Exception:  # not a URL SQLAlchemy knows: its own error says so when opened
        return "", ""


def _missing_driver(url: str, err: BaseException) -> ReplabError:
    import importlib.util

    scheme, driver = _driver(url)
    package = PACKAGES.get(driver, driver)
    problem = (
        f"cannot open the Optuna storage {masked_url(url)}: SQLAlchemy reads {scheme}:// "
        f"with the driver {driver}, which is not installed ({str(err).splitlines()[0][:200]})"
    )
    fix = f"pip install '{package}'"
    if scheme.startswith("postgresql"):
        other = [d for d in POSTGRES if d != driver and importlib.util.find_spec(d) is not None]
        if other:
            fix += f", or use the installed {other[0]}: begin the URL with {POSTGRES[other[0]]}://"
    return ReplabError(problem, fix)


def check_storage(settings: TuneSettings) -> None:
    """An explicit ``--storage`` opened, and the study it names checked to agree with these
    settings, before the study folder is made: a storage that fails leaves nothing behind."""
    if not settings.storage:
        return
    storage = connect(settings.storage)
    try:
        try:
            study_id = storage.get_study_id_from_name(settings.study_name)
        except KeyError:  # a new study
            return
        found = storage.get_study_user_attrs(study_id).get("replab_tune")
        if found is not None:
            _agree(settings, found, settings.storage)
    finally:
        storage.engine.dispose()


def _agree(settings: TuneSettings, found: dict, url: str) -> None:
    fingerprint = _fingerprint(settings)
    if found != fingerprint:
        differs = ", ".join(k for k in fingerprint if fingerprint[k] != found.get(k))
        raise ConfigError(
            f"study {settings.study_name!r} "
            f"in {masked_url(url)} was started with another {differs}",
            "join it with the same recipe, "
            "overrides, space and metric, or pick another --study-name",
        )


def open_study(study_dir: Path, settings: TuneSettings, space: Space):
    import optuna

    url = settings.storage or f"sqlite:///{(Path(study_dir) / DB).resolve()}"
    storage = connect(url)
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=settings.prune_startup, n_warmup_steps=settings.prune_warmup
        )
        if settings.prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        # check_settings has refused any other direction
        direction=cast(Literal["minimize", "maximize"], settings.direction),
        sampler=sampler_for(settings, 0),
        pruner=pruner,
        load_if_exists=True,
    )
    found = study.user_attrs.get("replab_tune")
    if found is None:
        study.set_user_attr("replab_tune", _fingerprint(settings))
        for params in settings.enqueued(space):  # once, by the worker that creates the study
            study.enqueue_trial(params, user_attrs={"enqueued": True})
    else:
        _agree(settings, found, url)
    return study


def _fingerprint(s: TuneSettings) -> dict:
    """What workers sharing a study must agree on (a data folder may differ between machines)."""
    config = trial_config(s.recipe, s.overrides, {})
    config.get("data", {}).pop("root", None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]
    return {"recipe": digest, "space": s.space, "metric": s.metric, "direction": s.direction}


def sampler_for(settings: TuneSettings, number: int):
    """TPE, seeded by the settings' seed plus the trial's number: reproducible for one worker,
    and a resumed (or second) worker does not repeat the random draws already made."""
    import optuna

    return optuna.samplers.TPESampler(seed=settings.seed + number)
