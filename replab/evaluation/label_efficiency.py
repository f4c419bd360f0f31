"""How few labels a latent space needs: accuracy against labels per class.

One full-label probe is one point. The self-supervised literature reads a representation by
how its accuracy falls as labels get scarce (SimCLR and BYOL at 1% and 10% of ImageNet's
labels; MSN and iBOT at 1, 2 and 5 images per class; VISSL's low-shot protocol over several
draws). Here, for each k in ``shots``:

* ``draws`` seeded, stratified draws of k labelled train rows per class. Draw d keeps one
  shuffled order per class and takes its first k rows, so the k = 2 rows of draw d contain its
  k = 1 row: the curve of one draw moves only because labels are added. The draws depend
  only on the labels and the seed, so every encoder (and the raw pixels) of one seed is
  scored on the same rows: differences between encoders are paired.
* a logistic-regression probe (multinomial, L2, scikit-learn's objective with C = 1) fitted on
  those rows by full-batch L-BFGS, on latents z-scored with the statistics of the whole train
  split (its images are there without labels: only the labels are scarce);
* a cosine kNN vote with min(knn_k, k) neighbours among those rows (a 20-neighbour vote among
  10 rows would be a vote of every row);

each scored on the whole test split. The summary number is the area under the curve over
log-shots, normalised by the log range: the mean accuracy along a log axis of label budgets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from replab.evaluation.separability import knn_accuracy

SHOTS = (1, 2, 5, 10, 25, 100)
C = 1.0  # scikit-learn's default inverse L2 strength: the penalty is |W|^2 / (2C)
MAX_ITER = 200  # L-BFGS iterations: converged well before on 1,000 rows (tests check the fit)
# Stop when no gradient entry of the mean objective exceeds this: the coefficients then agree
# with scikit-learn's to 5e-3 (tests), the accuracies to one test image
TOLERANCE = 3e-6


@dataclass
class Curve:
    """One probe's accuracies: ``draws[k]`` per draw at k labels per class; ``full`` the
    full-label probe's accuracy, the curve's last point (None when none was trained)."""

    draws: dict[int, list[float]]
    full: float | None = None

    @property
    def shots(self) -> list[int]:
        return sorted(self.draws)

    def mean(self, k: int) -> float:
        return float(np.mean(self.draws[k]))

    def std(self, k: int) -> float:
        return float(np.std(self.draws[k]))

    def auc(self) -> float:
        """Mean accuracy over log(k): the trapezoid area divided by the log range."""
        return area(self.shots, [self.mean(k) for k in self.shots])


def area(shots: list[int], values: list[float]) -> float:
    """The normalised area under ``values`` over log ``shots`` (one shot: its value)."""
    if len(shots) == 1:
        return float(values[0])
    x = np.log(np.asarray(shots, dtype=float))
    y = np.asarray(values, dtype=float)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


@dataclass
class Curves:
    """The linear and kNN curves of one space, on the same draws."""

    linear: Curve
    knn: Curve
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def zscored(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """``train`` and ``others`` z-scored per dimension with ``train``'s statistics (a
    dimension constant over train is divided by 1e-6, not 0)."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return [(z - mean) / std for z in (train, *others)]


def shot_indices(labels: torch.Tensor, shots: list[int], draws: int, seed: int):
    """``{k: [index tensor per draw]}``: k rows of every class, nested over k within a draw.

    A class with fewer than k rows gives all it has (the notes of ``label_curves`` say so)."""
    y = labels.cpu().numpy()
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    out: dict[int, list[torch.Tensor]] = {k: [] for k in shots}
    for d in range(draws):
        rng = np.random.default_rng([seed, d, 0x5107])  # one stream per draw, any seed
        orders = [rng.permutation(m) for m in members]
        for k in shots:
            rows = np.sort(np.concatenate([o[:k] for o in orders]))
            out[k].append(torch.from_numpy(rows))
    return out


def logistic_fit(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    c: float = C,
    max_iter: int = MAX_ITER,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) minimising sum_i CE(x_i W + b, y_i) + |W|^2 / (2c): scikit-learn's multinomial
    ``LogisticRegression(C=c)`` objective (the intercept unpenalised), by L-BFGS in float64,
    from zero or from ``start`` (the objective is convex: the start changes only how long)."""
    x64 = x.to(torch.float64)
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, device=x.device)
    b = torch.zeros(num_classes, dtype=torch.float64, device=x.device)
    if start is not None:
        w, b = start[0].clone(), start[1].clone()
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=TOLERANCE,
        tolerance_change=1e-12,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    n = len(x64)

    def closure() -> torch.Tensor:
        # the objective above divided by n: the same minimiser, with a gradient whose scale
        # does not grow with the rows, so one tolerance fits 10 rows and 1,000
        opt.zero_grad()
        loss = F.cross_entropy(x64 @ w + b, y) + (w * w).sum() / (2 * c * n)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def logistic_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    c: float = C,
) -> float:
    """Test accuracy of ``logistic_fit`` on the train rows."""
    return scored(logistic_fit(train_x, train_y, num_classes, c), test_x, test_y)


def scored(fit: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """The accuracy of the linear classifier ``fit`` = (W, b) on ``x``."""
    predicted = (x.to(torch.float64) @ fit[0] + fit[1]).argmax(1)
    return float((predicted == y).double().mean())


def label_curves(
    train_z: torch.Tensor,
    train_y: torch.Tensor,
    test_z: torch.Tensor,
    test_y: torch.Tensor,
    shots: list[int],
    draws: int,
    seed: int,
    knn_k: int = 20,
) -> Curves:
    """The linear and kNN curves of one space (latents or pixels) over the same draws."""
    start = time.perf_counter()
    train_y, test_y = train_y.long().to(train_z.device), test_y.long().to(train_z.device)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    # z-scored with the whole train split: its rows are all there, only their labels are not
    scaled_train, scaled_test = zscored(train_z.float(), test_z.float())
    index = shot_indices(train_y, shots, draws, seed)
    linear: dict[int, list[float]] = {}
    knn: dict[int, list[float]] = {}
    for k in shots:
        linear[k], knn[k] = [], []
    for d in range(draws):
        fit = None  # a draw's rows are nested over k: each fit starts from the one before
        for k in shots:
            rows = index[k][d].to(train_z.device)
            fit = logistic_fit(scaled_train[rows], train_y[rows], num_classes, start=fit)
            linear[k].append(scored(fit, scaled_test, test_y))
            neighbours = min(knn_k, k, len(rows))
            knn[k].append(
                knn_accuracy(train_z[rows], train_y[rows], test_z, test_y, neighbours, "cosine")
            )
    smallest = int(torch.bincount(train_y).min()) if len(train_y) else 0
    notes = [
        f"k = {k} labels per class is more than the smallest class's {smallest} train rows: "
        "that class gives all it has"
        for k in shots
        if k > smallest
    ]
    return Curves(Curve(linear), Curve(knn), time.perf_counter() - start, notes)


def paired_lead(a: list[float], b: list[float]) -> tuple[float, float, int, int]:
    """How ``a`` leads ``b`` over paired measurements (same seed and draw in the same place):
    (mean difference, std of the differences, pairs where a > b, pairs)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.size == 0:
        return math.nan, math.nan, 0, 0
    return float(diff.mean()), float(diff.std()), int((diff > 0).sum()), int(diff.size)
