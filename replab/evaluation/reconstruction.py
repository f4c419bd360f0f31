"""Pixel-space reconstruction quality: MAE, MSE and PSNR on [0, 1] images."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ReconstructionMetrics:
    mae: float
    mse: float
    psnr: float


def reconstruction_metrics(
    reconstructions: torch.Tensor, images: torch.Tensor
) -> ReconstructionMetrics:
    """Compare reconstructions in [0, 1] with the uint8 originals they came from."""
    target = images.to(reconstructions.device).float() / 255
    diff = reconstructions.float() - target
    mse = diff.pow(2).mean().item()
    # PSNR per image, averaged: the usual figure for image sets (peak value 1.0).
    per_image = diff.pow(2).flatten(1).mean(1).clamp_min(1e-10)
    psnr = (-10 * torch.log10(per_image)).mean().item()
    return ReconstructionMetrics(mae=diff.abs().mean().item(), mse=mse, psnr=psnr)
