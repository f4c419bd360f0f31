"""``OBJECTIVES``, the registry of training objectives: one loss per file (as in lightly's
``loss/``), each registered by name (``objective: {name: ...}`` in a recipe).

Each objective is an ``nn.Module`` whose constructor's keyword arguments are the recipe's
options (with the published defaults) and whose ``target`` attribute says what the task
hands its ``forward``: ``"input"`` (reconstruction: prediction and input), ``"label"``
(scores and labels), ``"posterior"`` (the VAE's reconstruction, input, mean and
log-variance), ``"views"`` (two views' projections), ``"momentum"`` (online outputs and
the momentum target's projections of two views), ``"pairs"`` or ``"triplets"``
(embeddings of mined pairs or triplets).
"""

from replab.registry import Registry

OBJECTIVES = Registry("objective", expects="torch.nn:Module")
