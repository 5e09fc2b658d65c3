"""Layer similarity measures (COS, CKA) against independent per-pair reference formulas."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

import layerwise.similarity.engine as sim
from layerwise.similarity.engine import (cka_cross, cka_matrix, cos_matrix, cos_per_sample,
                                         hsic_matrix, route_costs)


# ----------------------------------------------------------------------------- references

def ref_gram(x, kernel="linear", threshold=1.0):
    x = np.asarray(x, dtype=np.float64)
    if kernel == "linear":
        return x @ x.T
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2.0 * threshold ** 2 * np.median(d2)))


def ref_hsic_biased(k, l):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def ref_hsic_unbiased(k, l):
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    one = np.ones(n)
    return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (one @ kt @ lt @ one)) / (n * (n - 3))


def ref_hsic(k, l, estimator):
    return ref_hsic_biased(k, l) if estimator == "biased" else ref_hsic_unbiased(k, l)


def ref_cka(k, l, estimator="biased"):
    return ref_hsic(k, l, estimator) / np.sqrt(ref_hsic(k, k, estimator) * ref_hsic(l, l, estimator))


def ref_cka_cross(a, b, kernel="linear", estimator="biased", threshold=1.0):
    ka = [ref_gram(x, kernel, threshold) for x in a]
    kb = [ref_gram(x, kernel, threshold) for x in b]
    return np.array([[ref_cka(k, l, estimator) for l in kb] for k in ka])


def ref_cos(reps, center=True):
    reps = np.asarray(reps, dtype=np.float64)
    if center:
        reps = reps - reps.mean(axis=1, keepdims=True)
    layers, n, _ = reps.shape
    per = np.zeros((layers, layers, n))
    for a in range(layers):
        for b in range(layers):
            for i in range(n):
                u, v = reps[a, i], reps[b, i]
                nu, nv = np.linalg.norm(u), np.linalg.norm(v)
                per[a, b, i] = 0.0 if nu == 0 or nv == 0 else u @ v / (nu * nv)
    return per


def random_walk(layers, n, d, seed=0, step=0.7, offset=0.0):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, d))
    out = []
    for _ in range(layers):
        out.append(h + offset * rng.standard_normal(d))
        h = h + step * rng.standard_normal((n, d))
    return np.stack(out)


@pytest.fixture(scope="module")
def oracle():
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return x, y


@pytest.fixture
def small_chunks(monkeypatch):
    """Force many sample chunks and Gram row blocks, to exercise the streaming code."""
    monkeypatch.setattr(sim, "_CHUNK_BYTES", 1)
    monkeypatch.setattr(sim, "_GRAM_BLOCK_BYTES", 1)


# ----------------------------------------------------------------------------- CKA values

@pytest.mark.parametrize("route", ["gram", "feature", "auto"])
def test_oracle_linear_and_debiased(oracle, route):
    x, y = oracle
    stack = np.stack([x, y])
    assert round(cka_matrix(stack, route=route)[0, 1], 5) == 0.55761
    assert round(cka_matrix(stack, estimator="unbiased", route=route)[0, 1], 5) == 0.51346
    assert round(cka_cross(x[None], y[None], route=route)[0, 0], 5) == 0.55761


def test_oracle_rbf(oracle):
    x, y = oracle
    value = cka_matrix(np.stack([x, y]), kernel="rbf", rbf_threshold=0.5)[0, 1]
    assert round(value, 5) == 0.65483
    assert round(cka_cross(x[None], y[None], kernel="rbf", rbf_threshold=0.5)[0, 0], 5) == 0.65483


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("route", ["gram", "feature"])
def test_linear_cka_matches_reference(estimator, route):
    reps = random_walk(4, 30, 6, seed=1, offset=3.0)
    expected = ref_cka_cross(reps, reps, estimator=estimator)
    got = cka_matrix(reps, estimator=estimator, route=route)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_rbf_cka_matches_reference(estimator):
    reps = random_walk(3, 25, 4, seed=2, offset=2.0)
    expected = ref_cka_cross(reps, reps, kernel="rbf", estimator=estimator, threshold=0.8)
    got = cka_matrix(reps, kernel="rbf", estimator=estimator, rbf_threshold=0.8)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_hsic_matrix_matches_reference(estimator):
    reps = random_walk(3, 20, 5, seed=3, offset=4.0)
    expected = np.array([[ref_hsic(ref_gram(a), ref_gram(b), estimator) for b in reps]
                         for a in reps])
    for route in ("gram", "feature"):
        got = hsic_matrix(reps, estimator=estimator, route=route)
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=0)


def exact_hsic_unbiased(x, y):
    """Unbiased HSIC of integer features, linear kernel, in exact rational arithmetic."""
    k, l = x @ x.T, y @ y.T                                 # int64 Grams
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    n = k.shape[0]
    trace, sk, sl = int(np.sum(k * l)), int(k.sum()), int(l.sum())
    cross = int(k.sum(axis=1) @ l.sum(axis=1))
    return (trace + Fraction(sk * sl, (n - 1) * (n - 2)) - Fraction(2 * cross, n - 2)) / (n * (n - 3))


def test_unbiased_hsic_is_invariant_to_feature_shifts():
    # Centering features first is exact for the unbiased linear estimator: checked in exact
    # arithmetic on integer data, then against the implementation.
    rng = np.random.default_rng(4)
    x, y = rng.integers(-3, 4, size=(2, 15, 4))
    shifted_x, shifted_y = x + rng.integers(-9, 10, 4), y + rng.integers(-9, 10, 4)
    base = exact_hsic_unbiased(x, y)
    assert exact_hsic_unbiased(shifted_x, shifted_y) == base
    for route in ("gram", "feature"):
        got = hsic_matrix(np.stack([shifted_x, shifted_y]).astype(np.float64),
                          estimator="unbiased", route=route)
        assert got[0, 1] == pytest.approx(float(base), rel=1e-12)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("n", [40, 1500])
def test_gram_route_equals_feature_route(estimator, n):
    reps = random_walk(5, n, 8, seed=5, offset=10.0)
    gram = cka_matrix(reps, estimator=estimator, route="gram")
    feature = cka_matrix(reps, estimator=estimator, route="feature")
    np.testing.assert_allclose(gram, feature, rtol=0, atol=1e-10)
    other = random_walk(3, n, 5, seed=6)
    np.testing.assert_allclose(cka_cross(reps, other, estimator=estimator, route="gram"),
                               cka_cross(reps, other, estimator=estimator, route="feature"),
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_streaming_chunks_match_reference(small_chunks, estimator):
    reps = random_walk(3, 37, 4, seed=7, offset=5.0)
    expected = ref_cka_cross(reps, reps, estimator=estimator)
    for route in ("gram", "feature"):
        np.testing.assert_allclose(cka_matrix(reps, estimator=estimator, route=route), expected,
                                   rtol=0, atol=1e-10)
    other = random_walk(2, 37, 6, seed=8)
    np.testing.assert_allclose(cka_cross(reps, other, estimator=estimator, route="feature"),
                               ref_cka_cross(reps, other, estimator=estimator),
                               rtol=0, atol=1e-10)
    rbf = ref_cka_cross(reps, reps, kernel="rbf", estimator=estimator)
    np.testing.assert_allclose(cka_matrix(reps, kernel="rbf", estimator=estimator), rbf,
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(cos_matrix(reps), ref_cos(reps).mean(-1), rtol=0, atol=1e-13)


def test_route_costs_pick_feature_route_for_many_samples():
    big = route_costs(10000, 13, 384)
    assert big["feature"] < big["gram"]
    small = route_costs(500, 13, 384)
    assert small["gram"] < small["feature"]
    assert big["feature"] == 10000 * 384 ** 2 * 13 * 14 // 2


# ----------------------------------------------------------------------------- minibatch CKA

@pytest.mark.parametrize("route", ["gram", "feature"])
def test_minibatch_single_batch_equals_full_unbiased(route):
    reps = random_walk(4, 24, 5, seed=9, offset=2.0)
    full = cka_matrix(reps, estimator="unbiased")
    for batch_size in (24, 100):
        got = cka_matrix(reps, estimator="unbiased", batch_size=batch_size, route=route)
        np.testing.assert_allclose(got, full, rtol=0, atol=1e-10)


def batch_order(n: int, seed: int = 0) -> np.ndarray:
    """The documented order of minibatch CKA: a permutation drawn from the batch seed."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()


