"""Count models of a language-model dataset, scored on the tokens the models are scored on.

A language model that has learned nothing predicts the most frequent token (the unigram model,
the trivial predictor); one that has learned which token follows which is a bigram model; an
interpolated Kneser-Ney n-gram model is the strongest model without hidden layers that counts
alone give (Chen and Goodman 1998), the shallow baseline a deep model has to beat.

Every model is fitted on the training split's (history, target) pairs, where a target's history
is the tokens before it inside its block, as a model sees them; a history shorter than the
order is padded with a block-start symbol (token id V), as n-gram models pad sentences. Their
settings are chosen on the validation targets (never on test):

* unigram, bigram: add-k smoothed counts, k from a fixed grid. A bigram's history is the one
  previous token; after a token never seen in training it predicts the unigram's argmax.
* Kneser-Ney: interpolated, one absolute discount per order estimated as D = n1 / (n1 + 2 n2)
  from the counts of counts (0.5 where that is undefined), continuation counts below the top
  order, the unigram level interpolated with the uniform distribution; the order is the one of
  `orders` with the lowest validation cross-entropy.

Counts are sparse, so memory grows with the number of distinct n-grams seen, not with V^n: an
n-gram is one int64 key, context id * V + token, in a sorted array, and a context id numbers
the distinct histories of its order over all splits (built order by order from the shorter
history and one more token, so no key overflows at any vocabulary). Scoring needs no (N, V)
array either: the cross-entropy looks up each target's probability, and the top-1 prediction
is found among the tokens seen after a history and the lower order's prediction, which is
exact (a token never seen after the history scores the lower order's probability times the
history's back-off weight, so the lower order's own argmax is the best of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from layerwise.data import IGNORE

if TYPE_CHECKING:
    import torch

SMOOTHING_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
DEFAULT_ORDERS = (3, 4, 5)
SPLITS = ("train", "val", "test")


def _lookup(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, found) of each query in the sorted array `keys`."""
    index = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = keys[index] == query if len(keys) else np.zeros(len(query), bool)
    return index, found


