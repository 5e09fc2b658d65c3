"""The unigram and bigram baselines of a language-model dataset against hand computation."""

import math

import numpy as np
import pytest
import torch

from layerwise.data import IGNORE
from layerwise.data.ngram import SMOOTHING_GRID, ngram_baselines


def blocks(*rows):
    """(x, y) next-token blocks of token sequences, padded with IGNORE targets."""
    length = max(len(r) for r in rows) - 1
    x = torch.zeros(len(rows), length, dtype=torch.long)
    y = torch.full((len(rows), length), IGNORE)
    for i, r in enumerate(rows):
        x[i, :len(r) - 1] = torch.tensor(r[:-1])
        y[i, :len(r) - 1] = torch.tensor(r[1:])
    return x, y


def test_baselines_equal_hand_computed_add_k_models():
    vocab = 4
    train = blocks([0, 1, 2, 1, 2, 1, 3], [0, 1, 2])
    val = blocks([0, 1, 2, 1])
    test = blocks([3, 1, 2, 0, 1])
    result = ngram_baselines({"train": train, "val": val, "test": test}, vocab)

    targets = [1, 2, 1, 2, 1, 3, 1, 2]                    # training targets
    previous = [0, 1, 2, 1, 2, 1, 0, 1]
    unigram = np.bincount(targets, minlength=vocab)
    bigram = np.zeros((vocab, vocab))
    for a, b in zip(previous, targets):
        bigram[a, b] += 1

    def unigram_ce(k, ys):
        return -np.mean([math.log((unigram[t] + k) / (len(targets) + k * vocab)) for t in ys])

    def bigram_ce(k, pairs):
        return -np.mean([math.log((bigram[a, b] + k) / (bigram[a].sum() + k * vocab))
                         for a, b in pairs])

    val_pairs, test_pairs = [(0, 1), (1, 2), (2, 1)], [(3, 1), (1, 2), (2, 0), (0, 1)]
    k_uni = min(SMOOTHING_GRID, key=lambda k: unigram_ce(k, [b for _, b in val_pairs]))
    k_bi = min(SMOOTHING_GRID, key=lambda k: bigram_ce(k, val_pairs))
    assert result["unigram"]["smoothing"] == k_uni and result["bigram"]["smoothing"] == k_bi
    test_ys = [b for _, b in test_pairs]
    assert result["unigram"]["test"]["cross_entropy"] == pytest.approx(unigram_ce(k_uni, test_ys))
    assert result["bigram"]["test"]["cross_entropy"] == pytest.approx(bigram_ce(k_bi, test_pairs))
    # unigram: always token 1 (most frequent); bigram: 1 -> 2, 2 -> 1, 0 -> 1, and 3 (never an
    # input in training) falls back to the unigram's 1
    assert result["unigram"]["test"]["accuracy"] == pytest.approx(2 / 4)
    assert result["bigram"]["test"]["accuracy"] == pytest.approx(3 / 4)   # (3,1) (1,2) (0,1)
    assert result["bigram"]["test"]["tokens"] == 4


def test_the_smoothing_is_chosen_on_validation_never_on_test():
    train = blocks([0, 1, 2, 1, 2, 1, 3])
    val = blocks([0, 1, 2, 1])
    splits = {"train": train, "val": val, "test": blocks([3, 3, 3, 3])}
    other = {**splits, "test": blocks([0, 1, 2, 0])}
    for name in ("unigram", "bigram"):
        assert (ngram_baselines(splits, 4)[name]["smoothing"]
                == ngram_baselines(other, 4)[name]["smoothing"])
