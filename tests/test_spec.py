"""The recipe spec: overrides, validation, and the errors a user sees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replab.errors import ConfigError
from replab.recipes import load_spec
from replab.spec import apply_override, spec_to_yaml, validate_spec

BASE = {"model": {"encoder": {"name": "mlp"}}, "objective": {"name": "l1"}}


def spec_with(*overrides: str):
    return load_spec(None, overrides, base={k: dict(v) for k, v in BASE.items()})


def test_overrides_are_typed_yaml_values():
    spec = spec_with(
        "trainer.epochs=3",
        "trainer.optimizer.lr=0.01",
        "model.encoder.hidden=[512,256]",
        "probe.enabled=false",
    )
    assert spec.trainer.epochs == 3
    assert spec.trainer.optimizer.lr == pytest.approx(0.01)
    assert spec.model.encoder.params["hidden"] == [512, 256]
    assert spec.probe.enabled is False


def test_misspelled_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        spec_with("trainer.epocs=3")
    message = err.value.message
    assert "unknown key 'trainer.epocs'" in message
    assert "epochs" in message and "batch_size" in message
    assert "Fix:" in message


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("trainer.epochs=three", "trainer.epochs"),
        ("trainer.optimizer.lr=-0.1", "greater than 0"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("data.val_fraction=1.5", "data.val_fraction"),
    ],
)
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as err:
        spec_with(override)
    assert needle in err.value.message


@pytest.mark.parametrize("override", ["trainer.epochs", "=3", "trainer..epochs=3", "1abc=2"])
def test_malformed_override_syntax(override):
    with pytest.raises(ConfigError, match="key.path=value"):
        spec_with(override)


def test_override_into_a_value_is_refused():
    with pytest.raises(ConfigError, match="is a value, not a section"):
        spec_with("trainer.epochs=3", "trainer.epochs.x=1")


def test_missing_required_sections():
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        validate_spec({"objective": {"name": "l1"}})


def test_recipe_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(listy)


def test_yaml_aliases_are_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["x","x","x"]\nb: &b [*a,*a,*a]\nc: [*b,*b,*b]\n')
    with pytest.raises(ConfigError, match="aliases"):
        load_spec(bomb)


def test_resolved_config_round_trips(tmp_path):
    spec = spec_with("trainer.epochs=7", "model.encoder.latent_dim=16")
    path = tmp_path / "config.yaml"
    path.write_text(spec_to_yaml(spec))
    again = load_spec(path)
    assert again == spec


@given(st.integers(min_value=1, max_value=100_000))
def test_any_valid_epoch_count_round_trips(epochs):
    assert spec_with(f"trainer.epochs={epochs}").trainer.epochs == epochs


@given(st.text(max_size=40))
def test_override_parser_never_crashes(text):
    """Any string either applies or raises ConfigError; never another exception."""
    raw = {"trainer": {}}
    try:
        apply_override(raw, text)
    except ConfigError:
        return
    assert "=" in text


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_learning_rate_validation_matches_the_rule(lr):
    if 0 < lr <= 10:
        assert spec_with(f"trainer.optimizer.lr={lr!r}").trainer.optimizer.lr == pytest.approx(lr)
    else:
        with pytest.raises(ConfigError):
            spec_with(f"trainer.optimizer.lr={lr!r}")


def test_task_is_a_name_or_a_name_with_options():
    plain = load_spec("c1-cifar10-cnn")
    assert plain.task.name == "classify" and plain.task.params == {}
    assert "\ntask: classify\n" in spec_to_yaml(plain)  # saved configs keep the one-word form
    rotation = load_spec("c2-cifar10-rotation", ["task.angles=[0,90,180,270]"])
    assert rotation.task.name == "rotation" and rotation.task.params == {
        "angles": [0, 90, 180, 270]
    }
    assert validate_spec(yaml_round_trip(spec_to_yaml(rotation))) == rotation


def yaml_round_trip(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.refit=true"],
        ["data.refit=true", "trainer.keep=last", "trainer.early_stopping={patience: 2}"],
    ],
)
def test_refit_refuses_to_pick_an_epoch_by_images_it_trains_on(overrides):
    with pytest.raises(ConfigError, match="trainer.keep: last and no trainer.early_stopping"):
        spec_with(*overrides)
    assert spec_with("data.refit=true", "trainer.keep=last").data.refit is True
