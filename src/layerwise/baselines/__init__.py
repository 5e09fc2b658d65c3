"""Models without hidden layers, fitted beside the deep ones on the same splits, and how much of
its depth a deep model's layers use.

A layer-wise finding is a finding about depth only where the model needs its depth: where its
last layer beats a model with no hidden layers on the same test samples, and where a linear read
of its first layers does not already score what its last layer scores. For every prepared
dataset `baselines.fit.fit_baselines` fits two such models on the training split, their
settings chosen on validation, and scores them on validation and test:

| kind of data | trivial predictor | shallow baseline |
| --- | --- | --- |
| image | the majority class | logistic regression on the normalised pixels |
| text | the majority class | logistic regression on each segment's token counts |
| language model | the unigram model | interpolated Kneser-Ney n-gram model (and a bigram model) |

`baselines.depth_use` then measures, per run and layer, the share of what the run's last layer
gains over the trivial predictor that layer l already has.
"""

from __future__ import annotations

#: The model each kind of data's trivial predictor and shallow baseline are (record names).
TRIVIAL = {"image": "majority", "text": "majority", "lm": "unigram"}
SHALLOW = {"image": "logistic", "text": "logistic", "lm": "kneser_ney"}
#: The metric a language model's baselines and layers are compared in (lower is better).
LM_METRIC = "cross_entropy"


def lower_is_better(metric: str) -> bool:
    return metric == LM_METRIC


def model_order(baselines: dict) -> list[str]:
    """The models of a baselines record as tables, figures and text show them: the shallow
    baseline, any others, the trivial predictor last."""
    names = list(baselines["models"])
    first = [baselines["shallow"]] if baselines["shallow"] in names else []
    return first + [n for n in names if n not in (baselines["shallow"], baselines["trivial"])] + [
        baselines["trivial"]]


def shallow_label(baselines: dict) -> str | None:
    """How the shallow baseline of a baselines record is named, or None where it has none."""
    return baselines["models"][baselines["shallow"]]["label"] if baselines["shallow"] else None
