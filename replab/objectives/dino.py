"""DINO, self-distillation with no labels (Caron, Touvron, Misra, Jégou, Mairal, Bojanowski and
Joulin, "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021,
arXiv:2104.14294, algorithm 1): a student network matches a teacher's sharpened, centred
output distribution across views; the teacher is the student's exponential moving average::

    P_t(x) = softmax((g_t(x) - c) / tau_t)          (teacher: centred, sharpened; no gradient)
    P_s(x) = softmax(g_s(x) / tau_s)                (student)
    L = mean over pairs (t in globals, s in all views, s != t) of
        mean_n  sum_k -P_t(x_t)_nk log P_s(x_s)_nk
    c <- m c + (1 - m) mean of g_t over the global batch's teacher outputs (both globals)

The centre is updated after the loss, in training mode only, with the mean over every rank's
rows (``gather``): the global batch mean, as DINO's all-reduce gives. The teacher temperature
rises linearly from ``warmup_teacher_temp`` to ``teacher_temp`` over the first
``warmup_fraction`` of the run's steps, then stays (the task tells the objective each step's
place, ``step_hook``; a resumed run reads its place from the saved state). Centring keeps
one dimension from dominating, sharpening keeps the output from going uniform: the two
collapses balance each other.

Defaults, the paper's: ``student_temp = 0.1``, ``teacher_temp = 0.07`` after a warm-up from
``0.04`` over the first 30 of 100 epochs (``warmup_fraction = 0.3``), centre momentum
``center_momentum = 0.9``, teacher momentum 0.996 rising to 1 on a cosine (``momentum``,
``momentum_schedule``); its head (``dino_head``) has 65536 outputs; 2 global crops of 224 px
and 8 local of 96 px (``multi_crop``). The ``momentum_contrastive`` task passes the online
(student) outputs of the two global crops, the target (teacher) outputs of the same two, and
the student outputs of any local crops (``local``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.byol import check_momentum
from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("dino")
class DINOLoss(nn.Module):
    """DINO (self-distillation: EMA teacher, centred and sharpened targets).

    ``target = "momentum"``: the momentum task passes the student's outputs and the EMA
    teacher's (no predictor); study G's title is the first line."""

    target = "momentum"
    takes_local_crops = True
    center: torch.Tensor
    progress: torch.Tensor

    def __init__(
        self,
        student_temp: float = 0.1,
        teacher_temp: float = 0.07,
        warmup_teacher_temp: float = 0.04,
        warmup_fraction: float = 0.3,
        center_momentum: float = 0.9,
        momentum: float = 0.996,
        momentum_schedule: str = "cosine",
    ) -> None:
        super().__init__()
        if min(student_temp, teacher_temp, warmup_teacher_temp) <= 0:
            raise ConfigError(
                "dino's temperatures must be > 0 "
                f"(got {student_temp}, {teacher_temp}, {warmup_teacher_temp})",
                "leave DINO's defaults (student 0.1, teacher 0.04 warming up to 0.07)",
            )
        if not 0 <= warmup_fraction <= 1 or not 0 <= center_momentum < 1:
            raise ConfigError(
                "dino needs warmup_fraction in [0, 1] and center_momentum in [0, 1) "
                f"(got {warmup_fraction}, {center_momentum})",
                "e.g. warmup_fraction 0.3 (30 of 100 epochs) and center_momentum 0.9",
            )
        check_momentum("dino", momentum, momentum_schedule)
        self.student_temp, self.teacher_temp = student_temp, teacher_temp
        self.warmup_teacher_temp, self.warmup_fraction = warmup_teacher_temp, warmup_fraction
        self.center_momentum = center_momentum
        self.momentum, self.momentum_schedule = momentum, momentum_schedule
        self.register_buffer("center", torch.zeros(0))
        self.register_buffer("progress", torch.zeros((), dtype=torch.float64))

    def allocate(self, dim: int) -> None:
        """A zero centre of the head's width (DINO's start)."""
        self.center = torch.zeros(1, dim)

    def step_hook(self, done: int, total: int) -> None:
        """After optimizer step ``done`` of ``total``: the next step's place in the run."""
        self.progress = torch.tensor(min(1.0, done / max(1, total)), dtype=torch.float64)

    def teacher_temperature(self) -> float:
        """Linear from ``warmup_teacher_temp`` to ``teacher_temp`` over the warm-up."""
        fraction = float(self.progress)
        if self.warmup_fraction == 0 or fraction >= self.warmup_fraction:
            return self.teacher_temp
        share = fraction / self.warmup_fraction
        return self.warmup_teacher_temp + share * (self.teacher_temp - self.warmup_teacher_temp)

    def forward(
        self,
        s1: torch.Tensor,
        s2: torch.Tensor,
        t1: torch.Tensor,
        t2: torch.Tensor,
        gather=None,
        offset: int = 0,
        local: list[torch.Tensor] | tuple[torch.Tensor, ...] = (),
    ) -> torch.Tensor:
        """Student outputs of the two global crops ``s1``, ``s2`` (and of the local crops,
        ``local``), teacher outputs ``t1``, ``t2`` of the globals; each N×K. ``gather``
        (distributed training) makes the centre's update the global batch mean."""
        students = [s1, s2, *local]
        if t1.shape != t2.shape or any(s.shape != t1.shape for s in students) or t1.ndim != 2:
            raise ValueError(
                "dino needs N×K outputs of one shape, "
                f"got {[tuple(t.shape) for t in (*students, t1, t2)]}"
            )
        teachers = [full_precision(t1.detach()), full_precision(t2.detach())]
        if self.center.shape[1:] != t1.shape[1:]:
            self.allocate(t1.shape[1])  # used without the task (tests); the task allocates
        center = self.center.to(teachers[0])
        tau = self.teacher_temperature()
        targets = [F.softmax((t - center) / tau, dim=1) for t in teachers]
        logs = [F.log_softmax(full_precision(s) / self.student_temp, dim=1) for s in students]
        terms = [
            -(q * logs[v]).sum(1).mean()
            for i, q in enumerate(targets)
            for v in range(len(logs))
            if v != i
        ]
        loss = torch.stack(terms).mean()
        if self.training:
            self._update_center(torch.cat(teachers), gather)
        return loss

    @torch.no_grad()
    def _update_center(self, teacher: torch.Tensor, gather) -> None:
        rows = gather(teacher) if gather is not None else teacher
        batch = rows.mean(0, keepdim=True)
        m = self.center_momentum
        # out of place: autograd saved the old centre for this step's backward
        self.center = self.center.to(batch) * m + batch * (1 - m)
