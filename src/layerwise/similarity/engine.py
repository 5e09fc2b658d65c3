"""All-pairs layer similarity: sample-wise cosine (COS) and centered kernel alignment (CKA).

Every function takes a stack of layer representations shaped ``(layers, samples, features)``
(numpy array or torch tensor, any float dtype, CPU or CUDA; a CUDA tensor is processed on its
device) and returns a CPU ``numpy.float64`` array. All pairs of layers come out of one pass over
the data; every reduction accumulates in float64, and features are centered with float64 means
before any product, so float32 activations with large per-feature offsets lose no precision.

COS
    ``COS(a, b)`` is the mean over samples of the cosine between sample ``i``'s (centered) vectors
    in layers ``a`` and ``b``. Each sample vector is scaled to unit length once per layer; the
    whole ``(layers, samples * features)`` stack then gives all pairs in one matrix product.
    A sample whose (centered) vector is exactly zero has no direction: its cosine with anything
    is defined as 0, so such samples also pull ``COS(a, a)`` below 1.

CKA
    ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K``, ``L`` the Gram matrices of
    two layers. Both estimators are written through three statistics of a pair of Grams,
    ``p = <K, L>_F``, ``rr = (K 1) . (L 1)`` and ``s = 1' K 1``:

    * biased (``tr(K H L H) / (n-1)^2``): ``(p - 2 rr / n + s_K s_L / n^2) / (n-1)^2``;
    * unbiased (Song et al. 2012), on Grams with zeroed diagonals:
      ``(p + s_K s_L / ((n-1)(n-2)) - 2 rr / (n-2)) / (n (n-3))``; needs ``n >= 4``. It can be
      negative and is reported as is (never clamped); so can the debiased CKA built from it.

    The statistics are computed by one of two routes, all layer pairs at once:

    * **gram** -- one ``n x n`` Gram per layer (built in row blocks so memory stays at
      ``layers * block * n``); the pair statistic ``p`` of every pair is one product of the
      flattened Gram stack with itself. Cost ``L n^2 d + L^2 n^2`` multiply-adds. Any kernel.
    * **feature** (linear kernel) -- with centered features ``X_a``, ``<K_a, K_b> =
      ||X_a' X_b||_F^2``, so all pairs follow from the blocks of ``Z' Z``, ``Z = [X_1 ... X_L]``.
      Only the upper block triangle is computed (one product per block row), streaming over
      sample chunks so memory does not grow with ``n``. Centered data give ``K 1 = 0`` and
      ``1' K 1 = 0``; after zeroing the diagonal (``q_i = |x_i|^2``) the unbiased statistics
      reduce to ``p = ||X_a' X_b||^2 - q_a . q_b``, ``rr = q_a . q_b``, ``s = -sum(q)``, so only the
      per-sample squared norms are extra. Cost ``n d^2 L (L+1) / 2`` multiply-adds.

    ``route="auto"`` takes the route with fewer multiply-adds (see :func:`route_costs`);
    the RBF kernel always uses the gram route.

    Centering the features first changes neither estimator for the linear kernel: the biased
    one centers by construction, and the unbiased HSIC is exactly invariant to a shift of the
    feature mean (its U-statistic form depends on sample differences only; the test suite
    checks it in exact rational arithmetic). The RBF kernel depends on distances only.

    Minibatch CKA (Nguyen et al. 2021) splits the samples, in the order of a fixed permutation
    drawn from ``batch_seed`` (a split stored in class order, such as ImageNet's validation
    folders, would otherwise give batches of few classes and a biased estimate), into batches of
    ``batch_size`` (the last one may be smaller, but every batch needs at least 4 samples), sums
    the per-batch HSIC values of each pair and of each layer with itself, and forms
    ``sum_b HSIC(K_b, L_b) / sqrt(sum_b HSIC(K_b, K_b) sum_b HSIC(L_b, L_b))``. Each batch is
    centered by its own mean and handled by the route the cost model picks for its size.

Memory: the feature route holds the upper block triangle of ``Z' Z`` (``(L d)^2 / 2`` floats)
plus one sample chunk, whatever ``n``; the gram route holds a float64 centered copy of the stack
(``L n d`` floats) plus one row block of the Gram stack; the RBF kernel also needs one full
``n x n`` distance matrix at a time (for the median).

A layer that is constant over the samples has zero self-HSIC; its CKA entries are NaN.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

__all__ = [
    "KERNELS",
    "HSIC_ESTIMATORS",
    "ROUTES",
    "cos_matrix",
    "cos_per_sample",
    "cka_matrix",
    "cka_cross",
    "as_tensor",
    "hsic_matrix",
    "route_costs",
]

KERNELS = ("linear", "rbf")
HSIC_ESTIMATORS = ("biased", "unbiased")
ROUTES = ("auto", "gram", "feature")

_F64 = torch.float64
# Working-set sizes, in bytes, of one float64 sample chunk (feature route, COS) and of one row
# block of the Gram stack (gram route).
_CHUNK_BYTES = 48 * 2**20
_GRAM_BLOCK_BYTES = 256 * 2**20


# ----------------------------------------------------------------------------- input handling

def as_tensor(reps: Any, name: str, min_samples: int = 2) -> torch.Tensor:
    """View `reps` as a 3-D real torch tensor (no copy for numpy arrays or tensors), with at
    least one layer, one feature and `min_samples` samples; integers become float64."""
    if isinstance(reps, torch.Tensor):
        x = reps.detach()
    else:
        arr = np.asarray(reps)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        try:
            with warnings.catch_warnings():         # read-only arrays are fine: never written
                warnings.simplefilter("ignore", UserWarning)
                x = torch.from_numpy(arr)
        except (TypeError, ValueError):  # negative strides, non-native byte order, ...
            x = torch.from_numpy(np.array(arr, dtype=np.float64))
    if x.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.to(_F64)
    if x.ndim != 3:
        raise ValueError(f"{name} must be 3-D (layers, samples, features), got shape "
                         f"{tuple(x.shape)}")
    layers, samples, features = x.shape
    if layers < 1 or features < 1:
        raise ValueError(f"{name} needs at least one layer and one feature, got shape "
                         f"{tuple(x.shape)}")
    if samples < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {samples}")
    return x


def _rows(row_bytes: int, budget: int, n: int) -> int:
    """Rows per chunk so that one chunk takes about `budget` bytes."""
    return int(min(n, max(1, budget // max(row_bytes, 1))))


def _spans(n: int, step: int):
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def _mean64(x: torch.Tensor, name: str) -> torch.Tensor:
    """Per-layer feature means ``(layers, features)`` accumulated in float64.

    Also the finiteness check: a float64 sum of finite float32/16 values cannot overflow, so a
    non-finite mean means a NaN or Inf in the input (an explicit scan settles the float64 case).
    """
    layers, n, d = x.shape
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.float32, torch.float64):
        # numpy's casting reduction over the middle axis is several times faster than torch's
        total = torch.from_numpy(np.add.reduce(x.numpy(), axis=1, dtype=np.float64))
    else:
        total = x.sum(dim=1, dtype=_F64)
    if not bool(torch.isfinite(total).all()):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or Inf values")
        raise ValueError(f"{name} has values too large to sum in float64")
    return total / n


def _check_choice(value: str, allowed: tuple, what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


# ----------------------------------------------------------------------------- COS

def _unit_chunks(x: torch.Tensor, center: bool):
    """Yield ``(s, e, u)``: samples ``s:e`` as float64 unit vectors, ``u`` shaped (L, e-s, d).

    Zero (centered) vectors stay zero, which makes their cosine 0.
    """
    layers, n, d = x.shape
    mean = _mean64(x, "reps")[:, None, :]                  # also rejects NaN / Inf
    for s, e in _spans(n, _rows(layers * d * 8, _CHUNK_BYTES, n)):
        z = x[:, s:e].to(_F64, copy=True)  # never modify the caller's array
        if center:
            z -= mean
        norm = torch.linalg.vector_norm(z, dim=-1, keepdim=True)
        z /= torch.where(norm > 0, norm, torch.ones_like(norm))
        yield s, e, z


def cos_matrix(reps: Any, center: bool = True) -> np.ndarray:
    """All-pairs sample-wise cosine similarity, shape ``(layers, layers)``.

    ``COS(a, b) = mean_i cos(h_i^a - mu^a, h_i^b - mu^b)``, ``mu`` the layer's mean over samples
    (``center=False``: raw vectors). A sample with an exactly zero (centered) vector contributes
    cosine 0. Values lie in ``[-1, 1]`` (up to rounding: a diagonal entry may be 1 + 1 ulp).
    """
    x = as_tensor(reps, "reps")
    layers, n, _ = x.shape
    acc = torch.zeros(layers, layers, dtype=_F64, device=x.device)
    for _, _, u in _unit_chunks(x, center):
        flat = u.reshape(layers, -1)
        acc.addmm_(flat, flat.T)
    return (acc / n).cpu().numpy()


def cos_per_sample(reps: Any, ref_layer: int = -1, center: bool = True) -> np.ndarray:
    """Per-sample cosine of every layer with layer `ref_layer`, shape ``(layers, samples)``.

    Same definition as :func:`cos_matrix` (whose entries are the row means of this array).
    """
    x = as_tensor(reps, "reps")
    layers, n, _ = x.shape
    if not -layers <= ref_layer < layers:
        raise ValueError(f"ref_layer {ref_layer} out of range for {layers} layers")
    out = torch.empty(layers, n, dtype=_F64, device=x.device)
    for s, e, u in _unit_chunks(x, center):
        out[:, s:e] = (u * u[ref_layer]).sum(dim=-1)
    return out.cpu().numpy()


# ----------------------------------------------------------------------------- HSIC statistics

def route_costs(n: int, layers: int, features: int, layers_b: int | None = None,
                features_b: int | None = None) -> dict:
    """Multiply-add counts of the two CKA routes for `n` samples (one stack, or two stacks).

    One stack: gram ``L n^2 d + L^2 n^2`` (Grams, then the product of the flattened Gram
    stack); feature ``n d^2 L (L+1) / 2`` (upper block triangle of ``Z' Z``).
    Two stacks: gram ``n^2 (L_a d_a + L_b d_b) + n^2 (L_a L_b + L_a + L_b)``; feature
    ``n (L_a d_a L_b d_b + L_a d_a^2 + L_b d_b^2)`` (cross blocks plus each layer's own block).
    """
    la, da = layers, features
    if layers_b is None:
        gram = la * n * n * da + la * la * n * n
        feature = n * da * da * la * (la + 1) // 2
    else:
        lb, db = layers_b, features_b
        gram = n * n * (la * da + lb * db) + n * n * (la * lb + la + lb)
        feature = n * (la * da * lb * db + la * da * da + lb * db * db)
    return {"gram": int(gram), "feature": int(feature)}


def _center(x: torch.Tensor, name: str) -> torch.Tensor:
    """Float64 copy of `x` with each layer's feature means removed."""
    return x.to(_F64) - _mean64(x, name)[:, None, :]


def _median(v: torch.Tensor) -> torch.Tensor:
    """Median as numpy defines it (mean of the two middle values for an even count).

    On the CPU numpy's introselect finds both middle values in one pass, several times faster
    than two torch.kthvalue calls on the n^2 distances of an RBF bandwidth; both are exact."""
    m = v.numel()
    lo, hi = (m + 1) // 2 - 1, m // 2                                  # 0-based middle ranks
    if v.device.type == "cpu":
        middle = np.partition(v.numpy(), (lo, hi))
        return torch.as_tensor((middle[lo] + middle[hi]) / 2)
    return (torch.kthvalue(v, lo + 1).values + torch.kthvalue(v, hi + 1).values) / 2


class _Grams:
    """Row blocks of one stack's Gram matrices, from centered float64 features (L, n, d)."""

    def __init__(self, z: torch.Tensor, kernel: str, threshold: float, unbiased: bool):
        self.z, self.kernel, self.unbiased = z, kernel, unbiased
        if kernel == "rbf":
            self.sq = (z * z).sum(dim=-1)                               # (L, n)
            sigma2 = []
            for layer in range(z.shape[0]):
                d2 = self._sq_dist(layer, 0, z.shape[1], self.sq[layer:layer + 1])[0]
                med = _median(d2.reshape(-1))
                if not med > 0:
                    raise ValueError(f"RBF bandwidth undefined: the median squared distance "
                                     f"of layer {layer} is 0")
                sigma2.append(threshold ** 2 * med)
            self.sigma2 = torch.stack(sigma2)[:, None, None]

    def _sq_dist(self, layers, s, e, sq):
        z = self.z[layers] if isinstance(layers, slice) else self.z[layers:layers + 1]
        d2 = torch.matmul(z[:, s:e], z.transpose(1, 2))
        d2.mul_(-2).add_(sq[:, s:e, None]).add_(sq[:, None, :])
        idx = torch.arange(e - s, device=z.device)
        d2[:, idx, idx + s] = 0.0                                       # exact zero self-distance
        return d2

    def rows(self, s: int, e: int) -> torch.Tensor:
        """Gram rows ``s:e`` of every layer, shape (L, e-s, n); zero diagonal if unbiased."""
        if self.kernel == "rbf":
            g = self._sq_dist(slice(None), s, e, self.sq)
            g = torch.exp(g.div_(-2.0 * self.sigma2))
        else:
            g = torch.matmul(self.z[:, s:e], self.z.transpose(1, 2))
        if self.unbiased:
            idx = torch.arange(e - s, device=g.device)
            g[:, idx, idx + s] = 0.0
        return g


def _gram_stats(a, b, kernel, unbiased, threshold):
    """Statistics (p, rr, s) of all pairs and of each layer with itself, from row blocks."""
    za = _center(a, "reps_a" if b is not None else "reps")
    zb = _center(b, "reps_b") if b is not None else None
    la, n, _ = za.shape
    lb = zb.shape[0] if zb is not None else la
    ga = _Grams(za, kernel, threshold, unbiased)
    gb = _Grams(zb, kernel, threshold, unbiased) if zb is not None else None
    dev = za.device
    p = torch.zeros(la, lb, dtype=_F64, device=dev)
    ra = torch.empty(la, n, dtype=_F64, device=dev)
    rb = torch.empty(lb, n, dtype=_F64, device=dev) if gb is not None else ra
    paa = torch.zeros(la, dtype=_F64, device=dev)
    pbb = torch.zeros(lb, dtype=_F64, device=dev)
    step = _rows((la + lb) * n * 8, _GRAM_BLOCK_BYTES, n)
    for s, e in _spans(n, step):
        ka = ga.rows(s, e)
        ra[:, s:e] = ka.sum(dim=-1)
        fa = ka.reshape(la, -1)
        if gb is None:
            p.addmm_(fa, fa.T)
        else:
            kb = gb.rows(s, e)
            rb[:, s:e] = kb.sum(dim=-1)
            fb = kb.reshape(lb, -1)
            p.addmm_(fa, fb.T)
            paa += (fa * fa).sum(dim=1)
            pbb += (fb * fb).sum(dim=1)
    if gb is None:
        paa = pbb = torch.diagonal(p)
    sa, sb = ra.sum(dim=1), rb.sum(dim=1)
    return ((p, ra @ rb.T, sa[:, None], sb[None, :]),
            (paa, (ra * ra).sum(dim=1), sa, sa),
            (pbb, (rb * rb).sum(dim=1), sb, sb))


def _feature_stats(a, b, unbiased):
    """Linear-kernel statistics from feature-space products of centered, streamed chunks."""
    la, n, da = a.shape
    mean_a = _mean64(a, "reps_a" if b is not None else "reps")
    dev = a.device
    wa = la * da
    if b is None:
        # Block row i holds X_i' [X_i ... X_L]: the upper block triangle of Z'Z.
        blocks = [torch.zeros(da, (la - i) * da, dtype=_F64, device=dev) for i in range(la)]
        lb, db, wb = la, da, wa
    else:
        lb, _, db = b.shape
        mean_b = _mean64(b, "reps_b")
        wb = lb * db
        cross = torch.zeros(wa, wb, dtype=_F64, device=dev)
        self_a = torch.zeros(la, da, da, dtype=_F64, device=dev)
        self_b = torch.zeros(lb, db, db, dtype=_F64, device=dev)
    qq = torch.zeros(la, lb, dtype=_F64, device=dev)       # sum_i q_a(i) q_b(i)
    qa = torch.zeros(la, dtype=_F64, device=dev)
    qb = torch.zeros(lb, dtype=_F64, device=dev)
    qaa = torch.zeros(la, dtype=_F64, device=dev)
    qbb = torch.zeros(lb, dtype=_F64, device=dev)

    def chunk(x, mean, s, e):
        # (m, L, d) float64, centered; rows of (m, L*d) are the concatenated layers Z.
        z = torch.empty(e - s, x.shape[0], x.shape[2], dtype=_F64, device=dev)
        z.copy_(x[:, s:e].permute(1, 0, 2))
        return z.sub_(mean)

    step = _rows((wa + (wb if b is not None else 0)) * 8, _CHUNK_BYTES, n)
    for s, e in _spans(n, step):
        za = chunk(a, mean_a, s, e)
        fa = za.view(e - s, wa)
        if b is None:
            for i in range(la):
                blocks[i].addmm_(za[:, i].T, fa[:, i * da:])
            zb = za
        else:
            zb = chunk(b, mean_b, s, e)
            fb = zb.view(e - s, wb)
            cross.addmm_(fa.T, fb)
            self_a.baddbmm_(za.permute(1, 2, 0), za.permute(1, 0, 2))
            self_b.baddbmm_(zb.permute(1, 2, 0), zb.permute(1, 0, 2))
        if unbiased:
            q_a = torch.linalg.vector_norm(za, dim=-1).square()     # (m, L): squared norms
            q_b = torch.linalg.vector_norm(zb, dim=-1).square() if b is not None else q_a
            qq.addmm_(q_a.T, q_b)
            qa += q_a.sum(dim=0)
            qb += q_b.sum(dim=0)
            qaa += (q_a * q_a).sum(dim=0)
            qbb += (q_b * q_b).sum(dim=0)

    if b is None:
        p = torch.zeros(la, la, dtype=_F64, device=dev)
        for i in range(la):
            p[i, i:] = blocks[i].view(da, la - i, da).square().sum(dim=(0, 2))
        p = p + torch.triu(p, diagonal=1).T
        paa = pbb = torch.diagonal(p)
    else:
        p = cross.view(la, da, lb, db).square().sum(dim=(1, 3))
        paa = self_a.square().sum(dim=(1, 2))
        pbb = self_b.square().sum(dim=(1, 2))
    if not unbiased:                                        # K 1 = 0 and 1'K1 = 0
        zero = torch.zeros((), dtype=_F64, device=dev)
        return (p, zero, zero, zero), (paa, zero, zero, zero), (pbb, zero, zero, zero)
    return ((p - qq, qq, -qa[:, None], -qb[None, :]),
            (paa - qaa, qaa, -qa, -qa),
            (pbb - qbb, qbb, -qb, -qb))


def _estimate(stats, n: int, unbiased: bool) -> torch.Tensor:
    """HSIC from the Gram statistics (p, rr, s_K, s_L); see the module docstring."""
    p, rr, s_k, s_l = stats
    if unbiased:
        return (p + s_k * s_l / ((n - 1) * (n - 2)) - 2.0 * rr / (n - 2)) / (n * (n - 3))
    return (p - 2.0 * rr / n + s_k * s_l / n ** 2) / (n - 1) ** 2


def _hsic_sums(reps_a, reps_b, kernel, estimator, batch_size, rbf_threshold, route,
               batch_seed=0):
    """HSIC of every pair and of every layer with itself, summed over batches."""
    _check_choice(kernel, KERNELS, "kernel")
    _check_choice(estimator, HSIC_ESTIMATORS, "estimator")
    _check_choice(route, ROUTES, "route")
    if route == "feature" and kernel != "linear":
        raise ValueError("route 'feature' supports the linear kernel only; use 'gram' or 'auto'")
    if kernel == "rbf" and not rbf_threshold > 0:
        raise ValueError(f"rbf_threshold must be positive, got {rbf_threshold}")
    cross = reps_b is not None
    a = as_tensor(reps_a, "reps_a" if cross else "reps")
    b = as_tensor(reps_b, "reps_b") if cross else None
    n = a.shape[1]
    if cross:
        if b.shape[1] != n:
            raise ValueError(f"reps_a and reps_b need the same samples, got {n} and "
                             f"{b.shape[1]}")
        if b.device != a.device:                            # compute on the accelerator
            dev = a.device if a.device.type != "cpu" else b.device
            a, b = a.to(dev), b.to(dev)
    unbiased = estimator == "unbiased"
    if batch_size is None:
        spans = [(0, n)]
        if unbiased and n < 4:
            raise ValueError(f"the unbiased estimator needs at least 4 samples, got {n}")
    else:
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 4:
            raise ValueError(f"batch_size must be an integer >= 4, got {batch_size!r}")
        spans = _spans(n, int(batch_size))
        if spans[-1][1] - spans[-1][0] < 4:
            raise ValueError(f"the last batch has {spans[-1][1] - spans[-1][0]} samples "
                             f"({n} samples in batches of {batch_size}); every batch needs "
                             "at least 4: choose another batch_size or drop samples")
    order = None
    if batch_size is not None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(batch_seed))
        order = order.to(a.device)
    totals = None
    for s, e in spans:
        m = e - s
        if order is None:
            xa, xb = a[:, s:e], (b[:, s:e] if cross else None)
        else:
            xa = a.index_select(1, order[s:e])
            xb = b.index_select(1, order[s:e]) if cross else None
        chosen = route
        if chosen == "auto":
            if kernel == "rbf":
                chosen = "gram"
            else:
                cost = route_costs(m, a.shape[0], a.shape[2], *(b.shape[::2] if cross else ()))
                chosen = "feature" if cost["feature"] < cost["gram"] else "gram"
        if chosen == "feature":
            stats = _feature_stats(xa, xb, unbiased)
        else:
            stats = _gram_stats(xa, xb, kernel, unbiased, rbf_threshold)
        h = [_estimate(st, m, unbiased) for st in stats]
        totals = h if totals is None else [t + v for t, v in zip(totals, h)]
    return totals


# ----------------------------------------------------------------------------- public CKA API

def hsic_matrix(reps: Any, kernel: str = "linear", estimator: str = "biased",
                rbf_threshold: float = 1.0, route: str = "auto") -> np.ndarray:
    """HSIC of every pair of layers, shape ``(layers, layers)`` (unbiased values may be < 0)."""
    return _hsic_sums(reps, None, kernel, estimator, None, rbf_threshold, route)[0].cpu().numpy()


def cka_matrix(reps: Any, kernel: str = "linear", estimator: str = "biased",
               batch_size: int | None = None, rbf_threshold: float = 1.0,
               route: str = "auto", batch_seed: int = 0) -> np.ndarray:
    """CKA between every pair of layers of one stack, shape ``(layers, layers)``.

    kernel: ``"linear"`` or ``"rbf"``. The RBF Gram is ``exp(-d_ij^2 / (2 sigma^2))`` with
        ``sigma^2 = rbf_threshold^2 * median(d^2)``, the median taken over the full ``n x n``
        matrix of squared distances *including its zero diagonal* (numpy's median, as in
        Kornblith et al.'s reference code); computed per layer, and per batch in minibatch mode.
    estimator: ``"biased"`` (HSIC ``tr(KHLH)/(n-1)^2``) or ``"unbiased"`` (Song et al. 2012,
        debiased CKA; may be negative, never clamped).
    batch_size: minibatch CKA over batches of this many samples (>= 4; the last, possibly
        smaller batch needs >= 4 too), taken in the order of a permutation seeded by
        ``batch_seed``. ``None`` uses all samples at once.
    route: ``"gram"``, ``"feature"`` (linear kernel only) or ``"auto"`` (fewer multiply-adds,
        see :func:`route_costs`). Routes agree to rounding error.

    Entries of a layer whose self-HSIC is not positive (a constant layer; with the unbiased
    estimator, rarely, very few samples) are NaN rather than clamped.
    """
    hab, haa, hbb = _hsic_sums(reps, None, kernel, estimator, batch_size, rbf_threshold, route,
                               batch_seed)
    return (hab / torch.sqrt(haa[:, None] * hbb[None, :])).cpu().numpy()


def cka_cross(reps_a: Any, reps_b: Any, kernel: str = "linear", estimator: str = "biased",
              batch_size: int | None = None, rbf_threshold: float = 1.0,
              route: str = "auto", batch_seed: int = 0) -> np.ndarray:
    """CKA between every layer of `reps_a` and every layer of `reps_b`, shape ``(La, Lb)``.

    The two stacks describe the same samples in the same order (equal sample counts); feature
    widths may differ. Options as in :func:`cka_matrix`.
    """
    hab, haa, hbb = _hsic_sums(reps_a, reps_b, kernel, estimator, batch_size, rbf_threshold,
                               route, batch_seed)
    return (hab / torch.sqrt(haa[:, None] * hbb[None, :])).cpu().numpy()