@pytest.mark.parametrize("route", ["gram", "feature", "auto"])
def test_minibatch_unequal_last_batch_equals_hand_sum(route):
    reps = random_walk(3, 23, 4, seed=10, offset=3.0)
    batches = [(0, 8), (8, 16), (16, 23)]                  # last batch has 7 samples
    order = batch_order(23)
    unshuffled = reps
    reps = reps[:, order]                                   # the hand sum walks the permutation
    sums = np.zeros((3, 3))
    for s, e in batches:
        grams = [ref_gram(x[s:e]) for x in reps]
        sums += np.array([[ref_hsic_unbiased(k, l) for l in grams] for k in grams])
    expected = sums / np.sqrt(np.outer(np.diag(sums), np.diag(sums)))
    got = cka_matrix(unshuffled, estimator="unbiased", batch_size=8, route=route)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    other_unshuffled = random_walk(2, 23, 6, seed=11)
    other = other_unshuffled[:, order]
    cross_sums = np.zeros((3, 2))
    other_self = np.zeros(2)
    for s, e in batches:
        ka = [ref_gram(x[s:e]) for x in reps]
        kb = [ref_gram(x[s:e]) for x in other]
        cross_sums += np.array([[ref_hsic_unbiased(k, l) for l in kb] for k in ka])
        other_self += np.array([ref_hsic_unbiased(l, l) for l in kb])
    expected_cross = cross_sums / np.sqrt(np.outer(np.diag(sums), other_self))
    np.testing.assert_allclose(cka_cross(unshuffled, other_unshuffled, estimator="unbiased",
                                         batch_size=8, route=route),
                               expected_cross, rtol=0, atol=1e-10)


