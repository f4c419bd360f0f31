"""Logistic regression's loss, the binary cross-entropy of one logit per image (Cox, "The
Regression Analysis of Binary Sequences", Journal of the Royal Statistical Society B 20,
1958)::

    L = mean_i -(y_i log sigmoid(s_i) + (1 - y_i) log(1 - sigmoid(s_i)))     (y_i in {0, 1})
      = mean_i log(1 + exp(-(2 y_i - 1) s_i))

computed stably by ``F.binary_cross_entropy_with_logits``; s > 0 means label 1. No options;
scores with more than one column are refused (use ``cross_entropy``).
"""

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
        # labels in the scores' dtype: float64 scores keep float64 (float() made it float32)
        return F.binary_cross_entropy_with_logits(scores.reshape(-1), labels.to(scores.dtype))
