"""How computation runs on a device, shared by training and every pass over a trained model."""

from __future__ import annotations

import torch


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full precision on CPU (where bf16 is slow and deterministic fp32 is
    what the tests compare)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
