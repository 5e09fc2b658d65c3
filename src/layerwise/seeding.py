"""Every source of randomness is seeded here, in one place."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels.

    On CPU this makes a run bit-for-bit repeatable. On CUDA, cuBLAS needs a fixed workspace
    (set below) and a few kernels (e.g. scatter-add in some backward passes) have no
    deterministic version; torch then warns instead of failing, and results can differ in the
    last bits between runs.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator for one epoch's data order, derived from (seed, epoch) alone.

    Deriving it instead of carrying one generator through training means a resumed run draws
    exactly the order an uninterrupted run would have drawn.
    """
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)
