"""Time and memory of streamed all-pairs COS and linear CKA at the causal-LM arm's scale.

    python -m benchmarks.streaming_similarity [--layers 13] [--width 768] [--batch 4096]
        [--samples 10000 100000 400000] [--check 5000] [--device cpu] [--seed 0]

GPT-2 on the WikiText-103 test split gives 418,776 tokens x 13 layers x 768 features, too many
to hold; ``layerwise.similarity.streaming`` accumulates the statistics batch by batch in two
passes. Here the batches are random float32 stacks shaped (layers, batch, width) with the
structure of transformer activations (a random walk across depth, unequal feature scales, large
per-feature offsets), generated one at a time from a seeded generator, identically in both
passes, and never all in memory. For every sample count:

* wall seconds of pass 1 (means, raw COS) and pass 2 (``Z'Z``, centered COS, unbiased-CKA
  norms), each including the generation of its batches, and of a generation-only pass, so that
  ``compute = pass1 + pass2 - 2 * generate``; seconds per 1e4 samples shows how time grows
  with n; pass-2 GFLOP/s counts the feature route's multiply-adds (times 2);
* peak resident memory of the run: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the
  run, its peak reset before the run through Linux's /proc/self/clear_refs (where the kernel
  refuses, ``peak_reset`` is false and the figure is the process's lifetime peak), and that
  peak minus the resident size (``VmRSS``) before the run; on CUDA also
  ``torch.cuda.max_memory_allocated`` per run. tracemalloc is not used: it misses torch's
  allocations.

Agreement: the first `check` samples (the same generator) streamed and given to the in-memory
engine; max |difference| of COS (centered, raw) and of linear CKA (biased, unbiased).
Prints progress lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import torch

from layerwise import cli
from layerwise.similarity.engine import cka_matrix, cos_matrix, route_costs
from layerwise.similarity.streaming import StreamingSimilarity


def batch_source(layers: int, width: int, batch: int, n: int, seed: int, device: str):
    """A callable returning a fresh iterator over the same `n` samples in batches."""
    gen = torch.Generator(device=device).manual_seed(seed)
    scale = torch.exp(0.5 * torch.randn(width, generator=gen, device=device))
    offset = 300.0 * torch.randn(layers, width, generator=gen, device=device)
    offset[:, : max(1, width // 100)] = 3000.0

    def make():
        g = torch.Generator(device=device).manual_seed(seed + 1)
        for s in range(0, n, batch):
            m = min(batch, n - s)
            out = torch.empty(layers, m, width, device=device)
            h = torch.randn(m, width, generator=g, device=device) * scale
            for layer in range(layers):
                if layer:
                    h += 0.6 * torch.randn(m, width, generator=g, device=device) * scale
                out[layer] = h + offset[layer]
            yield out
    return make


def _rss_kib() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_once(make, device: str) -> tuple[dict, dict, int]:
    """(timings and memory, results, samples seen) of both passes over `make()`."""
    cuda = device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    base_kib = _rss_kib()
    reset = _reset_peak_rss()
    cpu0 = time.process_time()
    acc = StreamingSimilarity(device=device)
    t0 = time.perf_counter()
    for b in make():
        acc.update_means(b)
    acc.finish_means()
    sync()
    t1 = time.perf_counter()
    for b in make():
        acc.update(b)
    sync()
    t2 = time.perf_counter()
    results = {"cos": acc.cos(), "cos_raw": acc.cos(center=False), "cka_biased": acc.cka(),
               "cka_unbiased": acc.cka("unbiased")}
    t3 = time.perf_counter()
    cpu = time.process_time() - cpu0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "pass1": t1 - t0, "pass2": t2 - t1, "results": t3 - t2,
        "cpu_seconds_per_wall_second": round(cpu / (t3 - t0), 2),
        "state_mib": round(acc.state_bytes / 2**20, 1),
        "peak_reset": reset,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_rss_above_start_mib": (round((peak_kib - base_kib) / 1024, 1)
                                     if reset and base_kib else None),
    }
    if cuda:
        out["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out, results, acc.n


def generate_only(make, device: str) -> float:
    start = time.perf_counter()
    for b in make():
        b.sum()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--batch", type=int, default=4096, help="samples (tokens) per batch")
    parser.add_argument("--samples", type=int, nargs="+", default=[10_000, 100_000, 400_000])
    parser.add_argument("--check", type=int, default=5000,
                        help="samples compared with the in-memory engine")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    layers, width, device = args.layers, args.width, args.device

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cpus, device {device}", flush=True)
    print(f"data: {layers} layers x {width} features, float32 batches of {args.batch}",
          flush=True)

    make = batch_source(layers, width, args.batch, args.check, args.seed, device)
    _, streamed, _ = run_once(make, device)
    x = torch.cat(list(make()), dim=1).cpu().numpy()
    engine = {"cos": cos_matrix(x), "cos_raw": cos_matrix(x, center=False),
              "cka_biased": cka_matrix(x), "cka_unbiased": cka_matrix(x, estimator="unbiased")}
    diff = {k: float(np.max(np.abs(streamed[k] - engine[k]))) for k in engine}
    del x
    print(f"agreement on {args.check} samples: " +
          ", ".join(f"{k} {v:.1e}" for k, v in diff.items()), flush=True)

    runs = []
    for n in args.samples:
        make = batch_source(layers, width, args.batch, n, args.seed, device)
        gen = generate_only(make, device)
        timing, _, seen = run_once(make, device)
        assert seen == n
        pass1, pass2 = timing.pop("pass1"), timing.pop("pass2")
        compute = pass1 + pass2 - 2 * gen
        flops = 2.0 * route_costs(n, layers, width)["feature"]
        run = {
            "n": n,
            "seconds": {"generate": round(gen, 3), "pass1": round(pass1, 3),
                        "pass2": round(pass2, 3), "results": round(timing.pop("results"), 3),
                        "compute": round(compute, 3)},
            "compute_seconds_per_1e4_samples": round(compute / n * 1e4, 4),
            "pass2_gflops": round(flops / (pass2 - gen) / 1e9, 1),
            **timing,
        }
        runs.append(run)
        print(f"n={n}: {json.dumps(run)}", flush=True)

    per_1e4 = [r["compute_seconds_per_1e4_samples"] for r in runs]
    result = {
        "layers": layers, "width": width, "batch": args.batch, "device": device,
        "input_dtype": "float32", "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "state_formula": "8 * width^2 * layers * (layers + 1) / 2 bytes (+ O(layers * width))",
        "memory_measure": "peak_rss: getrusage ru_maxrss, reset per run via "
                          "/proc/self/clear_refs (peak_reset); above_start: minus VmRSS before",
        "agreement_samples": args.check,
        "max_abs_diff_vs_engine": diff,
        "runs": runs,
        "time_per_1e4_growth": round(per_1e4[-1] / per_1e4[0], 3) if per_1e4 else None,
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    cli.run(main)