@dataclass(frozen=True)
class Counts:
    """Sparse counts of (context, token) pairs of one order: `keys` sorted (context * V +
    token), their `counts`, and per distinct context (`contexts`, sorted) the `total` count,
    the number of distinct tokens seen after it (`types`) and where its keys start."""
    keys: np.ndarray
    counts: np.ndarray
    contexts: np.ndarray
    total: np.ndarray
    types: np.ndarray
    start: np.ndarray
    vocab: int

    @classmethod
    def of(cls, keys: np.ndarray, counts: np.ndarray, vocab: int) -> Counts:
        """From sorted unique keys and their counts."""
        context = keys // vocab   # sorted as the keys are, so each context's keys are a run
        first = np.ones(len(keys), bool)
        first[1:] = context[1:] != context[:-1]
        start = np.flatnonzero(first)
        total = np.add.reduceat(counts, start) if len(keys) else np.zeros(0, np.int64)
        types = np.diff(np.append(start, len(keys)))
        # counts and positions fit int32 (fewer than 2^31 training targets): half the memory
        return cls(keys, counts.astype(np.int32), context[start], total.astype(np.int32),
                   types.astype(np.int32), start.astype(np.int32), vocab)

    def count(self, context: np.ndarray, token: np.ndarray) -> np.ndarray:
        index, found = _lookup(self.keys, context * self.vocab + token)
        return np.where(found, self.counts[index], 0.0)

    def context_stats(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(total, types) of each context (0 where never seen)."""
        index, found = _lookup(self.contexts, context)
        return np.where(found, self.total[index], 0.0), np.where(found, self.types[index], 0)

    def seen_after(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in `context`, token) of every token seen after each context."""
        index, found = _lookup(self.contexts, context)
        first = np.where(found, self.start[index], 0)
        size = np.where(found, self.types[index], 0)
        owner = np.repeat(np.arange(len(context)), size)
        offset = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        return owner, self.keys[first[owner] + offset] % self.vocab


def _count(keys: np.ndarray, vocab: int) -> Counts:
    unique, counts = np.unique(keys, return_counts=True)
    return Counts.of(unique, counts, vocab)


def _unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(keys, return_inverse=True), with an int32 inverse and fewer full-size
    temporaries (np.unique also copies the keys and builds two more int64 index arrays)."""
    order = np.argsort(keys)
    ranked = keys[order]
    new = np.empty(len(ranked), bool)
    new[:1] = True
    np.not_equal(ranked[1:], ranked[:-1], out=new[1:])
    inverse = np.empty(len(keys), np.int32)
    inverse[order] = np.cumsum(new, dtype=np.int32) - 1
    return ranked[new], inverse


def _best_per_group(group: np.ndarray, score: np.ndarray, token: np.ndarray, groups: int
                    ) -> np.ndarray:
    """The token of highest score in each group 0..groups-1 (the smallest token on ties)."""
    order = np.lexsort((token, -score, group))
    first = np.ones(len(order), bool)
    first[1:] = group[order][1:] != group[order][:-1]
    best = np.empty(groups, np.int64)
    best[group[order][first]] = token[order][first]
    return best


class Histories:
    """Every target of the splits with the ids of its histories, order by order.

    `context(order, split)` is the id of each target's history of order - 1 tokens (order 1: the
    empty history, id 0) and `parent(order)` maps a history id of `order` to the id of its
    suffix one token shorter. Ids are shared by all splits; counts come from train alone.
    """

    def __init__(self, splits: dict[str, tuple[torch.Tensor, torch.Tensor]], vocab: int,
                 max_order: int):
        self.vocab, self.max_order = vocab, max_order
        self.targets, positions = {}, []
        for split in SPLITS:
            x, y = (t.numpy() for t in splits[split])
            keep = y != IGNORE
            self.targets[split] = y[keep].astype(np.int64)
            positions.append((x, *np.nonzero(keep)))
        ends = np.cumsum([len(self.targets[split]) for split in SPLITS])
        if ends[-1] >= 2 ** 31:
            raise ValueError("ids and counts are int32: at most 2^31 - 1 targets")
        self._bounds = {split: slice(end - len(self.targets[split]), end)
                        for split, end in zip(SPLITS, ends)}
        self._ids = [np.zeros(ends[-1], np.int32)]   # order 1: the empty history
        self._parents = [np.zeros(1, np.int64)]
        for j in range(max_order - 1):
            # the j-th token before each target (j = 0: the input at its position), built one
            # order at a time so that a single such array is alive
            previous = np.concatenate([np.where(column >= j, x[row, np.maximum(column - j, 0)],
                                                vocab) for x, row, column in positions])
            unique, ids = _unique_inverse(self._ids[-1] * np.int64(vocab + 1) + previous)
            self._ids.append(ids)
            self._parents.append(unique // (vocab + 1))

    def context(self, order: int, split: str) -> np.ndarray:
        return self._ids[order - 1][self._bounds[split]].astype(np.int64)

    def parent(self, order: int) -> np.ndarray:
        return self._parents[order - 1]


def _discount(counts: np.ndarray) -> float:
    """D = n1 / (n1 + 2 n2) (Ney, Essen and Kneser 1994), 0.5 where n1 or n2 is 0."""
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 and n2 else 0.5


class KneserNey:
    """An interpolated Kneser-Ney model of `order` fitted on the train targets of `histories`."""

    def __init__(self, histories: Histories, order: int):
        self.histories, self.order, self.vocab = histories, order, histories.vocab
        targets = histories.targets["train"]
        self.levels: list[Counts] = []
        # The top order counts occurrences; each lower one counts the distinct histories one
        # token longer that a (history, token) pair was seen in (continuation counts).
        top = _count(histories.context(order, "train") * self.vocab + targets, self.vocab)
        self.levels.insert(0, top)
        for k in range(order - 1, 0, -1):
            longer = self.levels[0].keys
            shorter = (histories.parent(k + 1)[longer // self.vocab] * self.vocab
                       + longer % self.vocab)
            self.levels.insert(0, _count(shorter, self.vocab))
        self.discounts = [_discount(level.counts) for level in self.levels]

    def probability(self, k: int, context: np.ndarray, token: np.ndarray) -> np.ndarray:
        """P_k(token | context) for history ids of order k."""
        level, discount = self.levels[k - 1], self.discounts[k - 1]
        seen = np.maximum(level.count(context, token) - discount, 0.0)
        total, types = level.context_stats(context)
        if k == 1:  # every token, seen or not, gets the uniform share of the discounted mass
            return (seen + discount * types / self.vocab) / total
        lower = self.probability(k - 1, self.histories.parent(k)[context], token)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, (seen + discount * types * lower) / total, lower)

    def predict(self, k: int, context: np.ndarray) -> np.ndarray:
        """The most probable token after each history of order k."""
        unique, inverse = np.unique(context, return_inverse=True)
        if k == 1:
            level = self.levels[0]
            return np.full(len(context), level.keys[np.argmax(level.counts)] % self.vocab)
        fallback = self.predict(k - 1, self.histories.parent(k)[unique])
        owner, token = self.levels[k - 1].seen_after(unique)
        owner = np.concatenate([owner, np.arange(len(unique))])
        token = np.concatenate([token, fallback])
        score = self.probability(k, unique[owner], token)
        return _best_per_group(owner, score, token, len(unique))[inverse]

    def scores(self, split: str) -> dict:
        context, targets = self.histories.context(self.order, split), self.histories.targets[split]
        probability = self.probability(self.order, context, targets)
        predicted = self.predict(self.order, context)
        return _record(probability, predicted, targets)


def _record(probability: np.ndarray, predicted: np.ndarray, targets: np.ndarray) -> dict:
    return {"cross_entropy": float(-np.log(probability).mean()),
            "accuracy": float((predicted == targets).mean()), "tokens": int(len(targets))}


class AddK:
    """Add-k smoothed counts of the train targets after their last `order - 1` tokens (order 1
    or 2); after a history never seen in training the bigram predicts the unigram's argmax."""

    def __init__(self, histories: Histories, order: int):
        self.histories, self.order, self.vocab = histories, order, histories.vocab
        targets = histories.targets["train"]
        self.counts = _count(histories.context(order, "train") * self.vocab + targets,
                             self.vocab)
        unigram = np.bincount(targets, minlength=self.vocab)
        self.fallback = int(np.argmax(unigram))

    def probability(self, k: float, split: str) -> np.ndarray:
        context = self.histories.context(self.order, split)
        count = self.counts.count(context, self.histories.targets[split])
        total, _ = self.counts.context_stats(context)
        return (count + k) / (total + k * self.vocab)

    def predict(self, split: str) -> np.ndarray:
        context = self.histories.context(self.order, split)
        unique, inverse = np.unique(context, return_inverse=True)
        owner, token = self.counts.seen_after(unique)
        best = _best_per_group(
            np.append(owner, np.arange(len(unique))),
            np.append(self.counts.count(unique[owner], token), np.full(len(unique), -1.0)),
            np.append(token, np.full(len(unique), self.fallback)), len(unique))
        return best[inverse]


