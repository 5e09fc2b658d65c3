"""All-pairs COS and exact linear CKA over data too large to hold: running float64 sums.

Causal-LM hidden states at the paper's scale (GPT-2 on the WikiText-103 test split: 418,776
tokens x 13 layers x 768 features, 16.7 GB of float32) do not fit in memory, but raw and
centered COS and linear CKA (biased and unbiased) need only sums over samples. They follow from
the same statistics as the feature route of :mod:`layerwise.similarity.engine`, accumulated
batch by batch as the batches leave the model, in two passes over the same samples:

1. :meth:`StreamingSimilarity.update_means` for every batch: per-layer feature sums (float64)
   and the count, plus the sums of raw cosines (so raw COS needs this pass only);
2. :meth:`StreamingSimilarity.finish_means`, then :meth:`StreamingSimilarity.update` for every
   batch again, in any order and batching: on features centered with the float64 means, the
   upper block triangle of ``Z' Z`` (``Z = [X_1 ... X_L]``), the per-sample squared norms
   statistics ``sum_i q_a(i) q_b(i)`` and ``sum_i q_a(i)`` of the unbiased estimator, and the
   sums of centered cosines.

Results equal the engine's on the concatenated data up to float64 rounding: ``cos`` its
``cos_matrix``; ``hsic`` and ``cka`` its ``hsic_matrix`` and ``cka_matrix`` with the linear
kernel. A sample whose (centered) vector is exactly zero contributes cosine 0; a constant layer
has zero self-HSIC and NaN CKA entries; unbiased values may be negative and are never clamped.
Pass 2 must see exactly the samples of pass 1 (only the count is checked): a model run twice
must be deterministic (evaluation mode, no dropout).

Memory is independent of the number of samples: the state holds ``d^2 L (L+1) / 2`` float64
for ``Z' Z`` (429 MiB for 13 layers of 768 features) plus ``O(L d + L^2)``, on the device of the
first batch (or ``device``); each batch is processed in sample chunks of about ``chunk_bytes``
float64, in two reused scratch buffers of that size (96 MiB by default). Pass 2 costs
``n d^2 L (L+1) / 2`` multiply-adds, the engine's feature route
(:func:`~layerwise.similarity.engine.route_costs`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch

from layerwise.similarity.engine import HSIC_ESTIMATORS, as_tensor

__all__ = ["StreamingSimilarity"]

_F64 = torch.float64


def _unit_gram(z: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Sum over samples of the cosines of every layer pair: ``U U'`` of the unit vectors.

    `z` is a contiguous (L, m, d) float64 scratch tensor, scaled in place to unit vectors;
    `norm` its (L, m) sample norms. Zero vectors stay zero (cosine 0).
    """
    z /= torch.where(norm > 0, norm, torch.ones_like(norm))[..., None]
    flat = z.view(z.shape[0], -1)
    return flat @ flat.T


