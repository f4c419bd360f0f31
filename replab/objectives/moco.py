"""MoCo v2 (Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive
Learning", 2020, arXiv:2003.04297; MoCo: He, Fan, Wu, Xie and Girshick, "Momentum Contrast
for Unsupervised Visual Representation Learning", CVPR 2020, arXiv:1911.05722): InfoNCE of
each query against its own key and a queue of K keys from earlier batches::

    q = normalize(online projection of view 1),  k = normalize(target projection of view 2)
    logits_i = [q_i . k_i, q_i . queue_1, ..., q_i . queue_K] / T
    l(q, k) = mean_i -log softmax(logits_i)_0
    L = l(q1, k2)                                       (symmetric: false, default; v2)
    L = (l(q1, k2) + l(q2, k1)) / 2                     (symmetric: true)

(normalize floors the norm at 1e-12; keys carry no gradient). The loss uses the queue as it
was BEFORE this batch; only then, and only in training mode, this step's view-2 keys (of
every rank, under DDP), normalised, overwrite the oldest entries of the ring: rows ``ptr,
ptr + 1, ...`` modulo K, and ``ptr`` advances by their number. A step with more keys than
the queue holds is refused (a ConfigError; MoCo's code even asserts that K is a multiple of
the batch). The queue starts as K random unit vectors. It is the objective's state (buffers
``queue`` and ``ptr``): the task saves it in the checkpoint, so a resumed run contrasts
against the same negatives. ``symmetric: true`` is MoCo v3's symmetrisation (v3 sums the two
terms; they are averaged here, so the loss keeps the one-sided scale). The key encoder
follows the online one as BYOL's target does (``replab.objectives.byol``): ``m_k =
momentum`` (constant) or BYOL's cosine from ``momentum`` to 1. Defaults here, MoCo v2's:
``temperature = T = 0.2``, ``queue = K = 65536``, ``symmetric = False``, ``momentum =
0.999``, ``momentum_schedule = "constant"``. The paper's other settings: an MLP projection
head (2048 hidden, ReLU, 128 out), SGD lr 0.03 (batch 256, cosine), weight decay 1e-4,
momentum 0.9.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.byol import check_momentum
from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("moco")
class MoCoLoss(nn.Module):
    """``target = "momentum"``: used with the momentum_contrastive task (no predictor)."""

    target = "momentum"
    queue: torch.Tensor
    ptr: torch.Tensor

    def __init__(
        self,
        temperature: float = 0.2,
        queue: int = 65536,
        symmetric: bool = False,
        momentum: float = 0.999,
        momentum_schedule: str = "constant",
    ) -> None:
        super().__init__()
        if not temperature > 0 or queue < 1:
            raise ConfigError(
                f"moco needs temperature > 0 and a queue of at least 1 key "
                f"(got {temperature}, {queue})",
                "leave MoCo v2's defaults (temperature 0.2, queue 65536) or set "
                "objective.temperature / objective.queue",
            )
        check_momentum("moco", momentum, momentum_schedule)
        self.temperature, self.size, self.symmetric = temperature, queue, symmetric
        self.momentum, self.momentum_schedule = momentum, momentum_schedule
        self.register_buffer("queue", torch.empty(0))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def allocate(self, dim: int) -> None:
        """A queue of ``size`` random unit keys of ``dim`` (MoCo's start), made when the task
        knows the projection's width; from the global RNG, so every rank starts alike."""
        self.queue = F.normalize(torch.randn(self.size, dim), dim=1)
        self.ptr = torch.zeros((), dtype=torch.long)

    def forward(
        self,
        q1: torch.Tensor,
        q2: torch.Tensor,
        k1: torch.Tensor,
        k2: torch.Tensor,
        gather=None,
        offset: int = 0,
    ) -> torch.Tensor:
        """The loss against the current queue; in training mode the keys of view 2 (every
        rank's, through ``gather``) are then enqueued. ``offset`` is not needed."""
        if not q1.shape == q2.shape == k1.shape == k2.shape or q1.ndim != 2:
            raise ValueError(
                "moco needs four N×d tensors of one shape, "
                f"got {[tuple(t.shape) for t in (q1, q2, k1, k2)]}"
            )
        if self.queue.shape[1:] != q1.shape[1:]:
            self.allocate(q1.shape[1])  # used without the task (tests); the task allocates
        self.queue = self.queue.to(q1.device)
        loss = self._info_nce(q1, k2)
        if self.symmetric:
            loss = (loss + self._info_nce(q2, k1)) / 2
        if self.training:
            keys = k2.detach()
            self._enqueue(gather(keys) if gather is not None else keys)
        return loss

    def _info_nce(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = F.normalize(full_precision(q), dim=1)
        k = F.normalize(full_precision(k.detach()), dim=1)
        positive = (q * k).sum(1, keepdim=True)
        logits = torch.cat([positive, q @ self.queue.to(q.dtype).T], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest entries by ``keys`` (a ring); out of place, because autograd
        saved the old queue for this step's backward pass. More keys than the queue holds
        would overwrite their own step's keys out of order: refused."""
        if len(keys) > self.size:
            raise ConfigError(
                f"moco's queue holds {self.size} keys but one training step enqueues "
                f"{len(keys)} (the batch, over every rank under DDP)",
                f"set objective.queue to at least {len(keys)} (MoCo v2: 65536, a multiple of "
                "the batch) or lower trainer.batch_size",
            )
        keys = F.normalize(keys.float(), dim=1)
        rows = (self.ptr.to(keys.device) + torch.arange(len(keys), device=keys.device)) % self.size
        self.queue = self.queue.index_copy(0, rows, keys)
        self.ptr = (self.ptr + len(keys)) % self.size
