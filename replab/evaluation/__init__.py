"""Evaluation: embeddings, probes and reconstruction metrics over trained encoders."""

from replab.evaluation.embed import embed, reconstruct
from replab.evaluation.probe import Latents, ProbeResult, train_probe
from replab.evaluation.reconstruction import ReconstructionMetrics, reconstruction_metrics

__all__ = ["Latents", "ProbeResult", "ReconstructionMetrics", "embed", "reconstruct", "reconstruction_metrics", "train_probe"]
