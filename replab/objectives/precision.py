"""The precision the losses compute in: no objective here, the one rule several share.

Under autocast a network hands bf16 or fp16 outputs to its loss; sums, norms, exponentials
and batch statistics over them lose what the loss measures, so a loss lifts its inputs to at
least float32 (``full_precision``). float64 inputs stay float64, so a test can compare a loss
with its reference without a float32 tolerance hiding a step.
"""

from __future__ import annotations

import torch


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in at least float32; float64 stays float64."""
    return t if t.dtype == torch.float64 else t.float()
