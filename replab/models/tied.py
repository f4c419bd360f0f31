"""Weight-tied MLP decoder (study D4): the encoder's Linear weights, transposed, run backwards."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.models.layers import activation as make_activation
from replab.models.layers import flat_size
from replab.models.registry import MODELS


@MODELS.register("tied_mlp_decoder")
class TiedMLPDecoder(nn.Module):
    """Decode with the encoder's own Linear weights transposed, as in report 002's
    ``TransposedAutoEncoder``: for an ``mlp`` encoder 3072 -> 128 -> 32 the decoder is
    ``F.linear(z, W2.t(), b1)``, activation, ``F.linear(h, W1.t(), b2)``, then
    ``output_activation`` (none in report 002). Only the biases are the decoder's own
    (zero-initialised, as in the report), so D4 has 400,672 parameters against D3's 797,984.

    ``encoder`` is passed by the task (context key, not a config key). The tied weights stay
    registered only in the encoder: ``parameters()``/``state_dict()`` of the decoder hold
    just its biases, the optimizer steps each shared weight once with the sum of both uses'
    gradients, and a checkpoint stores it once.
    """

    _tied: tuple[nn.Linear, ...]  # set with object.__setattr__ in __init__ (see there)

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, ...],
        encoder: nn.Module | None = None,
        activation: str = "relu",
        output_activation: str | None = None,
    ) -> None:
        super().__init__()
        linears = (
            [m for m in encoder.modules() if isinstance(m, nn.Linear)]
            if encoder is not None
            else []
        )
        if not linears:
            raise ConfigError(
                "tied_mlp_decoder needs an MLP encoder to tie to", "use encoder: {name: mlp, ...}"
            )
        sizes = [linears[0].in_features] + [layer.out_features for layer in linears]
        chained = all(
            a.out_features == b.in_features for a, b in zip(linears[:-1], linears[1:], strict=True)
        )
        if not chained or sizes[0] != flat_size(out_shape) or sizes[-1] != latent_dim:
            raise ConfigError(
                f"tied_mlp_decoder needs an MLP encoder to tie to: the encoder's Linear layers "
                f"({' -> '.join(map(str, sizes))}) "
                f"do not map the {flat_size(out_shape)} input values "
                f"to the {latent_dim}-d latent",
                "use encoder: {name: mlp, ...}",
            )
        self.out_shape = tuple(out_shape)
        # The encoder's Linear modules in decoding order (last encoder layer first). Stored as a
        # plain tuple with object.__setattr__ so nn.Module does NOT register them (or their
        # weights) as this decoder's submodules: the shared weights must appear once in
        # parameters(), state_dict() and the optimizer. Modules, not Parameters, are kept so
        # that .to()/load_state_dict(), which update or swap the encoder's weights, are
        # followed; deepcopy of the whole AutoEncoder keeps the sharing (deepcopy's memo).
        object.__setattr__(self, "_tied", tuple(reversed(linears)))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(layer.in_features)) for layer in self._tied
        )
        self.hidden_activation = make_activation(activation)
        self.output_activation = make_activation(output_activation)

    def weights(self) -> list[torch.Tensor]:
        """The tied weights in decoding order: the encoder layers' own ``weight`` Parameters."""
        return [layer.weight for layer in self._tied]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        last = len(self._tied) - 1
        for i, (layer, bias) in enumerate(zip(self._tied, self.biases, strict=True)):
            h = F.linear(h, layer.weight.t(), bias)
            if i < last:
                h = self.hidden_activation(h)
        return self.output_activation(h).view(-1, *self.out_shape)
