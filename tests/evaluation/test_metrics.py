"""classification_report against scikit-learn: per-class scores, macro F1, confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from replab.evaluation import ClassificationMetrics, classification_report

CLASSES = ["zero", "one", "two", "three", "four"]


def _sklearn(y_true, y_pred, num_classes):
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "macro_f1": f1.mean(),
        "confusion": sk_confusion_matrix(y_true, y_pred, labels=labels),
    }


def _assert_matches(report: ClassificationMetrics, expected: dict) -> None:
    assert report.accuracy == pytest.approx(expected["accuracy"], abs=1e-12)
    for key in ("precision", "recall", "f1"):
        np.testing.assert_allclose(getattr(report, key), expected[key], atol=1e-12, err_msg=key)
    assert report.support == expected["support"].tolist()
    assert report.macro_f1 == pytest.approx(expected["macro_f1"], abs=1e-12)
    assert report.confusion == expected["confusion"].tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_labels_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, 400)
    # Mostly right, partly random: every score lands strictly between 0 and 1.
    y_pred = np.where(rng.random(400) < 0.6, y_true, rng.integers(0, 5, 400))
    report = classification_report(torch.from_numpy(y_true), torch.from_numpy(y_pred), CLASSES)
    _assert_matches(report, _sklearn(y_true, y_pred, 5))
    assert report.classes == CLASSES
    assert 0 < report.accuracy < 1


def test_class_never_predicted_scores_zero_without_crashing():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 5, 300)
    y_pred = rng.integers(0, 4, 300)  # class 4 never predicted
    report = classification_report(y_true, y_pred, CLASSES)  # numpy inputs work too
    assert report.precision[4] == 0 and report.recall[4] == 0 and report.f1[4] == 0
    assert report.support[4] == (y_true == 4).sum() > 0
    assert all(np.isfinite(report.f1)) and np.isfinite(report.macro_f1)
    _assert_matches(report, _sklearn(y_true, y_pred, 5))


def test_class_absent_from_both_has_zero_support():
    y_true = np.array([0, 1, 2, 2, 1, 0])
    y_pred = np.array([0, 2, 2, 2, 1, 1])
    report = classification_report(y_true, y_pred, CLASSES)
    assert report.support == [2, 2, 2, 0, 0]
    assert report.confusion[0] == [1, 1, 0, 0, 0]  # rows are true labels, columns predictions
    _assert_matches(report, _sklearn(y_true, y_pred, 5))


def test_perfect_predictions():
    y = torch.arange(10) % 5
    report = classification_report(y, y.clone(), CLASSES)
    assert report.accuracy == 1 and report.macro_f1 == 1 and report.f1 == [1.0] * 5
    assert report.confusion == (2 * np.eye(5, dtype=int)).tolist()


def test_bad_labels_are_rejected():
    with pytest.raises(ValueError, match="outside"):
        classification_report([0, 5], [0, 1], CLASSES)
    with pytest.raises(ValueError, match="labels"):
        classification_report([0, 1, 2], [0, 1], CLASSES)
