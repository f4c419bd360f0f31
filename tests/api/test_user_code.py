"""Components from the user's own code (``model.encoder.name: mynets:MyEncoder``) and
third-party plugins under the ``replab.plugins`` entry point, loaded only when named."""

from __future__ import annotations

import sys
import textwrap

import pytest

from replab.cli import main
from replab.errors import ConfigError
from replab.models import MODELS
from replab.registry import load_plugins, plugins

FAST = ["trainer.epochs=2", "probe.enabled=false", "analysis.enabled=false"]

MYNETS = '''
import torch
from torch import nn

IMPORTED = True


class MyEncoder(nn.Module):
    """A user's encoder: replab passes in_shape; latent_dim is the recipe's."""

    def __init__(self, in_shape: tuple, latent_dim: int = 4, width: int = 16) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        n = 1
        for s in in_shape:
            n *= s
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(n, width), nn.ReLU(), nn.Linear(width, latent_dim)
        )

    def forward(self, x):
        return self.net(x)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(MYNETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mynets"
    sys.modules.pop("mynets", None)


def test_a_recipe_trains_the_users_encoder_by_its_import_path(user_module, tmp_path, capsys):
    assert "mynets" not in sys.modules  # imported only once a recipe names it
    runs = tmp_path / "runs"
    encoder = "model.encoder={name: 'mynets:MyEncoder', latent_dim: 5, width: 12}"
    assert main(["run", "digits-autoencoder", encoder, *FAST, "--runs-dir", str(runs)]) == 0
    assert "mynets" in sys.modules
    (run,) = runs.iterdir()
    assert "mynets:MyEncoder" in (run / "config.yaml").read_text()
    assert "test.mae" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, needle",
    [
        ("mynets:Missing", "module 'mynets' has no 'Missing'"),
        ("no_such_module_xyz:Enc", "cannot import 'no_such_module_xyz'"),
        ("not a path:Enc", "is not of the form package.module:Name"),
    ],
)
def test_a_bad_import_path_is_one_clear_error(user_module, tmp_path, capsys, name, needle):
    code = main(
        [
            "run",
            "digits-autoencoder",
            f"model.encoder={{name: '{name}'}}",
            *FAST,
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_wrong_keyword_arguments_are_checked_against_the_users_constructor(
    user_module, tmp_path, capsys
):
    override = "model.encoder={name: 'mynets:MyEncoder', widht: 3}"
    assert main(["run", "digits-autoencoder", override, *FAST, "--runs-dir", str(tmp_path)]) == 2
    assert "unknown key(s) 'widht'" in capsys.readouterr().err


def test_a_module_that_raises_on_import_is_reported_as_the_users(tmp_path, monkeypatch):
    (tmp_path / "broken_nets.py").write_text("raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="importing 'broken_nets' raised RuntimeError: no GPU"):
        MODELS.get("broken_nets:Enc", where="model.encoder")


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real installed distribution (its dist-info on sys.path) declaring a plugin."""
    (tmp_path / "plug_models.py").write_text(
        textwrap.dedent("""
        from torch import nn
        from replab.models import MODELS

        @MODELS.register("plugin_linear")
        class PluginLinear(nn.Linear):
            def __init__(self, in_shape: tuple, latent_dim: int = 4) -> None:
                super().__init__(in_shape[-1], latent_dim)
                self.latent_dim = latent_dim
    """)
    )
    info = tmp_path / "replab_plug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: replab-plug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[replab.plugins]\nplug = plug_models\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("plug_models", None)
    MODELS._entries.pop("plugin_linear", None)


def test_plugins_are_listed_without_being_imported(installed_plugin, capsys):
    assert ("plug", "plug_models", "replab-plug") in plugins()
    assert main(["plugins"]) == 0
    assert "plug_models" in capsys.readouterr().out
    assert "plug_models" not in sys.modules and "plugin_linear" not in MODELS


def test_a_named_plugin_is_loaded_and_registers_its_components(installed_plugin):
    assert load_plugins("plug") == ["plug"]
    assert "plugin_linear" in MODELS
    with pytest.raises(ConfigError, match="no installed replab plugin called 'other'"):
        load_plugins("plug,other")
