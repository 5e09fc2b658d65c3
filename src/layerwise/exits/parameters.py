"""The parameters one shared classifier saves over one classifier per layer (the paper's Table 1):
plain arithmetic, so the tables that show it need no torch."""

from __future__ import annotations


def multi_exit_parameters(single: float, num_layers: int, num_classes: int, width: int) -> float:
    """Parameters of the multi-exit model by the paper's Table 1: single + (L-1) K d."""
    return single + (num_layers - 1) * num_classes * width


def parameter_saving(single: float, multi: float) -> float:
    """Fraction of the multi-exit model's parameters that one shared classifier saves."""
    return (multi - single) / multi
