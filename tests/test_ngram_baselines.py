"""The count models of a language-model dataset against hand computation: the add-k unigram and
bigram models, and interpolated Kneser-Ney against a dictionary implementation of its formulas."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

from layerwise.data import IGNORE
from layerwise.baselines.ngram import SMOOTHING_GRID, Histories, KneserNey, ngram_baselines


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


def naive_kneser_ney(train_rows, vocab, order):
    """P(w | history) of interpolated Kneser-Ney written out with dictionaries: a target's
    history is the `order - 1` tokens before it in its row, block starts padded with token
    `vocab`; continuation counts below the top order; one discount per order n1 / (n1 + 2 n2)."""
    start = vocab

    def history(row, t, length):
        return tuple(row[i] if i >= 0 else start for i in range(t - length, t))

    grams = {k: Counter() for k in range(1, order + 1)}
    for row in train_rows:
        for t in range(1, len(row)):
            for k in range(1, order + 1):
                grams[k][history(row, t, k - 1) + (row[t],)] += 1
    counts = {order: grams[order]}
    for k in range(1, order):
        counts[k] = Counter(gram[1:] for gram in grams[k + 1])
    discount = {}
    for k, c in counts.items():
        n1 = sum(v == 1 for v in c.values())
        n2 = sum(v == 2 for v in c.values())
        discount[k] = n1 / (n1 + 2 * n2) if n1 and n2 else 0.5

    def probability(k, h, w):
        c = counts[k]
        total = sum(v for gram, v in c.items() if gram[:-1] == h)
        types = sum(1 for gram in c if gram[:-1] == h)
        seen = max(c.get(h + (w,), 0) - discount[k], 0)
        if k == 1:
            return (seen + discount[1] * types / vocab) / total
        lower = probability(k - 1, h[1:], w)
        return lower if total == 0 else (seen + discount[k] * types * lower) / total

    return probability, history


def random_rows(generator, count, vocab, length):
    # a skewed, repetitive source, so that counts of 1 and 2 and unseen histories all occur
    return [list(generator.choice(vocab, size=generator.integers(2, length + 1),
                                  p=np.arange(vocab, 0, -1) / (vocab * (vocab + 1) / 2)))
            for _ in range(count)]


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_equals_its_formulas_written_out(order):
    generator = np.random.default_rng(order)
    vocab = 5
    rows = {split: random_rows(generator, n, vocab, 9)
            for split, n in (("train", 30), ("val", 6), ("test", 8))}
    splits = {split: blocks(*r) for split, r in rows.items()}
    model = KneserNey(Histories(splits, vocab, order), order)
    probability, history = naive_kneser_ney(rows["train"], vocab, order)

    expected_p, expected_guess, targets = [], [], []
    for row in rows["test"]:
        for t in range(1, len(row)):
            h = history(row, t, order - 1)
            table = [probability(order, h, w) for w in range(vocab)]
            assert sum(table) == pytest.approx(1.0)      # a distribution at every history
            expected_p.append(table[row[t]])
            expected_guess.append(int(np.argmax(table)))  # the first maximum: smallest token
            targets.append(row[t])
    scores = model.scores("test")
    assert scores["tokens"] == len(targets)
    assert scores["cross_entropy"] == pytest.approx(-np.mean(np.log(expected_p)), rel=1e-12)
    assert scores["accuracy"] == pytest.approx(np.mean(np.equal(expected_guess, targets)))


def test_the_kneser_ney_order_is_chosen_on_validation_never_on_test():
    generator = np.random.default_rng(0)
    rows = {split: random_rows(generator, n, 4, 12)
            for split, n in (("train", 40), ("val", 8), ("test", 8))}
    splits = {split: blocks(*r) for split, r in rows.items()}
    result = ngram_baselines(splits, 4, orders=(2, 3, 4))["kneser_ney"]
    tried = {int(o): v for o, v in result["val_cross_entropy_by_order"].items()}
    assert result["order"] == min(tried, key=tried.get)
    assert result["val"]["cross_entropy"] == pytest.approx(tried[result["order"]])
    other = {**splits, "test": blocks(*random_rows(generator, 8, 4, 12))}
    assert ngram_baselines(other, 4, orders=(2, 3, 4))["kneser_ney"]["order"] == result["order"]


def test_sparse_add_k_models_equal_dense_tables():
    """The sparse counts score as a dense V x V table does (the former implementation)."""
    generator = np.random.default_rng(1)
    vocab = 7
    rows = {split: random_rows(generator, n, vocab, 10)
            for split, n in (("train", 50), ("val", 10), ("test", 10))}
    splits = {split: blocks(*r) for split, r in rows.items()}
    result = ngram_baselines(splits, vocab)

    def pairs(split):
        x, y = splits[split]
        keep = y != IGNORE
        return x[keep].numpy(), y[keep].numpy()

    previous, targets = pairs("train")
    dense = np.zeros((vocab, vocab))
    np.add.at(dense, (previous, targets), 1.0)
    k = result["bigram"]["smoothing"]
    test_previous, test_targets = pairs("test")
    rows_ = dense[test_previous]
    probability = (rows_[np.arange(len(test_targets)), test_targets] + k) / (
        rows_.sum(1) + k * vocab)
    guess = np.where(rows_.sum(1) > 0, rows_.argmax(1), dense.sum(0).argmax())
    assert result["bigram"]["test"]["cross_entropy"] == pytest.approx(
        -np.log(probability).mean(), rel=1e-12)
    assert result["bigram"]["test"]["accuracy"] == pytest.approx((guess == test_targets).mean())
