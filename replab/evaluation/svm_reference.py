"""A scikit-learn LinearSVC on the same data as an SGD-trained SVM: the optimum SGD aims at.

Study D trains a linear SVM by SGD on ``C * mean(hinge) + (wd / 2) * ||theta||^2`` (the hinge
objective plus the optimizer's weight decay, which also decays the bias). Divided by ``wd``
that is LinearSVC's ``0.5 * ||theta||^2 + C_sk * sum(hinge)`` with ``C_sk = C / (wd * n)``;
liblinear also penalises its intercept (fit as one more feature), as weight decay does the
bias. So LinearSVC at ``C_sk`` solves the very problem SGD was run on, to convergence.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from replab.io import import_limited


@dataclass
class SVCFit:
    label: str
    C: float
    accuracy: dict[str, float]  # by split name
    iterations: int
    max_iter: int
    converged: bool
    warning: str | None  # scikit-learn's ConvergenceWarning text, kept for the report
    # C * mean(hinge) + (wd/2) ||theta||^2 in SGD's units, or nan without weight_decay
    objective: float
    norm: float  # ||(w, b)|| of the fitted model
    seconds: float


def equivalent_C(C: float, weight_decay: float, n_train: int) -> float:
    """LinearSVC's C for SGD's ``C * mean(hinge) + (weight_decay / 2) ||theta||^2``."""
    if weight_decay <= 0 or n_train <= 0:
        raise ValueError("the equivalence needs weight_decay > 0 and at least one training point")
    return C / (weight_decay * n_train)


def fit_linear_svc(
    label: str,
    C: float,
    train: tuple[np.ndarray, np.ndarray],
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    max_iter: int = 100_000,
    sgd: tuple[float, float] | None = None,
) -> SVCFit:
    """Fit ``LinearSVC(loss="hinge", C=C)`` on ``train`` (X, labels 0/1) and score every split.

    ``sgd`` = (C, weight_decay) of the SGD run, to state the fitted model's objective in its units.
    """
    ConvergenceWarning = import_limited("sklearn.exceptions").ConvergenceWarning  # noqa: N806
    LinearSVC = import_limited("sklearn.svm").LinearSVC  # noqa: N806

    x, y = train
    start = time.perf_counter()
    model = LinearSVC(loss="hinge", C=C, dual=True, max_iter=max_iter, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    seconds = time.perf_counter() - start
    message = next(
        (str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)), None
    )
    iterations = int(np.max(model.n_iter_))
    accuracy = {
        name: float((model.predict(sx) == sy).mean())
        for name, (sx, sy) in {"train": train, **splits}.items()
    }
    objective = (
        sgd_objective(model.coef_.ravel(), float(model.intercept_[0]), x, y, *sgd)
        if sgd
        else float("nan")
    )
    norm = float(np.sqrt((model.coef_**2).sum() + (model.intercept_**2).sum()))
    return SVCFit(
        label,
        C,
        accuracy,
        iterations,
        max_iter,
        message is None and iterations < max_iter,
        message,
        objective,
        norm,
        seconds,
    )


def sgd_objective(
    w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray, C: float, weight_decay: float
) -> float:
    """``C * mean(max(0, 1 - s f(x))) + (wd/2)(||w||^2 + b^2)`` with s = -1/+1 for labels 0/1."""
    signs = 2.0 * y - 1.0
    hinge = np.maximum(0.0, 1.0 - signs * (x @ w + b)).mean()
    return float(C * hinge + 0.5 * weight_decay * (w @ w + b * b))
