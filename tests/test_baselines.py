"""The classifiers without hidden layers against scikit-learn used directly and hand counts, and
the depth-use share on constructed runs (one that has not learned among them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from layerwise.baselines.depth_use import depth_use, learning, uses_depth
from layerwise.baselines.fit import fit_baselines
from layerwise.baselines.linear import bag_of_tokens, training_subset
from layerwise.data.prepared import write_prepared
from layerwise.report.tables import depth_use_table


def image_dataset(tmp_path, seed=0):
    """Three classes of 4x4 images: a class-specific pattern under noise."""
    generator = np.random.default_rng(seed)
    patterns = generator.normal(size=(3, 1, 4, 4))
    arrays = {}
    for split, n in (("train", 60), ("val", 30), ("test", 30)):
        labels = generator.integers(0, 3, size=n)
        images = patterns[labels] + 1.5 * generator.normal(size=(n, 1, 4, 4))
        arrays[split] = (torch.tensor(images, dtype=torch.float32), torch.tensor(labels))
    write_prepared(tmp_path, arrays, {"source": "sklearn_digits", "kind": "image",
                                      "num_classes": 3, "input_shape": [1, 4, 4]})
    return arrays


def test_logistic_regression_on_pixels_equals_scikit_learn_with_c_chosen_on_validation(
        tmp_path):
    from sklearn.linear_model import LogisticRegression

    arrays = image_dataset(tmp_path)
    grid = (0.01, 0.1, 1.0, 10.0)
    record = fit_baselines(tmp_path, "accuracy", c_grid=grid)
    flat = {s: (x.reshape(len(x), -1).double().numpy(), y.numpy()) for s, (x, y) in arrays.items()}
    val = {c: LogisticRegression(C=c, max_iter=1000).fit(*flat["train"]).score(*flat["val"])
           for c in grid}
    best = max(grid, key=lambda c: (val[c], -c))
    expected = LogisticRegression(C=best, max_iter=1000).fit(*flat["train"]).score(*flat["test"])
    logistic = record["models"]["logistic"]
    assert (record["trivial"], record["shallow"], record["metric"]) == ("majority", "logistic",
                                                                          "accuracy")
    assert logistic["C"] == best and logistic["converged"]
    assert logistic["test"]["accuracy"] == pytest.approx(expected)
    assert logistic["val_by_C"] == {str(c): pytest.approx(v) for c, v in val.items()}
    counts = np.bincount(flat["train"][1])
    majority = int(np.argmax(counts))
    assert record["models"]["majority"]["test"]["accuracy"] == pytest.approx(
        np.mean(flat["test"][1] == majority))


def test_bag_of_tokens_counts_each_segments_tokens_and_skips_padding():
    pad = 0
    x = torch.tensor([[[2, 5, 5, 3, 6, 0], [0, 0, 0, 0, 1, 0]],
                      [[2, 4, 3, 0, 0, 0], [0, 0, 0, 0, 0, 0]]])
    bag = bag_of_tokens(x, vocab_size=7, pad_id=pad).toarray()
    expected = np.zeros((2, 14))
    for row, (ids, segments) in enumerate(x.numpy()):
        for token, segment in zip(ids, segments):
            if token != pad:
                expected[row, segment * 7 + token] += 1
    np.testing.assert_array_equal(bag, expected)
    assert bag[0, 5] == 2 and bag[0, 7 + 6] == 1


def test_a_large_training_split_is_bounded_by_a_fixed_subset():
    features, labels = np.arange(100).reshape(50, 2), np.arange(50)
    bounded = training_subset(features, labels, 20)
    assert len(bounded[1]) == 20 and np.array_equal(bounded[0][:, 0] // 2, bounded[1])
    assert np.array_equal(training_subset(features, labels, 20)[1], bounded[1])
    assert training_subset(features, labels, None)[1] is labels


@pytest.fixture
def baselines():
    return {"metric": "accuracy", "trivial": "majority", "shallow": "logistic",
            "models": {"majority": {"label": "majority class", "test": {"accuracy": 0.2}},
                       "logistic": {"label": "logistic regression", "test": {"accuracy": 0.8}}}}


def layers(method, seed, values):
    return [{"method": method, "seed": seed, "split": "test", "layer": layer, "accuracy": v}
            for layer, v in enumerate(values)]


def test_the_depth_use_share_of_a_constructed_case(baselines):
    acc = pd.DataFrame(layers("standard", 0, [0.1, 0.5, 0.8, 0.9])       # layer 0: embeddings
                       + layers("tuned_lens", 0, [0.1, 0.7, 0.85, 0.9])
                       + layers("aligned", 0, [0.1, 0.2, 0.15, 0.18]))     # never beats trivial
    shares = depth_use(acc, baselines)
    standard = shares[shares["method"] == "standard"].set_index("layer")["share"]
    assert standard.tolist() == pytest.approx([0.3 / 0.7, 0.6 / 0.7, 1.0])
    assert shares[shares["method"] == "aligned"]["share"].isna().all()  # has not learned
    runs = learning(acc, baselines).set_index("method")
    assert runs.loc["standard", "beats_shallow"] and not runs.loc["aligned", "learned"]
    table, shown = depth_use_table(shares, learning(acc, baselines), "accuracy")
    assert table["method"].tolist() == ["standard", "aligned", "tuned_lens"]
    assert table.set_index("method").loc["tuned_lens", "s_1"] == pytest.approx(0.5 / 0.7)
    assert shown.set_index("method").loc["aligned", "s_1"] == "–"
    verdict = uses_depth(table, "standard", "tuned_lens", 0.6)
    assert not verdict["deep"] and verdict["first_layer_share"] == [pytest.approx(0.5 / 0.7)]
    assert uses_depth(table, "standard", "tuned_lens", 0.75)["deep"]
    assert uses_depth(table, "standard", "standard", 0.6)["deep"]    # read by its own head


def test_a_language_models_share_turns_the_sign_of_the_cross_entropy():
    baselines = {"metric": "cross_entropy", "trivial": "unigram", "shallow": "kneser_ney",
                 "models": {"unigram": {"label": "u", "test": {"cross_entropy": 3.0}},
                            "kneser_ney": {"label": "k", "test": {"cross_entropy": 1.9}}}}
    acc = pd.DataFrame([{"method": "standard", "seed": 1, "split": "test", "layer": layer,
                         "cross_entropy": ce} for layer, ce in enumerate([5.0, 2.5, 2.0])])
    shares = depth_use(acc, baselines)
    assert shares.set_index("layer")["share"].tolist() == pytest.approx([0.5, 1.0])
    runs = learning(acc, baselines)
    assert runs["learned"].all() and not runs["beats_shallow"].any()


def test_a_task_scored_by_f1_chooses_c_by_the_f1_of_bag_of_tokens_regression(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    generator = np.random.default_rng(2)
    arrays = {}
    for split, n in (("train", 80), ("val", 40), ("test", 40)):
        labels = generator.integers(0, 2, size=n)
        ids = generator.integers(2, 12, size=(n, 6)) + 6 * labels[:, None] * (
            generator.random((n, 6)) < 0.3)
        x = np.stack([np.concatenate([ids, np.zeros((n, 2), int)], 1), np.zeros((n, 8), int)], 1)
        arrays[split] = (torch.tensor(x), torch.tensor(labels))
    write_prepared(tmp_path, arrays, {"source": "rotten_tomatoes", "kind": "text",
                                      "num_classes": 2, "vocab_size": 18, "pad_id": 0,
                                      "input_shape": [2, 8]})
    grid = (0.01, 0.1, 1.0)
    record = fit_baselines(tmp_path, "f1", c_grid=grid)
    bags = {s: bag_of_tokens(x, 18, 0) for s, (x, _) in arrays.items()}
    ys = {s: y.numpy() for s, (_, y) in arrays.items()}

    def fit(c):
        return LogisticRegression(C=c, max_iter=1000).fit(bags["train"], ys["train"])

    val = {c: f1_score(ys["val"], fit(c).predict(bags["val"])) for c in grid}
    best = max(grid, key=lambda c: (val[c], -c))
    logistic = record["models"]["logistic"]
    assert record["metric"] == "f1" and logistic["C"] == best
    assert logistic["test"]["f1"] == pytest.approx(f1_score(ys["test"],
                                                            fit(best).predict(bags["test"])))
    assert "f1" in record["models"]["majority"]["test"]
    assert "f1" not in fit_baselines(tmp_path, "accuracy", c_grid=grid)["models"]["logistic"][
        "test"]
