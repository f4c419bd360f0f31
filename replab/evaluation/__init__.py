"""Evaluation: embeddings, probes, classification and reconstruction
metrics, latent-space analysis."""

from replab.evaluation.embed import embed, reconstruct
from replab.evaluation.latent import (
    PCAResult,
    decode,
    interpolate,
    pca,
    sample_latents,
    sample_prior,
    stratified_sample,
    traversal_grid,
    tsne_2d,
)
from replab.evaluation.metrics import ClassificationMetrics, classification_report, confusion_matrix
from replab.evaluation.probe import Latents, ProbeResult, train_probe
from replab.evaluation.reconstruction import ReconstructionMetrics, reconstruction_metrics
from replab.evaluation.separability import (
    Separability,
    knn_accuracy,
    separability,
    silhouette,
    trustworthiness,
)

__all__ = [
    "ClassificationMetrics",
    "Latents",
    "PCAResult",
    "ProbeResult",
    "ReconstructionMetrics",
    "Separability",
    "classification_report",
    "confusion_matrix",
    "decode",
    "embed",
    "interpolate",
    "knn_accuracy",
    "pca",
    "reconstruct",
    "reconstruction_metrics",
    "sample_latents",
    "sample_prior",
    "separability",
    "silhouette",
    "stratified_sample",
    "train_probe",
    "traversal_grid",
    "trustworthiness",
    "tsne_2d",
]
