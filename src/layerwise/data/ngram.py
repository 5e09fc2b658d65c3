"""Unigram and bigram baselines of a language-model dataset, on the tokens a model is scored on.

A language model that has learned nothing predicts the most frequent token (a unigram model);
one that has learned only which token follows which is a bigram model. Their cross-entropy and
top-1 accuracy on the same validation and test targets tell whether a layer-wise curve describes
a trained model at all.

Both are fitted on the training split's (input, target) pairs: the unigram model counts targets,
the bigram model counts each target after its input token (the previous token). Probabilities
are add-k smoothed, so no test token has probability zero, with k chosen on the validation
targets from a fixed grid (never on test). A bigram's prediction after an input token never seen
in training falls back to the unigram's.
"""

from __future__ import annotations

import numpy as np
import torch

from layerwise.data import IGNORE

SMOOTHING_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def _pairs(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(previous token, target) of every position with a target."""
    keep = y != IGNORE
    return x[keep].numpy(), y[keep].numpy()


def _scores(counts: np.ndarray, k: float, previous: np.ndarray | None, targets: np.ndarray
            ) -> tuple[float, float]:
    """(cross-entropy in nats, top-1 accuracy) of add-k smoothed counts on `targets`: unigram
    counts (V,), or bigram counts (V, V) indexed by `previous`."""
    if counts.ndim == 1:
        probability = (counts[targets] + k) / (counts.sum() + k * len(counts))
        return float(-np.log(probability).mean()), float((targets == counts.argmax()).mean())
    rows = counts[previous]
    probability = (rows[np.arange(len(targets)), targets] + k) / (
        rows.sum(1) + k * counts.shape[1])
    seen = rows.sum(1) > 0
    guess = np.where(seen, rows.argmax(1), counts.sum(0).argmax())
    return float(-np.log(probability).mean()), float((targets == guess).mean())


def ngram_baselines(splits: dict[str, tuple[torch.Tensor, torch.Tensor]], vocab_size: int
                    ) -> dict:
    """{"unigram" | "bigram": {"smoothing": k, "val": {...}, "test": {...}}}, each split's
    {"cross_entropy", "accuracy", "tokens"}, for (N, T) inputs and next-token targets of the
    train, val and test splits."""
    previous, targets = _pairs(*splits["train"])
    unigram = np.bincount(targets, minlength=vocab_size).astype(np.float64)
    bigram = np.zeros((vocab_size, vocab_size))
    np.add.at(bigram, (previous, targets), 1.0)
    baselines = {}
    for name, counts in (("unigram", unigram), ("bigram", bigram)):
        val_previous, val_targets = _pairs(*splits["val"])
        k = min(SMOOTHING_GRID, key=lambda k: _scores(counts, k, val_previous, val_targets)[0])
        record = {"smoothing": k}
        for split in ("val", "test"):
            split_previous, split_targets = _pairs(*splits[split])
            cross_entropy, accuracy = _scores(counts, k, split_previous, split_targets)
            record[split] = {"cross_entropy": cross_entropy, "accuracy": accuracy,
                             "tokens": int(len(split_targets))}
        baselines[name] = record
    return baselines
