"""Fit a prepared dataset's trivial predictor and shallow baseline (see the package's doc)."""

from __future__ import annotations

from pathlib import Path

from layerwise.baselines import LM_METRIC, SHALLOW, TRIVIAL
from layerwise.baselines.linear import (DEFAULT_C_GRID, bag_of_tokens, logistic_regression,
                                        majority_class, pixel_features, training_subset)
from layerwise.baselines.ngram import DEFAULT_ORDERS, ngram_baselines
from layerwise.data.prepared import SPLITS, load_split


def fit_baselines(data_dir: str | Path, metric: str, c_grid=DEFAULT_C_GRID,
                  orders=DEFAULT_ORDERS, max_train_samples: int | None = None) -> dict:
    """The baselines of a prepared dataset: {"kind", "metric" (what they are compared in),
    "trivial", "shallow" (record names; shallow is None where none is fitted, with a "note"
    saying why), "models": {name: {"label", its settings, "val": scores, "test": scores}}}.

    `metric` is a classifier's (accuracy or f1, which picks C); `c_grid` the logistic
    regression's inverse penalties, `orders` the n-gram orders tried, `max_train_samples` the
    bound on a classifier's training samples."""
    splits = {split: load_split(data_dir, split) for split in SPLITS}
    info = splits["train"][2]
    kind = info["kind"]
    record = {"kind": kind, "trivial": TRIVIAL[kind], "shallow": SHALLOW[kind], "note": None}
    if kind == "lm":
        models = ngram_baselines({s: (x, y) for s, (x, y, _) in splits.items()},
                                 info["vocab_size"], orders)
        labels = {"unigram": "unigram model", "bigram": "bigram model",
                  "kneser_ney": f"Kneser-Ney {models['kneser_ney']['order']}-gram model"}
        return {**record, "metric": LM_METRIC,
                "models": {name: {"label": labels[name], **models[name]} for name in labels}}

    labels = {s: y.numpy() for s, (_, y, _) in splits.items()}
    models = {"majority": {"label": "majority class", **majority_class(
        labels["train"], {s: (None, labels[s]) for s in ("val", "test")}, metric)}}
    if kind == "image" and info.get("storage") == "image_folder":
        record.update(shallow=None, note="no pixel baseline for an image-folder dataset "
                      "(ImageNet: 150,528 pixels per image)")
    else:
        if kind == "image":
            features = {s: pixel_features(x) for s, (x, _, _) in splits.items()}
            label = "logistic regression on pixels"
        else:
            features = {s: bag_of_tokens(x, info["vocab_size"], info["pad_id"])
                        for s, (x, _, _) in splits.items()}
            label = "logistic regression on token counts"
        train = training_subset(features["train"], labels["train"], max_train_samples)
        models["logistic"] = {"label": label, "train_samples": int(len(train[1])),
                              **logistic_regression(
                                  train, {s: (features[s], labels[s]) for s in ("val", "test")},
                                  metric, c_grid)}
    return {**record, "metric": metric, "models": models}
