"""Per-class classification metrics from label vectors, computed with torch.

Probe accuracy alone hides which classes an encoder confuses; the per-class table and the
confusion matrix show it. Written in torch (not sklearn) so labels can stay on the device,
and tested against scikit-learn so the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ClassificationMetrics:
    """Scores aligned with ``classes``; ``confusion[i][j]`` counts true class i predicted as j."""

    classes: list
    accuracy: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    macro_f1: float
    confusion: list[list[int]]


def classification_report(y_true, y_pred, classes: Sequence) -> ClassificationMetrics:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    Labels are integer indices into ``classes`` (0 .. len(classes) - 1). A class that is
    never predicted (or never present) scores 0 rather than NaN, as sklearn's
    ``zero_division=0`` does, so one silent class cannot break a report.
    """
    confusion = confusion_matrix(y_true, y_pred, len(classes)).double()
    true_positive = confusion.diag()
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = _safe_ratio(true_positive, predicted)
    recall = _safe_ratio(true_positive, support)
    f1 = _safe_ratio(2 * precision * recall, precision + recall)
    total = support.sum().item()
    return ClassificationMetrics(
        classes=list(classes),
        accuracy=true_positive.sum().item() / total if total else 0.0,
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        support=[int(s) for s in support.tolist()],
        macro_f1=f1.mean().item(),
        confusion=confusion.long().tolist(),
    )


def confusion_matrix(y_true, y_pred, num_classes: int) -> torch.Tensor:
    """``num_classes`` x ``num_classes`` counts (rows: true, columns:
    predicted), via one bincount."""
    y_true = _labels(y_true)
    y_pred = _labels(y_pred).to(y_true.device)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {tuple(y_true.shape)} labels but y_pred has {tuple(y_pred.shape)}"
        )
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}")
    flat = y_true * num_classes + y_pred
    return (
        torch.bincount(flat, minlength=num_classes * num_classes)
        .view(num_classes, num_classes)
        .cpu()
    )


def _labels(y) -> torch.Tensor:
    tensor = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    return tensor.reshape(-1).long()


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))