def test_minibatch_batches_follow_a_seeded_permutation_on_class_sorted_data():
    """Samples stored class by class (ImageNet's validation folders): consecutive batches would
    each see a few classes; batches of the seeded permutation estimate what shuffled data
    gives, and the seed is what decides which samples share a batch."""
    rng = np.random.default_rng(0)
    classes, per_class, width = 10, 40, 8
    means = rng.normal(size=(classes, width)) * 2
    labels = np.repeat(np.arange(classes), per_class)            # sorted by class
    x = means[labels] + rng.normal(size=(len(labels), width))
    y = np.tanh(x @ rng.normal(size=(width, width))) + rng.normal(size=x.shape)
    reps = np.stack([x, y])
    permuted = cka_matrix(reps, estimator="unbiased", batch_size=40)[0, 1]
    order = batch_order(len(labels))
    consecutive_sums = np.zeros((2, 2))
    shuffled_sums = np.zeros((2, 2))
    for s in range(0, len(labels), 40):
        for sums, rows in ((consecutive_sums, np.arange(s, s + 40)),
                           (shuffled_sums, order[s:s + 40])):
            grams = [ref_gram(layer[rows]) for layer in reps]
            sums += np.array([[ref_hsic_unbiased(k, l) for l in grams] for k in grams])

    def cka(sums):
        return sums[0, 1] / np.sqrt(sums[0, 0] * sums[1, 1])

    full = cka_matrix(reps, estimator="unbiased")[0, 1]
    assert permuted == pytest.approx(cka(shuffled_sums), abs=1e-10)
    assert abs(cka(consecutive_sums) - full) > 3 * abs(permuted - full)  # sorted batches drift
    other_seed = cka_matrix(reps, estimator="unbiased", batch_size=40, batch_seed=1)[0, 1]
    assert other_seed != permuted and other_seed == pytest.approx(permuted, abs=0.05)


