"""Tokens per second of real early-exit greedy decoding against full-depth decoding, batch 1.

    python -m benchmarks.decoding [--depth 12] [--width 64] [--heads 4] [--vocab 64]
                                  [--method aligned] [--train-steps 200] [--segment 8]
                                  [--length 32] [--prompts 16] [--threshold T |
                                  --target-speedup 2.0] [--repeats 5] [--threads 1]
                                  [--device cpu|cuda]

Builds a GPT-2 of the given size and, unless --train-steps is 0, trains it briefly with the
method's loss on sequences that repeat a random segment: the first segment cannot be predicted
and its repeats can, once attention has found the earlier copy, so a trained model is confident
from some depth on. Prompts are a fresh segment and its first two repeated tokens; each is
continued to --length tokens. Unless --threshold is given, the confidence threshold is the
quantile of the model's own confidences at layers 1..L-1 on the full-depth continuations whose
real early-exit decoding gives L/E[k] closest to --target-speedup (bisection on the quantile
level). Times early-exit and full-depth greedy decoding, interleaved after a warm-up, and prints
one JSON object as its last line: tokens/s of both, E[k], L/E[k], the measured speed-up and its
ratio to L/E[k], the FLOPs speed-up per generated token, the work per token (blocks, K/V-only
layers, exits scored) and the agreement with full-depth greedy output.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from layerwise import cli
from layerwise.exits.decoding import (early_exit_decode, greedy_decode, prefill,
                                      time_decoding)
from layerwise.exits.offline import speedup
from layerwise.exits.policies import POLICIES
from layerwise.train.runs import build_run_model
from layerwise.models.base import LayeredClassifier
from layerwise.seeding import seed_everything
from layerwise.train.loop import TrainSpec, training_loss
from layerwise.train.methods import layer_weights


def repeated_segments(count: int, segment: int, length: int, vocab: int,
                      generator: torch.Generator) -> torch.Tensor:
    """(count, length) sequences, each a random segment repeated."""
    pieces = torch.randint(0, vocab, (count, segment), generator=generator)
    return pieces.repeat(1, -(-length // segment))[:, :length]


def train(model: LayeredClassifier, method: str, steps: int, batch_size: int, lr: float,
          segment: int, length: int, vocab: int) -> float | None:
    """Brief AdamW training with the method's loss on fresh repeated segments every step; the
    last step's loss (None without training)."""
    spec = TrainSpec(method=method, seed=0, epochs=1, batch_size=batch_size, lr=lr,
                     weight_decay=0.0)
    weights = layer_weights(model.num_layers, spec.weighting)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    model.train()
    loss = None
    for step in range(steps):
        sequences = repeated_segments(batch_size, segment, length + 1, vocab, generator)
        sequences = sequences.to(device)
        loss, _ = training_loss(model, sequences[:, :-1], sequences[:, 1:], spec, step, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return None if loss is None else loss.item()


def decoded_speedup(model: LayeredClassifier, prompts: list[torch.Tensor], steps: int,
                    threshold: float) -> float:
    layers = [early_exit_decode(model, p, steps, "confidence", threshold).layers for p in prompts]
    return speedup(torch.cat(layers), model.num_layers)


@torch.no_grad()
def quantile_threshold(model: LayeredClassifier, prompts: list[torch.Tensor], steps: int,
                       target: float, iterations: int = 12) -> tuple[float, float]:
    """(threshold, quantile level): the quantile of the model's confidences at layers 1..L-1 on
    the full-depth continuations whose real early-exit decoding gives L/E[k] closest to
    `target`. A higher level exits less, so the level is bisected."""
    texts = [torch.cat([p, greedy_decode(model, p, steps)]) for p in prompts]
    logits = [model.layer_exit_logits(model.layer_representations(t[None]))[1:-1] for t in texts]
    scores = torch.cat([POLICIES["confidence"].score(x).flatten() for x in logits])
    scores = scores.double().cpu().numpy()
    low, high, best = 0.0, 1.0, None
    for _ in range(iterations):
        level = (low + high) / 2
        threshold = float(np.quantile(scores, level))
        reached = decoded_speedup(model, prompts, steps, threshold)
        if best is None or abs(reached - target) < best[0]:
            best = (abs(reached - target), threshold, level)
        low, high = (level, high) if reached > target else (low, level)
    return best[1], best[2]


@torch.no_grad()
def decoding_flops(model: LayeredClassifier, prompts: list[torch.Tensor], steps: int,
                   threshold: float) -> tuple[float, float]:
    """(full depth, early exit) FLOPs per generated token, the prompts' encoding (the same in
    both) left out, counted by torch's FlopCounterMode (matrix products; attention where torch
    counts its kernel)."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(run) -> float:
        with FlopCounterMode(display=False) as counter:
            for prompt in prompts:
                run(prompt)
        return float(counter.get_total_flops())

    encoding = count(lambda p: prefill(model, p))
    full = count(lambda p: greedy_decode(model, p, steps))
    early = count(lambda p: early_exit_decode(model, p, steps, "confidence", threshold))
    tokens = steps * len(prompts)
    return (full - encoding) / tokens, (early - encoding) / tokens


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mlp-ratio", type=float, default=4.0)
    parser.add_argument("--vocab", type=int, default=64)
    parser.add_argument("--head-input", default="raw", choices=["raw", "final_norm"])
    parser.add_argument("--method", default="aligned", help="training loss; decides exit heads")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--segment", type=int, default=8)
    parser.add_argument("--length", type=int, default=32, help="prompt plus generated tokens")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--threshold", type=float, help="fixed confidence threshold")
    parser.add_argument("--target-speedup", type=float, default=2.0)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    cli.set_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    seed_everything(0)
    spec = {"method": args.method,
            "model": dict(arch="gpt2", depth=args.depth, width=args.width, heads=args.heads,
                          mlp_ratio=args.mlp_ratio, head_input=args.head_input, pretrained="")}
    info = dict(vocab_size=args.vocab, num_classes=args.vocab, max_length=args.length)
    model = build_run_model(spec, info).to(device)
    loss = train(model, args.method, args.train_steps, args.train_batch, args.lr, args.segment,
                 args.length, args.vocab)

    prompt_length = args.segment + 2
    steps = args.length - prompt_length
    generator = torch.Generator().manual_seed(1)
    prompts = list(repeated_segments(args.prompts, args.segment, prompt_length, args.vocab,
                                     generator).to(device))
    if args.threshold is None:
        threshold, level = quantile_threshold(model, prompts, steps, args.target_speedup)
        rule = (f"quantile {level:.4f} of the model's own max-softmax at layers 1..L-1 on the "
                f"full-depth continuations, chosen so that the real decoding's L/E[k] is "
                f"closest to {args.target_speedup:g}")
    else:
        threshold, rule = args.threshold, "given"

    timed = time_decoding(model, prompts, steps, "confidence", threshold, args.warmup,
                          args.repeats)
    flops_full, flops_exit = decoding_flops(model, prompts, steps, threshold)
    result = {
        "depth": args.depth, "width": args.width, "heads": args.heads, "vocab": args.vocab,
        "head_input": args.head_input, "method": args.method, "train_steps": args.train_steps,
        "final_train_loss": loss, "prompt_length": prompt_length, "new_tokens": steps,
        **timed, "threshold_rule": rule,
        "ratio_to_theoretical": timed["wall_speedup"] / timed["speedup"],
        "flops_per_token_full_depth": flops_full, "flops_per_token_early_exit": flops_exit,
        "flops_speedup": flops_full / flops_exit,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli.run(main)
