"""Device choice, seeding and determinism switches."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from replab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} asked for, but no CUDA GPU is available",
            "use data.device=auto or cpu",
        )
    if device.type == "cuda" and device.index is None and torch.distributed.is_initialized():
        # this rank's GPU (LOCAL_RANK, set at setup)
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def autocast(device: torch.device, amp: str):
    """bf16 autocast on CUDA when asked (or 'auto'); on CPU it is measured slower, so off."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast("cuda", dtype=dtype)
