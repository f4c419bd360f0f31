"""Every objective's constructor defaults pinned to the published values (issue 30): in the
signature, in the built object, and in the module docstring's words. A changed default
coefficient fails here even where a value test passes its options explicitly; a new objective
must add its row."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from replab.objectives import OBJECTIVES
from replab.objectives.triplet import mine_triplets

# name -> {option: published default}; the source of each value is in the module docstring
PUBLISHED: dict[str, dict[str, object]] = {
    "nt_xent": {"temperature": 0.5},  # SimCLR, CIFAR-10
    "barlow_twins": {"lambd": 0.0051, "eps": 1e-5},
    "vicreg": {"sim": 25.0, "std": 25.0, "cov": 1.0, "gamma": 1.0, "eps": 1e-4},
    "byol": {"symmetric": True, "momentum": 0.996, "momentum_schedule": "cosine"},
    "moco": {
        "temperature": 0.2,
        "queue": 65536,
        "symmetric": False,
        "momentum": 0.999,
        "momentum_schedule": "constant",
    },
    "dino": {
        "student_temp": 0.1,
        "teacher_temp": 0.07,
        "warmup_teacher_temp": 0.04,
        "warmup_fraction": 0.3,  # DINO's 30 warm-up epochs of 100
        "center_momentum": 0.9,
        "momentum": 0.996,
        "momentum_schedule": "cosine",
    },
    "simsiam": {"symmetric": True},
    "mae": {"norm_pix": False, "eps": 1e-6},  # the released code's defaults
    "triplet": {"margin": 1.0, "squared": False},  # torch.nn.TripletMarginLoss, report 004
    "pair_margin": {"margin": 2.0},  # report 001's M
    "hinge": {"C": 1.0, "margin": 1.0},
    "cross_entropy": {"label_smoothing": 0.0},
    "elbo": {"reconstruction": "mse", "kl_weight": 1.0, "reduction": "sum"},
    "bce": {"logits": False},
    "mse": {},
    "l1": {},
    "logistic": {},
}

# the attribute a built objective keeps an option under, where it is not the option's name
ATTRIBUTE = {("moco", "queue"): "size"}

TARGET = {
    "nt_xent": "views",
    "barlow_twins": "views",
    "vicreg": "views",
    "byol": "momentum",
    "moco": "momentum",
    "dino": "momentum",
    "simsiam": "views",
    "mae": "masked",
    "triplet": "triplets",
    "pair_margin": "pairs",
    "hinge": "label",
    "cross_entropy": "label",
    "logistic": "label",
    "elbo": "posterior",
    "bce": "input",
    "mse": "input",
    "l1": "input",
}


def _defaults(cls) -> dict[str, object]:
    """The options a recipe may set: the constructor's keyword parameters (as the registry
    reads them; nn.Module's own ``*args, **kwargs`` are none)."""
    parameters = [
        p
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]  # not self
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert all(p.default is not p.empty for p in parameters), "every option needs a default"
    return {p.name: p.default for p in parameters}


def test_every_registered_objective_has_its_defaults_pinned():
    assert set(OBJECTIVES.names()) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_signature_defaults_are_the_published_ones(name):
    defaults = _defaults(OBJECTIVES.get(name))
    assert defaults == PUBLISHED[name]
    for option, value in defaults.items():  # 25 is not 25.0, True is not 1
        assert type(value) is type(PUBLISHED[name][option]), option


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_built_objective_keeps_the_published_defaults(name):
    built = OBJECTIVES.build(name, {}, where="test")
    for option, value in PUBLISHED[name].items():
        kept = getattr(built, ATTRIBUTE.get((name, option), option))
        assert kept == value and type(kept) is type(value), option
    assert type(built).target == TARGET[name]
    assert built.training  # a built objective starts in training mode, like any module


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_module_docstring_gives_the_paper_and_every_option(name):
    module = importlib.import_module(inspect.getmodule(OBJECTIVES.get(name)).__name__)
    doc = module.__doc__ or ""
    assert re.search(r"\b(19|20)\d\d\b", doc), "the paper's year"
    assert "L = " in doc or "loss = " in doc, "the formula"
    for option in PUBLISHED[name]:
        assert option in doc, option
    assert all(len(line) <= 100 for line in doc.splitlines())


def test_the_package_and_registry_modules_say_what_they_hold():
    for module in ("replab.objectives", "replab.objectives.registry"):
        assert "OBJECTIVES" in (importlib.import_module(module).__doc__ or "")


def test_triplet_mining_defaults_to_random():
    assert inspect.signature(mine_triplets).parameters["mining"].default == "random"
    assert inspect.signature(mine_triplets).parameters["squared"].default is False
