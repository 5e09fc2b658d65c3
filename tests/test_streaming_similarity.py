"""Streamed COS and linear CKA equal the in-memory engine's on the concatenated batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerwise.similarity.engine import cka_matrix, cos_matrix, hsic_matrix
from layerwise.similarity.streaming import StreamingSimilarity

RTOL, ATOL = 1e-10, 1e-13
CUTS = [0, 1, 37, 38, 160, 161, 333, 420]            # uneven batches, one of a single sample


def stack(layers=4, n=420, d=9, seed=0, offset=1e3):
    """float32 random walk across depth with large per-feature offsets; one zero raw vector."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, d))
    out = []
    for _ in range(layers):
        out.append(h + offset * (1.0 + rng.standard_normal(d)))
        h = h + 0.7 * rng.standard_normal((n, d))
    x = np.stack(out).astype(np.float32)
    x[1, n // 3] = 0.0
    return x


def batches(x, cuts=CUTS):
    return [x[:, s:e] for s, e in zip(cuts, cuts[1:])]


def stream(first, second=None, **kwargs):
    acc = StreamingSimilarity(**kwargs)
    for b in first:
        acc.update_means(b)
    acc.finish_means()
    for b in (first if second is None else second):
        acc.update(b)
    return acc


def assert_matches_engine(acc, x):
    for center in (True, False):
        np.testing.assert_allclose(acc.cos(center), cos_matrix(x, center=center),
                                   rtol=RTOL, atol=ATOL)
    for est in ("biased", "unbiased"):
        np.testing.assert_allclose(acc.hsic(est), hsic_matrix(x, estimator=est), rtol=RTOL)
        np.testing.assert_allclose(acc.cka(est), cka_matrix(x, estimator=est),
                                   rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("chunk_bytes", [48 * 2**20, 1, 4 * 9 * 8 * 5])
def test_streamed_equals_engine(chunk_bytes):
    x = stack()
    acc = stream(batches(x), chunk_bytes=chunk_bytes)
    assert acc.n == acc.n_centered == x.shape[1]
    assert_matches_engine(acc, x)
    assert acc.cka("unbiased")[0, 1] != acc.cka("biased")[0, 1]


def test_batch_order_and_batching_do_not_matter():
    x = stack(seed=1)
    in_order = stream(batches(x))
    other = batches(x, [0, 100, 101, 250, 420])[::-1]
    shuffled = stream(batches(x)[::-1], other)
    single = stream([x])
    for acc in (shuffled, single):
        assert_matches_engine(acc, x)
        for est in ("biased", "unbiased"):
            np.testing.assert_allclose(acc.cka(est), in_order.cka(est), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(acc.cos(), in_order.cos(), rtol=RTOL, atol=ATOL)


def test_tensors_of_any_dtype_and_from_batches():
    x = stack(layers=3, n=200, seed=2, offset=10.0)
    parts = batches(x, [0, 50, 120, 200])
    mixed = [torch.from_numpy(parts[0]).double(), torch.from_numpy(parts[1]), parts[2]]
    acc = StreamingSimilarity.from_batches(lambda: mixed)
    assert_matches_engine(acc, x)
    half = [torch.from_numpy(p).half() for p in parts]
    acc = StreamingSimilarity.from_batches(lambda: half)
    ref = np.concatenate([h.numpy() for h in half], axis=1)
    np.testing.assert_allclose(acc.cka(), cka_matrix(ref), rtol=RTOL)


def test_raw_cos_needs_pass_one_only():
    x = stack(seed=3)
    acc = StreamingSimilarity()
    for b in batches(x):
        acc.update_means(b)
    np.testing.assert_allclose(acc.cos(center=False), cos_matrix(x, center=False),
                               rtol=RTOL, atol=ATOL)
    with pytest.raises(RuntimeError, match="pass 2"):
        acc.cos()


def test_constant_layer_gives_nan():
    x = stack(layers=3, seed=4)
    x[2] = 7.5
    acc = stream(batches(x))
    for est in ("biased", "unbiased"):
        got = acc.cka(est)
        assert np.isnan(got[2]).all() and np.isnan(got[:, 2]).all()
        assert np.isfinite(got[:2, :2]).all()
        np.testing.assert_allclose(got, cka_matrix(x, estimator=est), rtol=RTOL, equal_nan=True)
    np.testing.assert_allclose(acc.cos(), cos_matrix(x), rtol=RTOL, atol=ATOL)
    assert (acc.cos()[2] == 0).all()                   # centered vectors are all zero


def test_unbiased_needs_four_samples():
    x = stack(layers=2, n=3, seed=5)
    acc = stream(batches(x, [0, 1, 3]))
    np.testing.assert_allclose(acc.cka(), cka_matrix(x), rtol=RTOL)
    with pytest.raises(ValueError, match="at least 4 samples, got 3"):
        acc.cka("unbiased")
    with pytest.raises(ValueError, match="at least 4 samples"):
        cka_matrix(x, estimator="unbiased")
    with pytest.raises(ValueError, match="unknown estimator"):
        acc.cka("rbf")


def test_kornblith_values():
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    data = np.stack([x, y])
    acc = stream(batches(data, [0, 13, 60, 100]))
    assert round(acc.cka()[0, 1], 5) == 0.55761
    assert round(acc.cka("unbiased")[0, 1], 5) == 0.51346


def test_state_does_not_grow_with_samples():
    small = stream(batches(stack(n=50), [0, 20, 50]))
    large = stream(batches(stack(n=420)))
    layers, d = 4, 9
    assert small.state_bytes == large.state_bytes
    assert large.state_bytes >= 8 * d * d * layers * (layers + 1) // 2


def test_misuse_is_refused():
    x = stack(layers=2, n=40, seed=6)
    acc = StreamingSimilarity()
    with pytest.raises(RuntimeError, match="finish_means"):
        acc.update(x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        acc.finish_means()
    acc.update_means(x)
    with pytest.raises(ValueError, match="does not match"):
        acc.update_means(x[:1])
    bad = x.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        acc.update_means(bad)
    acc = stream([x], [x[:, :30]])
    with pytest.raises(RuntimeError, match="30 samples, pass 1 40"):
        acc.cka()
    acc.update(x[:, 30:])
    acc.update(x[:, :1])
    with pytest.raises(RuntimeError, match="41 samples"):
        acc.cos()
    with pytest.raises(RuntimeError, match="pass 1 is over"):
        acc.update_means(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches():
    x = stack(seed=7)
    acc = stream([torch.from_numpy(b).cuda() for b in batches(x)])
    assert acc.device.type == "cuda"
    assert_matches_engine(acc, x)