def test_minibatch_rejects_small_batches():
    reps = random_walk(2, 18, 3, seed=12)
    with pytest.raises(ValueError, match="last batch has 2 samples"):
        cka_matrix(reps, estimator="unbiased", batch_size=8)
    for bad in (3, 0, -4, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            cka_matrix(reps, estimator="unbiased", batch_size=bad)
    cka_matrix(reps, estimator="unbiased", batch_size=7)    # 7, 7, 4: accepted


# ----------------------------------------------------------------------------- properties

@pytest.mark.parametrize("kernel,estimator",
                         [("linear", "biased"), ("linear", "unbiased"), ("rbf", "biased")])
def test_self_similarity_is_one(kernel, estimator):
    reps = random_walk(3, 30, 5, seed=13)
    reps = np.concatenate([reps, reps[:1]])                 # layer 3 repeats layer 0
    got = cka_matrix(reps, kernel=kernel, estimator=estimator)
    np.testing.assert_allclose(np.diag(got), 1.0, rtol=0, atol=1e-10)
    assert got[0, 3] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kernel,estimator",
                         [("linear", "biased"), ("linear", "unbiased"), ("rbf", "unbiased")])
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(kernel, estimator):
    reps = random_walk(3, 40, 6, seed=14, offset=1.0)
    q, _ = np.linalg.qr(np.random.default_rng(15).standard_normal((6, 6)))
    moved = reps @ q * 7.5
    base = cka_matrix(reps, kernel=kernel, estimator=estimator)
    np.testing.assert_allclose(cka_cross(reps, moved, kernel=kernel, estimator=estimator), base,
                               rtol=0, atol=1e-10)


def test_debiased_cka_can_be_negative_and_is_not_clamped():
    rng = np.random.default_rng(16)
    for _ in range(200):                                    # independent data, few samples
        x, y = rng.standard_normal((2, 8, 3))
        expected = ref_cka(ref_gram(x), ref_gram(y), "unbiased")
        if expected < -0.05:
            break
    else:
        pytest.fail("no negative debiased CKA found")
    for route in ("gram", "feature"):
        got = cka_matrix(np.stack([x, y]), estimator="unbiased", route=route)[0, 1]
        assert got < 0
        assert got == pytest.approx(expected, abs=1e-12)
        assert hsic_matrix(np.stack([x, y]), estimator="unbiased", route=route)[0, 1] < 0


