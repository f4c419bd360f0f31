"""Property-based tests of the recipe parser and the override syntax: whatever the text, the
result is a validated spec or a ConfigError (never another exception), and valid overrides
round-trip through the saved config.yaml."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replab.errors import ConfigError
from replab.recipes import load_spec
from replab.spec import ExperimentSpec, apply_override, parse_yaml, spec_to_yaml, validate_spec

BASE = {
    "model": {"encoder": {"name": "mlp"}, "decoder": {"name": "mlp_decoder"}},
    "objective": {"name": "l1"},
}
KEYS = [
    "trainer",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "model",
    "encoder",
    "hidden",
    "latent_dim",
    "data",
    "val_fraction",
    "seed",
    "name",
    "probe",
    "enabled",
    "analysis",
    "tsne",
    "report",
    "reference",
    "task",
    "x",
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def base() -> dict:
    return json.loads(json.dumps(BASE))


def spec_or_config_error(raw_or_overrides) -> ExperimentSpec | None:
    try:
        if isinstance(raw_or_overrides, list):
            return load_spec(None, raw_or_overrides, base=base())
        return validate_spec(raw_or_overrides)
    except ConfigError as err:
        assert err.message and "Fix:" in err.message
        return None


key_paths = st.lists(
    st.sampled_from(KEYS) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    min_size=1,
    max_size=4,
).map(".".join)
yaml_values = st.sampled_from(
    [
        "3",
        "-1",
        "0",
        "1e99",
        ".inf",
        ".nan",
        "null",
        "true",
        "[]",
        "{}",
        "[1, -2]",
        "{a: 1}",
        "'x'",
        "&a [*a]",
        "!!python/name:os.system",
        "[",
        "}",
        ": :",
        "\x00",
        "0x10",
        "1_000",
        "~",
    ]
)
overrides = st.tuples(
    key_paths, st.sampled_from(["=", "= ", "==", ":", ""]), yaml_values | st.text(max_size=30)
).map("".join)


@SETTINGS
@given(st.lists(overrides, max_size=4))
def test_any_overrides_give_a_spec_or_a_config_error(texts):
    spec_or_config_error(texts)


@SETTINGS
@given(st.text(max_size=60))
def test_any_text_as_an_override_gives_a_spec_or_a_config_error(text):
    spec_or_config_error([text])


json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10)
)
json_trees = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), json_trees, max_size=5))
def test_any_recipe_mapping_gives_a_spec_or_a_config_error(extra):
    spec_or_config_error({**base(), **extra})


@SETTINGS
@given(st.text(max_size=200))
def test_any_recipe_text_parses_to_yaml_or_a_config_error(text):
    with contextlib.suppress(ConfigError):
        parse_yaml(text, "recipe")


printable = st.characters(
    categories=["L", "N", "P", "S", "Zs"], exclude_characters="\x85\u2028\u2029\ufeff"
)


@SETTINGS
@given(
    epochs=st.integers(1, 100_000),
    lr=st.floats(min_value=1e-8, max_value=10, allow_nan=False),
    hidden=st.lists(st.integers(1, 4096), max_size=4),
    enabled=st.booleans(),
    name=st.text(printable, min_size=1, max_size=40),
    seed=st.integers(0, 2**63 - 1),
)
def test_valid_overrides_apply_and_round_trip_through_config_yaml(
    tmp_path_factory, epochs, lr, hidden, enabled, name, seed
):
    spec = load_spec(
        None,
        [
            f"trainer.epochs={epochs}",
            f"trainer.optimizer.lr={lr!r}",
            f"model.encoder.hidden={json.dumps(hidden)}",
            f"probe.enabled={str(enabled).lower()}",
            f"name={json.dumps(name, ensure_ascii=False)}",
            f"seed={seed}",
        ],
        base=base(),
    )
    assert (
        spec.trainer.epochs,
        spec.trainer.optimizer.lr,
        spec.model.encoder.params["hidden"],
        spec.probe.enabled,
        spec.name,
        spec.seed,
    ) == (epochs, pytest.approx(lr), hidden, enabled, name, seed)
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(spec_to_yaml(spec), encoding="utf-8")
    assert load_spec(path) == spec


@SETTINGS
@given(key_paths, st.integers(-5, 5))
def test_an_override_sets_exactly_its_key(key, value):
    raw: dict = {}
    try:
        apply_override(raw, f"{key}={value}")
    except ConfigError:
        pytest.fail("a well-formed key path on an empty mapping always applies")
    node = raw
    for part in key.split("."):
        node = node[part]
    assert node == value
