"""The weight-tied MLP autoencoder of report 002 (study D4) against the untied one (D3)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.models import MODELS
from replab.models.tied import TiedMLPDecoder
from replab.spec import Component, ModelSpec
from replab.tasks.autoencode import Autoencode
from replab.training.optimizers import trainable

SHAPE = (3, 32, 32)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def _task(decoder: str = "tied_mlp_decoder", seed: int = 0, **decoder_params):
    torch.manual_seed(seed)
    params = {"hidden": [128], "output_activation": None} if decoder == "mlp_decoder" else {}
    spec = ModelSpec(
        encoder=Component(name="mlp", hidden=[128], latent_dim=32),
        decoder=Component(name=decoder, **{**params, **decoder_params}),
    )
    return Autoencode.from_spec(spec, Component(name="mse"), SHAPE, 10)


def _linears(model):
    return [m for m in model.encoder.net if isinstance(m, torch.nn.Linear)]


def test_d3_untied_autoencoder_has_the_reports_797984_parameters():
    assert n_params(_task("mlp_decoder").model) == 797_984


def test_d4_tied_autoencoder_has_the_reports_400672_parameters():
    model = _task().model
    assert isinstance(model.decoder, TiedMLPDecoder)
    assert n_params(model) == 400_672
    # the shared weights are not the decoder's parameters at all: only its two biases are
    # (parameters() would hide a double registration by de-duplicating, so check directly)
    assert [tuple(p.shape) for p in model.decoder.parameters()] == [(128,), (3072,)]
    assert n_params(model.decoder) == 128 + 3072
    assert (
        len(list(model.parameters())) == 6
        and len(list(model.named_parameters(remove_duplicate=False))) == 6
    )
    assert sorted(model.decoder.state_dict()) == ["biases.0", "biases.1"]


def test_decoder_weights_share_storage_with_the_encoder():
    model = _task().model
    first, second = _linears(model)
    assert (
        model.decoder.weights()[0] is second.weight and model.decoder.weights()[1] is first.weight
    )
    assert model.decoder.weights()[0].data_ptr() == second.weight.data_ptr()
    assert model.decoder.weights()[1].data_ptr() == first.weight.data_ptr()
    z = torch.randn(4, 32)
    before = model.decoder(z)
    with torch.no_grad():
        first.weight.mul_(2.0)  # in place, on the encoder
    after = model.decoder(z)
    assert not torch.allclose(before, after)
    b1, b2 = model.decoder.biases
    manual = F.linear(F.relu(F.linear(z, second.weight.t(), b1)), first.weight.t(), b2).view(
        -1, *SHAPE
    )
    torch.testing.assert_close(after, manual)


def _untied(x, w1e, b1, w2e, b2, w2d, c1, w1d, c2):
    """Report 002's TransposedAutoEncoder with every use of a weight its own leaf tensor."""
    z = F.linear(F.relu(F.linear(x.flatten(1), w1e, b1)), w2e, b2)
    return (F.relu(z @ w2d + c1) @ w1d + c2).view(-1, *SHAPE)


def test_one_optimizer_step_moves_the_shared_weight_once_by_both_gradients():
    task = _task()
    model = task.model.double()
    first, second = _linears(model)
    x = torch.rand(8, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    # the reference: the same numbers, but the encoder and decoder copies of W1, W2 untied
    leaves = [
        t.detach().clone().requires_grad_(True)
        for t in (
            first.weight,
            first.bias,
            second.weight,
            second.bias,
            second.weight,
            model.decoder.biases[0],
            first.weight,
            model.decoder.biases[1],
        )
    ]
    reference = F.mse_loss(_untied(x, *leaves), x)
    g = torch.autograd.grad(reference, leaves)
    assert (
        g[0].abs().sum() > 0
        and g[6].abs().sum() > 0
        and g[2].abs().sum() > 0
        and g[4].abs().sum() > 0
    )
    # a tied weight's gradient: the sum over its two uses
    want_w1, want_w2 = g[0] + g[6], g[2] + g[4]

    lr = 0.1
    optimizer = torch.optim.SGD(trainable(model), lr=lr)
    assert len(optimizer.param_groups[0]["params"]) == 6
    old_w1, old_w2 = first.weight.detach().clone(), second.weight.detach().clone()
    optimizer.zero_grad()
    loss = task.step(x, torch.zeros(8, dtype=torch.long))["loss"]
    torch.testing.assert_close(loss, reference)
    loss.backward()
    torch.testing.assert_close(first.weight.grad, want_w1)
    torch.testing.assert_close(second.weight.grad, want_w2)
    torch.testing.assert_close(model.decoder.biases[0].grad, g[5])
    torch.testing.assert_close(model.decoder.biases[1].grad, g[7])
    optimizer.step()
    torch.testing.assert_close(first.weight.detach(), old_w1 - lr * want_w1)  # once, not twice
    torch.testing.assert_close(second.weight.detach(), old_w2 - lr * want_w2)
    assert model.decoder.weights()[1] is first.weight  # still tied after the step


def test_state_dict_round_trip():
    model = _task(seed=0).model
    with torch.no_grad():
        for bias in model.decoder.biases:
            bias.normal_()  # not the zeros a fresh model starts with
    state = model.state_dict()
    assert not [k for k in state if k.startswith("decoder.") and "bias" not in k]
    assert len(state) == 6
    fresh = _task(seed=1).model
    x = torch.rand(3, *SHAPE)
    assert not torch.allclose(fresh(x), model(x))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    first = _linears(fresh)[0]
    assert fresh.decoder.weights()[1] is first.weight  # the loaded model is still tied


def test_deepcopy_keeps_the_copy_tied_to_its_own_encoder():
    model = _task().model
    clone = copy.deepcopy(model)
    first = _linears(clone)[0]
    assert clone.decoder.weights()[1] is first.weight
    assert first.weight.data_ptr() != _linears(model)[0].weight.data_ptr()


def test_no_output_activation_by_default():
    model = _task().model
    out = model(torch.rand(4, *SHAPE))
    assert out.shape == (4, *SHAPE) and out.min() < 0  # not squashed into [0, 1]
    sigmoid = _task(output_activation="sigmoid").model(torch.rand(4, *SHAPE))
    assert sigmoid.min() >= 0 and sigmoid.max() <= 1


def test_other_decoders_ignore_the_encoder_context():
    # the new context key reaches only constructors that take it
    assert n_params(_task("mlp_decoder").model.decoder) == 32 * 128 + 128 + 128 * 3072 + 3072


def test_missing_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="needs an MLP encoder to tie to") as err:
        MODELS.build("tied_mlp_decoder", {}, where="model.decoder", latent_dim=32, out_shape=SHAPE)
    assert "name: mlp" in str(err.value)
    with pytest.raises(ConfigError, match="needs an MLP encoder to tie to"):
        TiedMLPDecoder(32, SHAPE, encoder=torch.nn.Sequential(torch.nn.ReLU()))


def test_an_encoder_whose_linears_do_not_span_image_to_latent_is_a_config_error():
    spec = ModelSpec(
        encoder=Component(name="conv", latent_dim=32), decoder=Component(name="tied_mlp_decoder")
    )
    with pytest.raises(ConfigError, match="needs an MLP encoder to tie to"):
        Autoencode.from_spec(spec, Component(name="mse"), SHAPE, 10)
