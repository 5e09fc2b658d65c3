"""The count models of a language-model dataset against hand computation: the add-k unigram and
bigram models, and interpolated Kneser-Ney against a dictionary implementation of its formulas
and against dense tables of every history and token; and the peak memory of all of them at
GPT-2's vocabulary."""

import json
import math
import subprocess
import sys
import textwrap
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


def dense_kneser_ney(train_rows, vocab, order):
    """Interpolated Kneser-Ney as dense arrays, and its discounts: P[k] holds P(w | h) for every
    history h of k - 1 tokens (block start = `vocab`, so each history axis has vocab + 1 values)
    and every token w, shape (vocab + 1,) * (k - 1) + (vocab,); the table of `order` is returned."""
    shape = (vocab + 1,) * (order - 1) + (vocab,)
    counts = {order: np.zeros(shape)}
    for row in train_rows:
        padded = [vocab] * (order - 1) + list(row)
        for t in range(order - 1, len(padded) - 1):
            counts[order][tuple(padded[t - order + 2:t + 2])] += 1
    for k in range(order - 1, 0, -1):   # continuation counts: distinct tokens seen before (h, w)
        counts[k] = (counts[k + 1] > 0).sum(axis=0).astype(float)
    P, discounts = {}, {}
    for k in range(1, order + 1):
        c = counts[k]
        n1, n2 = (c == 1).sum(), (c == 2).sum()
        d = discounts[k] = n1 / (n1 + 2 * n2) if n1 and n2 else 0.5
        total = c.sum(axis=-1, keepdims=True)
        types = (c > 0).sum(axis=-1, keepdims=True)
        seen = np.maximum(c - d, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            if k == 1:
                P[k] = (seen + d * types / vocab) / total
            else:   # the lower order is the history without its first token: broadcast over it
                lower = np.broadcast_to(P[k - 1], shape[-k:])
                P[k] = np.where(total > 0, (seen + d * types * lower) / total, lower)
    return P[order], [discounts[k] for k in range(1, order + 1)]


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_equals_dense_tables(order):
    generator = np.random.default_rng(10 + order)
    vocab = 6
    # little training text, so that val and test hold histories of orders 3 and 4 never seen
    rows = {split: random_rows(generator, n, vocab, 12)
            for split, n in (("train", 16), ("val", 8), ("test", 8))}
    result = ngram_baselines({split: blocks(*r) for split, r in rows.items()}, vocab,
                             orders=(order,))["kneser_ney"]
    table, discounts = dense_kneser_ney(rows["train"], vocab, order)
    assert np.allclose(table.sum(axis=-1), 1.0)   # a distribution after every history
    assert result["discounts"] == pytest.approx(discounts, rel=1e-12)
    for split in ("val", "test"):
        p, right = [], []
        for row in rows[split]:
            padded = [vocab] * (order - 1) + list(row)
            for t in range(order - 1, len(padded) - 1):
                after = table[tuple(padded[t - order + 2:t + 1])]   # every token's probability
                p.append(after[padded[t + 1]])
                right.append(np.argmax(after) == padded[t + 1])   # ties: the smallest token
        assert result[split]["tokens"] == len(p)
        assert result[split]["cross_entropy"] == pytest.approx(-np.mean(np.log(p)), rel=1e-12)
        assert result[split]["accuracy"] == pytest.approx(np.mean(right), rel=1e-12)


# What ngram_baselines adds to the peak resident memory (ru_maxrss) of a fresh python that
# made a Zipfian, text-like corpus of 1 M training tokens (val and test 20 k each) at GPT-2's
# vocabulary; the baseline (python with numpy and torch imported and the corpus made, about
# 550 MB with torch 2.14's CUDA build) depends on the build and is left out. Measured: 143 MB
# (355 MB before the counts were made to hold one Kneser-Ney model at a time with int32 ids
# and counts). At the paper's 7.3 M tokens the whole process peaks at 1.6 GB (2.7 GB before).
MEMORY_VOCAB, MEMORY_TRAIN_TOKENS, MEMORY_BOUND_MB = 50_257, 1_000_000, 250

MEMORY_SCRIPT = textwrap.dedent("""
    import json, math, resource, sys
    import numpy as np
    import torch
    from layerwise.data import IGNORE
    from layerwise.baselines.ngram import ngram_baselines

    vocab, train = int(sys.argv[1]), int(sys.argv[2])

    def corpus(rng, tokens, length=255):
        # Zipfian tokens (exponent 1); 6 times in 10 the next token is one of 4 successors of
        # the two before it, so longer histories predict better, as in text
        rows = -(-tokens // length)
        language = np.random.default_rng(123)   # the same in every split
        p = 1.0 / np.arange(1, vocab + 1)
        p /= p.sum()
        ids = language.permutation(vocab)
        successors = ids[language.choice(vocab, size=(vocab, 4), p=p)]
        seq = ids[rng.choice(vocab, size=(rows, length + 1), p=p)]
        follow = rng.random((rows, length + 1)) < 0.6
        pick = rng.integers(0, 4, size=(rows, length + 1))
        for t in range(2, length + 1):
            h = (seq[:, t - 2] * 7919 + seq[:, t - 1]) % vocab
            seq[:, t] = np.where(follow[:, t], successors[h, pick[:, t]], seq[:, t])
        x, y = seq[:, :-1].copy(), seq[:, 1:].copy()
        # a tenth of the blocks end early, padded as a short document's last block is
        ends = np.where(rng.random(rows) < 0.1, rng.integers(1, length, size=rows), length)
        pad = np.arange(length)[None] >= ends[:, None]
        x[pad], y[pad] = 0, IGNORE
        return torch.from_numpy(x), torch.from_numpy(y)

    rng = np.random.default_rng(0)
    splits = {"train": corpus(rng, train), "val": corpus(rng, train // 50),
              "test": corpus(rng, train // 50)}
    maxrss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    before = maxrss()
    result = ngram_baselines(splits, vocab)
    peak = maxrss()
    for record in result.values():
        assert all(math.isfinite(record[s]["cross_entropy"]) for s in ("val", "test"))
    print(json.dumps({"before_mb": before, "peak_mb": peak, "result": result}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
def test_ngram_baselines_fit_in_memory_at_gpt2_vocabulary():
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(MEMORY_VOCAB),
                          str(MEMORY_TRAIN_TOKENS)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)
    test = {name: record["test"] for name, record in measured["result"].items()}
    assert test["kneser_ney"]["tokens"] > MEMORY_TRAIN_TOKENS // 60
    # the counts learned something: Kneser-Ney below the unigram, the unigram below uniform
    assert (test["kneser_ney"]["cross_entropy"] < test["unigram"]["cross_entropy"]
            < math.log(MEMORY_VOCAB))
    grown = measured["peak_mb"] - measured["before_mb"]
    assert grown < MEMORY_BOUND_MB, measured
