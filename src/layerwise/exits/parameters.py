"""The parameters one shared classifier saves over one classifier per layer (the paper's Table 1),
and what a tuned lens adds instead: plain arithmetic, so the tables that show it need no torch."""

from __future__ import annotations


def multi_exit_parameters(single: float, num_layers: int, num_classes: int, width: int) -> float:
    """Parameters of the multi-exit model by the paper's Table 1: single + (L-1) K d."""
    return single + (num_layers - 1) * num_classes * width


def lens_parameters(num_layers: int, width: int) -> int:
    """Parameters of a tuned lens (`LayeredClassifier.add_lens`): one affine translator, a d x d
    matrix and a bias, for each layer 1..L-1, (L-1)(d^2 + d). It grows with the width, the
    multi-exit heads' (L-1) K d with the classes: the lens is the cheaper exit where K > d + 1
    (a language model's vocabulary)."""
    return (num_layers - 1) * (width * width + width)


def parameter_saving(single: float, multi: float) -> float:
    """Fraction of the multi-exit model's parameters that one shared classifier saves."""
    return (multi - single) / multi
