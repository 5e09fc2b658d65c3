"""Tokens per second of self-speculative greedy decoding against full-depth decoding, batch 1.

    python -m benchmarks.speculative [--depth 12] [--width 768] [--heads 12] [--vocab 50257]
                                     [--small] [--method standard] [--prompt-length 16]
                                     [--steps 32] [--prompts 8] [--exit-layers 3,6,12]
                                     [--draft-lengths 2,4] [--warmup 1] [--repeats 3]
                                     [--threads 1] [--device cpu|cuda]

Builds a randomly initialised GPT-2, by default the paper config's GPT-2 124M (12 layers, width
768, 12 heads, GPT-2's vocabulary of 50,257); --small makes it 4 layers of width 128 with a
vocabulary of 1,024 for a quick CPU run. Runs on CUDA when available, else on the CPU. The
prompts are random tokens. For every (exit layer E, draft length g) of the grid it times
speculative decoding (`layerwise.exits.speculative`) and full-depth greedy decoding of the same
model, interleaved after a warm-up, the median over prompts, and checks on the device that both
give the same tokens.

Random weights say nothing of a trained model's acceptance. At GPT-2's initialisation (std
0.02) the token embedding dominates the residual stream and the tied head mostly predicts the
input token again at every depth, so the shared exit's drafts are accepted far more often than
a trained model's would be (about 0.95 in the --small run); --method multi_exit drafts through
random per-layer heads instead, whose acceptance is near zero. Neither is a measurement of
speculation on a real model. The grid includes E = L by default: the full model as its own
draft, always accepted, with the same L block calls per token as full depth, so its speed
against full depth is the bookkeeping overhead of this implementation (the extra head calls,
the cache crops, one host synchronisation per round) that a shallower draft has to win back.
Prints one JSON object as its last line: the model's size and one record of
`time_speculative` per (E, g).
"""

from __future__ import annotations

import argparse
import json

import torch

from layerwise import cli
from layerwise.exits.speculative import time_speculative
from layerwise.models import build_model
from layerwise.seeding import seed_everything

SMALL = dict(depth=4, width=128, heads=4, vocab=1024)


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--small", action="store_true",
                        help="depth 4, width 128, 4 heads, vocabulary 1,024")
    parser.add_argument("--method", default="standard", choices=["standard", "multi_exit"],
                        help="multi_exit drafts through per-layer heads (random, as the rest)")
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=32, help="tokens generated per prompt")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--exit-layers", type=integers,
                        help="comma-separated E (default: L/4, L/2 and L)")
    parser.add_argument("--draft-lengths", type=integers, default=[2, 4])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    if args.small:
        for key, value in SMALL.items():
            setattr(args, key, value)
    cli.set_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    depth = args.depth
    exit_layers = args.exit_layers or sorted({max(1, depth // 4), max(1, depth // 2), depth})

    seed_everything(0)
    spec = dict(arch="gpt2", depth=depth, width=args.width, heads=args.heads, mlp_ratio=4.0,
                head_input="raw", pretrained="")
    info = dict(vocab_size=args.vocab, num_classes=args.vocab,
                max_length=args.prompt_length + args.steps)
    model = build_model(spec, info)
    if args.method == "multi_exit":
        model.add_exit_heads(args.vocab)
    model = model.to(device).eval()
    generator = torch.Generator().manual_seed(1)
    prompts = list(torch.randint(0, args.vocab, (args.prompts, args.prompt_length),
                                 generator=generator).to(device))

    records = [time_speculative(model, prompts, args.steps, e, g, args.warmup, args.repeats)
               for e in exit_layers for g in args.draft_lengths]
    result = {"depth": depth, "width": args.width, "heads": args.heads, "vocab": args.vocab,
              "method": args.method, "parameters": sum(p.numel() for p in model.parameters()),
              "prompt_length": args.prompt_length, "new_tokens": args.steps,
              "all_equal_to_full_depth": all(r["equal_to_full_depth"] for r in records),
              "records": records}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli.run(main)
