"""Classifiers without hidden layers: the majority class, and logistic regression on the inputs
themselves (an image's normalised pixels, a text's bag of token counts).

Logistic regression (scikit-learn's, L2-penalised, L-BFGS) is fitted on the training split for
every inverse penalty C of a grid; the C with the best validation metric is scored on test. A
training split larger than `max_train_samples` is read through a fixed subset of that many
(the same one every run's analysis draws from), which bounds the fit on a large dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from layerwise.data.prepared import subset_order

DEFAULT_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def classifier_scores(predicted: np.ndarray, labels: np.ndarray, metric: str) -> dict:
    """{"accuracy", "samples"} of predicted labels, and "f1" for a task scored by it (of class
    1, as GLUE scores MRPC and QQP; 0 where undefined)."""
    scores = {"accuracy": float((predicted == labels).mean()), "samples": int(len(labels))}
    if metric == "f1":
        from sklearn.metrics import f1_score

        scores["f1"] = float(f1_score(labels == 1, predicted == 1, zero_division=0.0))
    return scores


def pixel_features(x: torch.Tensor) -> np.ndarray:
    """(N, C*H*W) float64: the normalised pixels of (N, C, H, W) images."""
    return x.reshape(len(x), -1).double().numpy()


def bag_of_tokens(x: torch.Tensor, vocab_size: int, pad_id: int):
    """(N, 2 V) sparse counts of each token id in each segment (the first V columns count
    segment A, the next V segment B) of (N, 2, T) token ids and token type ids; padding is not
    counted."""
    from scipy.sparse import csr_matrix

    ids, segments = x[:, 0].numpy(), x[:, 1].numpy()
    row, column = np.nonzero(ids != pad_id)
    features = segments[row, column] * vocab_size + ids[row, column]
    return csr_matrix((np.ones(len(row)), (row, features)), shape=(len(x), 2 * vocab_size))


def training_subset(features, labels: np.ndarray, max_samples: int | None):
    """The training split, or its fixed subset of `max_samples` (data.prepared.subset_order)."""
    if max_samples is None or len(labels) <= max_samples:
        return features, labels
    rows = np.sort(subset_order(len(labels))[:max_samples].numpy())
    return features[rows], labels[rows]


def majority_class(train_labels: np.ndarray, splits: dict[str, tuple], metric: str) -> dict:
    """The most frequent training class (the smallest on ties) predicted for every sample."""
    majority = int(np.argmax(np.bincount(train_labels)))
    return {"class": majority, **{split: classifier_scores(np.full(len(y), majority), y, metric)
                                  for split, (_, y) in splits.items()}}


def logistic_regression(train: tuple, splits: dict[str, tuple], metric: str,
                        c_grid: Sequence[float] = DEFAULT_C_GRID, max_iter: int = 1000
                        ) -> dict:
    """Logistic regression on (features, labels) of train, C chosen by `metric` on
    splits["val"]; the record holds C, the validation metric of every C tried, whether the
    chosen fit converged, and the scores of every split in `splits`."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    fits, tried, converged = {}, {}, {}
    for c in c_grid:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = LogisticRegression(C=c, max_iter=max_iter).fit(*train)
        converged[c] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        fits[c] = model
        features, labels = splits["val"]
        tried[c] = classifier_scores(model.predict(features), labels, metric)[metric]
    best = max(c_grid, key=lambda c: (tried[c], -c))   # ties: the stronger penalty
    return {"C": best, "converged": converged[best],
            "val_by_C": {str(c): tried[c] for c in c_grid},
            **{split: classifier_scores(fits[best].predict(f), y, metric)
               for split, (f, y) in splits.items()}}
