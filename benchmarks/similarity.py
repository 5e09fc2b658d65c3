"""Speed of the all-pairs layer similarity measures against a conventional CKA implementation.

    python -m benchmarks.similarity [--n 10000] [--d 384] [--layers 13] [--repeats 3]
                                    [--ref-layers 3] [--gemm 4096] [--seed 0]

One process, one random float32 stack shaped (layers, n, d) with the structure of transformer
activations: each layer is the previous one plus noise (a random walk across depth), features
have unequal scales, and every layer carries large per-feature offsets (typical |mean| ~ 300,
a few features near 3000). Times, each after one warm-up call, median of `repeats`:

* ``layerwise.similarity.engine``: all-pairs linear CKA (biased and unbiased) and centered COS;
* a reference written the way most public CKA code is: float64, one n x n Gram per layer,
  centered with an explicit H = I - 11'/n (two n x n x n products), and one trace
  (sum of the elementwise product of centered Grams) per pair. At large n it is timed on the
  pairs among `ref_layers` evenly spaced layers only, and the all-pairs time is extrapolated as
  ``L * t_layer + L (L+1) / 2 * t_pair`` (Grams cached, so the extrapolation flatters it).
  A second, stronger reference (Kornblith et al.'s notebook style: Gram centered by subtracting
  row and column means, O(n^2)) is extrapolated the same way;
* the machine's float32 and float64 GEMM rate (an N x N x N torch matmul, after warm-up).

Achieved GFLOP/s count the multiply-adds of the route actually taken (times 2). The JSON also
gives each timing's CPU seconds per wall second: on a machine shared with other work it falls
below the thread count, and the timings are then pessimistic.
Prints progress lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from layerwise import cli
from layerwise.similarity.engine import cka_matrix, cos_matrix, route_costs


def make_stack(layers: int, n: int, d: int, seed: int) -> np.ndarray:
    """Random-walk layer stack, float32, with unequal feature scales and large offsets."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, 0.5, d))                      # unequal feature scales
    h = rng.standard_normal((n, d)) * scale
    out = np.empty((layers, n, d), dtype=np.float32)
    for layer in range(layers):
        if layer:
            h = h + 0.6 * rng.standard_normal((n, d)) * scale
        offset = rng.normal(0.0, 300.0, d)
        offset[rng.choice(d, size=max(1, d // 100), replace=False)] = 3000.0
        out[layer] = h + offset
    return out


# CPU seconds this process used per wall second in each timed call (2.0 on an idle 2-core
# machine running 2 threads); lower values mean other processes took CPU during the timing.
CPU_PER_WALL: dict[str, float] = {}


def timed(fn, repeats: int, label: str | None = None):
    """(median seconds, last result) after one warm-up call."""
    result = fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append((time.process_time() - start_cpu) / times[-1])
    if label:
        CPU_PER_WALL[label] = round(statistics.median(cpu), 2)
    return statistics.median(times), result


def gemm_rate(size: int, dtype: torch.dtype, repeats: int) -> float:
    """GFLOP/s of a size^3 matmul."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen, dtype=dtype)
    b = torch.randn(size, size, generator=gen, dtype=dtype)
    seconds, _ = timed(lambda: a @ b, repeats, f"gemm_{str(dtype).split('.')[-1]}")
    return 2.0 * size ** 3 / seconds / 1e9


def reference_h(x: np.ndarray, layer_ids: list[int]) -> tuple[dict, float, float]:
    """CKA on the pairs of `layer_ids`, conventional style: explicit H, a trace per pair."""
    n = x.shape[1]
    h = np.eye(n) - np.ones((n, n)) / n
    grams, layer_times = {}, []
    for layer in layer_ids:
        start = time.perf_counter()
        xl = x[layer].astype(np.float64)
        grams[layer] = h @ (xl @ xl.T) @ h
        layer_times.append(time.perf_counter() - start)
    del h
    return _pairs_from_grams(grams, layer_ids) + (statistics.median(layer_times),)


def reference_means(x: np.ndarray, layer_ids: list[int]) -> tuple[dict, float, float]:
    """Same pairs, notebook style: Gram centered by row/column means, HSIC by a flat dot."""
    grams, layer_times = {}, []
    for layer in layer_ids:
        start = time.perf_counter()
        xl = x[layer].astype(np.float64)
        g = xl @ xl.T
        means = g.mean(axis=0)
        g -= means[None, :]
        g -= means[:, None]
        g += means.mean()
        grams[layer] = g
        layer_times.append(time.perf_counter() - start)
    return _pairs_from_grams(grams, layer_ids) + (statistics.median(layer_times),)


def _pairs_from_grams(grams: dict, layer_ids: list[int]) -> tuple[dict, float]:
    self_hsic, pair_times, cka = {}, [], {}
    for layer in layer_ids:
        start = time.perf_counter()
        self_hsic[layer] = float(np.sum(grams[layer] * grams[layer]))
        pair_times.append(time.perf_counter() - start)
    for i, a in enumerate(layer_ids):
        for b in layer_ids[i + 1:]:
            start = time.perf_counter()
            hsic = float(np.sum(grams[a] * grams[b]))
            pair_times.append(time.perf_counter() - start)
            cka[(a, b)] = hsic / np.sqrt(self_hsic[a] * self_hsic[b])
    return cka, statistics.median(pair_times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ref-layers", type=int, default=3,
                        help="layers (evenly spaced) whose pairs the references compute")
    parser.add_argument("--gemm", type=int, default=4096, help="size of the peak-rate matmul")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n, d, layers = args.n, args.d, args.layers

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print(f"data: {layers} layers x {n} samples x {d} features, float32", flush=True)
    x = make_stack(layers, n, d, args.seed)

    costs = route_costs(n, layers, d)
    route = min(costs, key=costs.get)
    cka_flops = 2.0 * costs[route]
    cos_flops = 2.0 * layers * layers * n * d

    seconds = {}
    seconds["cka_linear_biased"], cka_b = timed(lambda: cka_matrix(x), args.repeats,
                                                "cka_linear_biased")
    print(f"linear CKA, biased   ({route} route): {seconds['cka_linear_biased']:.3f} s", flush=True)
    seconds["cka_linear_unbiased"], _ = timed(
        lambda: cka_matrix(x, estimator="unbiased"), args.repeats, "cka_linear_unbiased")
    print(f"linear CKA, unbiased ({route} route): {seconds['cka_linear_unbiased']:.3f} s",
          flush=True)
    seconds["cos"], _ = timed(lambda: cos_matrix(x), args.repeats, "cos")
    print(f"COS (centered):                    {seconds['cos']:.3f} s", flush=True)
    seconds["cka_plus_cos"] = seconds["cka_linear_biased"] + seconds["cos"]
    print(f"linear CKA + COS:                  {seconds['cka_plus_cos']:.3f} s", flush=True)

    peak = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        peak[name] = gemm_rate(args.gemm, dtype, args.repeats)
        print(f"GEMM {args.gemm}^3 {name}: {peak[name]:.1f} GFLOP/s", flush=True)

    ids = sorted({round(i * (layers - 1) / max(args.ref_layers - 1, 1))
                  for i in range(min(args.ref_layers, layers))})
    all_pairs = layers * (layers + 1) // 2
    print(f"reference (explicit H) on layers {ids} ...", flush=True)
    ref_h, pair_h, layer_h = reference_h(x, ids)
    ref_h_seconds = layers * layer_h + all_pairs * pair_h
    print(f"  {layer_h:.2f} s per layer, {pair_h:.3f} s per pair -> {ref_h_seconds:.1f} s "
          f"for all {all_pairs} pairs", flush=True)
    print(f"reference (mean-centered Grams) on layers {ids} ...", flush=True)
    ref_m, pair_m, layer_m = reference_means(x, ids)
    ref_m_seconds = layers * layer_m + all_pairs * pair_m
    print(f"  {layer_m:.2f} s per layer, {pair_m:.3f} s per pair -> {ref_m_seconds:.1f} s",
          flush=True)
    diff = max(abs(cka_b[a, b] - v) for (a, b), v in ref_h.items())
    diff_m = max(abs(cka_b[a, b] - v) for (a, b), v in ref_m.items())
    print(f"max |CKA - reference| on {len(ref_h)} pairs: {diff:.2e} (H), {diff_m:.2e} (means)",
          flush=True)

    def rate(flops, secs):
        return flops / secs / 1e9

    gflops = {
        "cka_linear_biased": rate(cka_flops, seconds["cka_linear_biased"]),
        "cka_linear_unbiased": rate(cka_flops, seconds["cka_linear_unbiased"]),
        "cos": rate(cos_flops, seconds["cos"]),
        "cka_plus_cos": rate(cka_flops + cos_flops, seconds["cka_plus_cos"]),
    }
    speedup = ref_h_seconds / seconds["cka_linear_biased"]
    result = {
        "n": n, "d": d, "layers": layers, "input_dtype": "float32",
        "threads": torch.get_num_threads(), "route": route,
        "route_multiply_adds": costs, "flops": {"cka": cka_flops, "cos": cos_flops},
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "reference": {
            "style": "float64 numpy; n x n Gram per layer, centered by explicit H (two n^3 "
                     "products); HSIC = sum of elementwise product per pair",
            "layers_timed": ids, "pairs_timed": len(ref_h),
            "seconds_per_layer": round(layer_h, 4), "seconds_per_pair": round(pair_h, 5),
            "scaling": f"all_pairs = {layers} * per_layer + {all_pairs} * per_pair "
                       "(Grams cached per layer)",
            "seconds_all_pairs_extrapolated": round(ref_h_seconds, 2),
        },
        "reference_mean_centered": {
            "style": "float64 numpy; Gram centered by row/column means (O(n^2)), flat dot",
            "seconds_per_layer": round(layer_m, 4), "seconds_per_pair": round(pair_m, 5),
            "seconds_all_pairs_extrapolated": round(ref_m_seconds, 2),
        },
        "speedup_cka_over_reference": round(speedup, 1),
        "speedup_cka_over_reference_mean_centered": round(
            ref_m_seconds / seconds["cka_linear_biased"], 1),
        "speedup_cka_plus_cos_over_reference": round(ref_h_seconds / seconds["cka_plus_cos"], 1),
        "gflops": {k: round(v, 1) for k, v in gflops.items()},
        "gemm_peak_gflops": {k: round(v, 1) for k, v in peak.items()},
        "fraction_of_float64_peak": {k: round(v / peak["float64"], 3) for k, v in gflops.items()},
        "fraction_of_float32_peak": {k: round(v / peak["float32"], 3) for k, v in gflops.items()},
        "cpu_seconds_per_wall_second": CPU_PER_WALL,
        "max_abs_diff_vs_reference": float(diff),
        "max_abs_diff_vs_reference_mean_centered": float(diff_m),
        "goals_met": {
            "cka_plus_cos_under_5s": bool(seconds["cka_plus_cos"] < 5.0),
            "speedup_at_least_10x": bool(speedup >= 10.0),
            "within_1e-6": bool(diff <= 1e-6),
            "at_least_half_float64_gemm_rate": bool(
                gflops["cka_linear_biased"] >= 0.5 * peak["float64"]),
        },
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    cli.run(main)  # a bad config or artifact: one line, no traceback