def test_float32_with_large_means_matches_float64_reference():
    rng = np.random.default_rng(17)
    reps = random_walk(3, 3000, 16, seed=18)
    reps32 = (reps + 1e3 + rng.standard_normal(16)).astype(np.float32)
    exact = reps32.astype(np.float64)                       # the values the float32 input holds
    centered = exact - exact.mean(axis=1, keepdims=True)
    expected = np.array([[np.sum((a.T @ b) ** 2) / np.sqrt(np.sum((a.T @ a) ** 2)
                                                            * np.sum((b.T @ b) ** 2))
                          for b in centered] for a in centered])
    for route in ("gram", "feature"):
        np.testing.assert_allclose(cka_matrix(reps32, route=route), expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(cka_matrix(reps32, estimator="unbiased", route=route),
                                   cka_matrix(exact, estimator="unbiased", route="gram"),
                                   rtol=0, atol=1e-6)
    unit = centered / np.linalg.norm(centered, axis=-1, keepdims=True)
    cos_expected = np.einsum("aid,bid->ab", unit, unit) / unit.shape[1]
    np.testing.assert_allclose(cos_matrix(reps32), cos_expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_cross_model_with_different_widths(kernel, estimator):
    a = random_walk(3, 26, 4, seed=19, offset=2.0)
    b = np.tanh(a[:2, :, :3]) @ np.random.default_rng(20).standard_normal((3, 9))
    expected = ref_cka_cross(a, b, kernel=kernel, estimator=estimator)
    got = cka_cross(a, b, kernel=kernel, estimator=estimator)
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- COS

@pytest.mark.parametrize("center", [True, False])
def test_cos_matches_per_sample_loop(center):
    reps = random_walk(3, 12, 5, seed=21, offset=2.0)
    per = ref_cos(reps, center)
    got = cos_matrix(reps, center=center)
    np.testing.assert_allclose(got, per.mean(-1), rtol=0, atol=1e-13)
    assert np.all(np.abs(got) <= 1.0 + 1e-14)
    for ref_layer in (-1, 0):
        layer = ref_layer % 3
        np.testing.assert_allclose(cos_per_sample(reps, ref_layer, center), per[:, layer, :],
                                   rtol=0, atol=1e-13)


def test_cos_centered_and_raw_differ_and_stay_in_range():
    reps = random_walk(3, 50, 4, seed=22) + 20.0            # an offset shared by all layers
    raw, centered = cos_matrix(reps, center=False), cos_matrix(reps, center=True)
    assert raw.min() > 0.9                                  # dominated by the shared offsets
    assert not np.allclose(raw, centered)
    per = cos_per_sample(reps, center=True)
    assert per.shape == (3, 50)
    # In [-1, 1] up to rounding (a unit vector's dot with itself may land one ulp above 1).
    assert np.all(np.abs(per) <= 1.0 + 1e-14) and np.all(np.abs(centered) <= 1.0 + 1e-14)


def test_cos_zero_vector_counts_as_zero():
    # Columns sum to 0 before the +5: sample 0 equals the mean exactly, so its centered vector
    # is zero; sample 3 of layer 1 is a raw zero vector.
    base = np.array([[0.0, 0.0], [2.0, 1.0], [-1.0, -2.0], [-1.0, 1.0]]) + 5.0
    layer1 = base * np.array([1.0, -3.0])
    layer1[3] = 0.0
    reps = np.stack([base, layer1])
    per = cos_per_sample(reps, ref_layer=0, center=True)
    assert per[0, 0] == 0.0 and per[1, 0] == 0.0
    np.testing.assert_allclose(cos_matrix(reps), ref_cos(reps).mean(-1), rtol=0, atol=1e-15)
    assert cos_matrix(reps)[0, 0] == pytest.approx(0.75)  # 3 of 4 samples have a direction
    raw = cos_per_sample(reps, ref_layer=1, center=False)
    assert raw[0, 3] == 0.0 and raw[1, 3] == 0.0


# ----------------------------------------------------------------------------- inputs

def test_torch_input_matches_numpy():
    reps = random_walk(3, 50, 6, seed=23, offset=100.0).astype(np.float32)
    tensor = torch.from_numpy(reps.copy()).requires_grad_(True)
    for kwargs in ({}, {"estimator": "unbiased"}, {"kernel": "rbf"}, {"batch_size": 10}):
        np.testing.assert_array_equal(cka_matrix(tensor, **kwargs), cka_matrix(reps, **kwargs))
    np.testing.assert_array_equal(cos_matrix(tensor), cos_matrix(reps))
    np.testing.assert_array_equal(cka_cross(tensor, reps[:2]), cka_cross(reps, reps[:2]))
    strided = torch.from_numpy(reps.copy()).transpose(0, 1).contiguous().transpose(0, 1)
    np.testing.assert_allclose(cka_matrix(strided), cka_matrix(reps), rtol=0, atol=1e-14)
    out = cka_matrix(tensor.to(torch.float16))
    assert out.dtype == np.float64 and isinstance(out, np.ndarray)


def test_inputs_are_not_modified_and_read_only_arrays_work():
    reps = random_walk(3, 20, 4, seed=27, offset=5.0)
    keep = reps.copy()
    reps.setflags(write=False)
    tensor = torch.from_numpy(keep.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (cos_matrix, cos_per_sample, cka_matrix,
                   lambda r: cka_matrix(r, estimator="unbiased", route="gram"),
                   lambda r: cka_matrix(r, kernel="rbf"), lambda r: cka_cross(r, r)):
            fn(reps)
            fn(tensor)
    np.testing.assert_array_equal(reps, keep)
    np.testing.assert_array_equal(tensor.numpy(), keep)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_matches_cpu():
    reps = random_walk(4, 300, 16, seed=24, offset=50.0).astype(np.float32)
    gpu = torch.from_numpy(reps).cuda()
    for kwargs in ({}, {"estimator": "unbiased"}, {"kernel": "rbf"}, {"route": "gram"},
                   {"route": "feature", "batch_size": 64}):
        got = cka_matrix(gpu, **kwargs)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        np.testing.assert_allclose(got, cka_matrix(reps, **kwargs), rtol=0, atol=1e-10)
    np.testing.assert_allclose(cos_matrix(gpu), cos_matrix(reps), rtol=0, atol=1e-10)
    np.testing.assert_allclose(cka_cross(gpu, reps[:2]), cka_cross(reps, reps[:2]),
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_rejected(bad):
    reps = random_walk(2, 10, 3, seed=25)
    reps[1, 4, 2] = bad
    for call in (lambda: cka_matrix(reps), lambda: cka_matrix(reps, route="gram"),
                 lambda: cka_matrix(reps, kernel="rbf"), lambda: cos_matrix(reps),
                 lambda: cos_matrix(reps, center=False), lambda: cos_per_sample(reps),
                 lambda: cka_cross(reps[:1], reps)):
        with pytest.raises(ValueError, match="NaN or Inf"):
            call()


def test_invalid_arguments_rejected():
    reps = random_walk(2, 10, 3, seed=26)
    with pytest.raises(ValueError, match="linear, rbf"):
        cka_matrix(reps, kernel="poly")
    with pytest.raises(ValueError, match="biased, unbiased"):
        cka_matrix(reps, estimator="debiased")
    with pytest.raises(ValueError, match="auto, gram, feature"):
        cka_matrix(reps, route="fast")
    with pytest.raises(ValueError, match="linear kernel only"):
        cka_matrix(reps, kernel="rbf", route="feature")
    with pytest.raises(ValueError, match="3-D"):
        cka_matrix(reps[0])
    with pytest.raises(ValueError, match="3-D"):
        cos_matrix(reps[0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        cos_matrix(reps[:, :1])
    with pytest.raises(ValueError, match="at least 4 samples"):
        cka_matrix(reps[:, :3], estimator="unbiased")
    cka_matrix(reps[:, :3])                                 # biased needs only 2
    with pytest.raises(ValueError, match="same samples"):
        cka_cross(reps, reps[:, :9])
    with pytest.raises(ValueError, match="ref_layer"):
        cos_per_sample(reps, ref_layer=2)
    with pytest.raises(ValueError, match="rbf_threshold"):
        cka_matrix(reps, kernel="rbf", rbf_threshold=0.0)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 40_000])
def test_rbf_bandwidth_median_is_numpys(size):
    """The median of the squared distances (numpy's introselect on the CPU) equals np.median
    for odd and even counts, ties included."""
    values = torch.from_numpy(np.random.default_rng(size).integers(0, 7, size).astype(np.float64))
    median = sim._median(values)
    assert median.dtype == torch.float64 and median.shape == ()
    assert median.item() == np.median(values.numpy())
