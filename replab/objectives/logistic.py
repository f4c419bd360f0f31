import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("logistic")
class LogisticLoss(nn.Module):
    """Binary cross-entropy on ONE score per image: logistic regression (study F1).

    The score is a logit, > 0 meaning the second class (label 1); pair it with
    ``linear_head`` ``binary: true``. For two or more columns use ``cross_entropy``.
    """

    target = "label"

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if scores.ndim == 2 and scores.shape[1] != 1:
            raise ConfigError(
                f"objective 'logistic' needs one score per image, the head gives {scores.shape[1]}",
                "set model.head.binary=true, or use objective cross_entropy for several classes",
            )
        return F.binary_cross_entropy_with_logits(scores.reshape(-1), labels.float())
