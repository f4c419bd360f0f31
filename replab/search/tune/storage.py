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


def open_study(study_dir: Path, settings: TuneSettings, space: Space):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = settings.storage or f"sqlite:///{(Path(study_dir) / DB).resolve()}"
    engine = (
        {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as err:  # sqlalchemy and driver errors (bad URL, server down, missing driver)
        raise ReplabError(
            f"cannot open the Optuna storage {masked_url(url)}: {str(err).splitlines()[0][:300]}",
            "check the URL (postgresql://user:password@host/db), "
            "that the server is up and its driver (psycopg2) installed",
        ) from None
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
    fingerprint = _fingerprint(settings)
    found = study.user_attrs.get("replab_tune")
    if found is None:
        study.set_user_attr("replab_tune", fingerprint)
        for params in settings.enqueued(space):  # once, by the worker that creates the study
            study.enqueue_trial(params, user_attrs={"enqueued": True})
    elif found != fingerprint:
        differs = ", ".join(k for k in fingerprint if fingerprint[k] != found.get(k))
        raise ConfigError(
            f"study {settings.study_name!r} "
            f"in {masked_url(url)} was started with another {differs}",
            "join it with the same recipe, "
            "overrides, space and metric, or pick another --study-name",
        )
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