def ngram_baselines(splits: dict[str, tuple[torch.Tensor, torch.Tensor]], vocab_size: int,
                    orders: Sequence[int] = DEFAULT_ORDERS) -> dict:
    """{"unigram" | "bigram" | "kneser_ney": record} for (N, T) inputs and next-token targets of
    the train, val and test splits. A record holds its settings (add-k's "smoothing"; Kneser-
    Ney's "order", its "discounts" and the validation cross-entropy of every order tried) and
    each of val and test's {"cross_entropy" (nats), "accuracy", "tokens"}."""
    histories = Histories(splits, vocab_size, max(max(orders), 2))
    baselines = {name: _add_k_record(histories, order)
                 for name, order in (("unigram", 1), ("bigram", 2))}
    # Each order's model is freed once scored on val and the chosen one fitted again: one model
    # in memory at a time (the order-5 one alone is some 0.5 GB at 7.3 M training tokens), for
    # the price of a fit, which takes less time than scoring
    val = {order: KneserNey(histories, order).scores("val") for order in sorted(orders)}
    tried = {order: record["cross_entropy"] for order, record in val.items()}
    best = min(tried, key=tried.get)
    model = KneserNey(histories, best)
    baselines["kneser_ney"] = {"order": best, "discounts": model.discounts,
                               "val_cross_entropy_by_order": {str(o): v for o, v in tried.items()},
                               "val": val[best], "test": model.scores("test")}
    return baselines


def _add_k_record(histories: Histories, order: int) -> dict:
    model = AddK(histories, order)
    k = min(SMOOTHING_GRID, key=lambda k: -np.log(model.probability(k, "val")).mean())
    return {"smoothing": k, **{
        split: _record(model.probability(k, split), model.predict(split),
                       histories.targets[split]) for split in ("val", "test")}}