class StreamingSimilarity:
    """Two-pass accumulator of all-pairs COS and linear CKA; see the module docstring.

    A batch is a ``(layers, samples, features)`` numpy array or torch tensor of any real dtype,
    on any device (moved to the state's device); every batch has the first batch's layers and
    features.
    """

    def __init__(self, device: str | torch.device | None = None, chunk_bytes: int = 48 * 2**20):
        self.device = torch.device(device) if device is not None else None
        self.chunk_bytes = int(chunk_bytes)
        self.layers: int | None = None
        self.features: int | None = None
        self.n = 0              # samples of pass 1
        self.n_centered = 0     # samples of pass 2
        self._sum = self._cos_raw = self._mean = None
        self._blocks: list[torch.Tensor] = []
        self._qq = self._q = self._cos_centered = None
        self._scratch: list[torch.Tensor] = []

    @classmethod
    def from_batches(cls, make_batches: Callable[[], Iterable[Any]],
                     **kwargs) -> "StreamingSimilarity":
        """Both passes over ``make_batches()``, which is called twice and must yield the same
        samples both times."""
        acc = cls(**kwargs)
        for batch in make_batches():
            acc.update_means(batch)
        acc.finish_means()
        for batch in make_batches():
            acc.update(batch)
        return acc

    # ------------------------------------------------------------------------- input

    def _tensor(self, batch: Any) -> torch.Tensor:
        x = as_tensor(batch, "a batch", min_samples=1)
        if self.layers is None:
            self.layers, self.features = x.shape[0], x.shape[2]
            self.device = self.device or x.device
        elif (x.shape[0], x.shape[2]) != (self.layers, self.features):
            raise ValueError(f"batch shape {tuple(x.shape)} does not match ({self.layers}, "
                             f"samples, {self.features}) of the first batch")
        return x.to(self.device)

    def _spans(self, m: int):
        step = max(1, self.chunk_bytes // (self.layers * self.features * 8))
        return [(s, min(s + step, m)) for s in range(0, m, step)]

    def _buffer(self, i: int, *shape: int) -> torch.Tensor:
        """Float64 scratch tensor number `i`, reused across chunks: a fresh allocation per chunk
        costs more in page faults than the copy into it."""
        numel = int(np.prod(shape))
        if len(self._scratch) <= i:
            self._scratch.append(torch.empty(0, dtype=_F64, device=self.device))
        if self._scratch[i].numel() < numel:
            self._scratch[i] = torch.empty(numel, dtype=_F64, device=self.device)
        return self._scratch[i][:numel].view(shape)

    # ------------------------------------------------------------------------- pass 1

    def update_means(self, batch: Any) -> None:
        """Pass 1: add a batch to the feature sums and the raw-cosine sums."""
        if self._mean is not None:
            raise RuntimeError("finish_means() was called: pass 1 is over")
        x = self._tensor(batch)
        if self._sum is None:
            self._sum = torch.zeros(self.layers, self.features, dtype=_F64, device=self.device)
            self._cos_raw = torch.zeros(self.layers, self.layers, dtype=_F64, device=self.device)
        for s, e in self._spans(x.shape[1]):
            z = self._buffer(0, self.layers, e - s, self.features).copy_(x[:, s:e])
            total = z.sum(dim=1)
            if not bool(torch.isfinite(total).all()):
                raise ValueError("a batch contains NaN or Inf values" if not
                                 bool(torch.isfinite(z).all()) else
                                 "a batch has values too large to sum in float64")
            self._sum += total
            self._cos_raw += _unit_gram(z, torch.linalg.vector_norm(z, dim=-1))
        self.n += x.shape[1]

    def finish_means(self) -> None:
        """End pass 1: fix the float64 means and allocate the pass-2 state."""
        if self._mean is not None:
            raise RuntimeError("finish_means() was already called")
        self._need(2)
        layers, d, dev = self.layers, self.features, self.device
        self._mean = self._sum / self.n
        # Block row i holds X_i' [X_i ... X_L]: the upper block triangle of Z'Z.
        self._blocks = [torch.zeros(d, (layers - i) * d, dtype=_F64, device=dev)
                        for i in range(layers)]
        self._qq = torch.zeros(layers, layers, dtype=_F64, device=dev)
        self._q = torch.zeros(layers, dtype=_F64, device=dev)
        self._cos_centered = torch.zeros(layers, layers, dtype=_F64, device=dev)

    # ------------------------------------------------------------------------- pass 2

    def update(self, batch: Any) -> None:
        """Pass 2: add a centered batch to ``Z' Z``, the squared-norm sums and the cosine sums."""
        if self._mean is None:
            raise RuntimeError("call update_means() on every batch, then finish_means(), "
                               "before update()")
        x = self._tensor(batch)
        layers, d = self.layers, self.features
        for s, e in self._spans(x.shape[1]):
            z = self._buffer(0, e - s, layers, d).copy_(x[:, s:e].permute(1, 0, 2))
            z.sub_(self._mean)                                       # (m, L, d), centered
            flat = z.view(e - s, layers * d)
            for i, block in enumerate(self._blocks):
                block.addmm_(z[:, i].T, flat[:, i * d:])
            norm = torch.linalg.vector_norm(z, dim=-1)             # (m, L)
            q = norm.square()
            self._qq.addmm_(q.T, q)
            self._q += q.sum(dim=0)
            u = self._buffer(1, layers, e - s, d).copy_(z.transpose(0, 1))
            self._cos_centered += _unit_gram(u, norm.T)
        self.n_centered += x.shape[1]

    # ------------------------------------------------------------------------- results

    def _need(self, minimum: int) -> None:
        if self.n < minimum:
            raise ValueError(f"needs at least {minimum} samples, got {self.n}")

    def _centered(self) -> int:
        if self._mean is None or self.n_centered != self.n:
            raise RuntimeError(f"pass 2 (update) has seen {self.n_centered} samples, pass 1 "
                               f"{self.n}: feed every batch of pass 1 to update()")
        return self.n

    @property
    def state_bytes(self) -> int:
        """Bytes held by the accumulators, independent of the number of samples (the scratch
        buffers, at most 2 * chunk_bytes, not counted)."""
        parts = [self._sum, self._cos_raw, self._mean, self._qq, self._q, self._cos_centered,
                 *self._blocks]
        return sum(t.numel() * t.element_size() for t in parts if t is not None)

    def cos(self, center: bool = True) -> np.ndarray:
        """All-pairs sample-wise cosine, (L, L) float64, as ``engine.cos_matrix``; raw COS
        (``center=False``) needs pass 1 only."""
        if center:
            return (self._cos_centered / self._centered()).cpu().numpy()
        self._need(2)
        return (self._cos_raw / self.n).cpu().numpy()

    def _hsic(self, estimator: str) -> torch.Tensor:
        if estimator not in HSIC_ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; "
                             f"allowed: {', '.join(HSIC_ESTIMATORS)}")
        n = self._centered()
        layers, d = self.layers, self.features
        p = torch.zeros(layers, layers, dtype=_F64, device=self.device)   # ||X_a' X_b||_F^2
        for i, block in enumerate(self._blocks):
            p[i, i:] = block.view(d, layers - i, d).square().sum(dim=(0, 2))
        p = p + torch.triu(p, diagonal=1).T
        if estimator == "biased":                   # centered data: K 1 = 0, 1' K 1 = 0
            return p / (n - 1) ** 2
        if n < 4:
            raise ValueError(f"the unbiased estimator needs at least 4 samples, got {n}")
        # Grams with zeroed diagonals: p - q_a.q_b, rr = q_a.q_b, s = -sum(q).
        rr, s = self._qq, -self._q
        return ((p - rr) + s[:, None] * s[None, :] / ((n - 1) * (n - 2))
                - 2.0 * rr / (n - 2)) / (n * (n - 3))

    def hsic(self, estimator: str = "biased") -> np.ndarray:
        """Linear HSIC of every layer pair, (L, L) float64, as ``engine.hsic_matrix``."""
        return self._hsic(estimator).cpu().numpy()

    def cka(self, estimator: str = "biased") -> np.ndarray:
        """Linear CKA of every layer pair, (L, L) float64, as ``engine.cka_matrix``; NaN where
        a layer's self-HSIC is not positive."""
        h = self._hsic(estimator)
        diag = torch.diagonal(h)
        return (h / torch.sqrt(diag[:, None] * diag[None, :])).cpu().numpy()
