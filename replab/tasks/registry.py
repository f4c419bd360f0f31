"""The task registry: how a batch becomes a loss (autoencode, classify, and
later contrastive, VAE...)."""

from replab.registry import Registry

TASKS = Registry("task", expects="replab.tasks.base:Task")
