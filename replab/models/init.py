"""Weight initialisation schemes a recipe can ask for (``model.init``)."""

from __future__ import annotations

from torch import nn

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise ``model``'s linear and conv layers in place.

    ``default`` keeps PyTorch's own (uniform, scaled so ReLU stacks shrink the signal);
    ``kaiming`` draws He-normal weights for ReLU (std sqrt(2 / fan_in)) and zero biases, as
    report 003 says it does; the recipe's spec limits ``scheme`` to these two (``ModelSpec.init``).
    """
    if scheme == "default":
        return model
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
