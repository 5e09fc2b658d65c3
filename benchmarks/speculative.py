"""Tokens per second of self-speculative greedy decoding, a fixed and a confidence-stopped draft
side by side, against full-depth decoding at batch 1.

    python -m benchmarks.speculative --run results/runs/gpt2_running_text/multi_exit/seed0 \
                                     --data results/data/running_text [--prompts 8]
                                     [--prompt-length 16] [--steps 24] [--exit-layers 1,2,4]
                                     [--draft-lengths 2,4,8] [--stop-thresholds 0.05,0.1,0.2,0.3,0.5]
                                     [--warmup 1] [--repeats 3] [--threads 1] [--device cpu|cuda]
    python -m benchmarks.speculative [--small] [--depth 12] [--width 768] [--heads 12]
                                     [--vocab 50257] [--method standard] [--exit-layers 3,6,12]
                                     [--draft-lengths 2,4] [--stop-below 0.5] [--draft-head exit]
                                     ...

With `--run`, a trained run of the study (its weights and provenance.json) on its prepared
dataset: the drafts are chosen on validation prompts as the study chooses them
(`layerwise.exits.speculative.choose_plans`: a replay ranks every exit layer, head, draft length
and stop threshold, and the best of each kind is chosen) and the chosen fixed and adaptive
drafts are timed against full depth on test prompts (`time_plans`: one loop, the order rotating,
median over prompts with quartiles), their outputs checked against full depth.

Without it, a randomly initialised GPT-2, by default the paper config's GPT-2 124M (12 layers,
width 768, 12 heads, GPT-2's vocabulary of 50,257); --small makes it 4 layers of width 128 with
a vocabulary of 1,024 for a quick CPU run, on random prompts. For every (exit layer E, draft
length g) it times the fixed draft and the same draft stopped below --stop-below. Random
weights say nothing of a trained model's acceptance: at GPT-2's initialisation the tied head
mostly predicts the input token again at every depth, so the shared exit's drafts are accepted
far more often than a trained model's would be; --method multi_exit drafts through random
per-layer heads, whose acceptance is near zero. The grid includes E = L by default: the full
model as its own draft, always accepted, so its speed against full depth is the bookkeeping
overhead of this implementation that a shallower draft has to win back.

Prints one JSON object as its last line: the model's size and one record of `time_plans` per
timed draft.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pandas as pd
import torch

from layerwise import cli
from layerwise.exits.speculative import DRAFT_HEADS, DraftPlan, choose_plans, time_plans
from layerwise.models import build_model
from layerwise.seeding import seed_everything

SMALL = dict(depth=4, width=128, heads=4, vocab=1024)


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def numbers(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def trained_run(run: Path, data: Path, device: torch.device):
    """A study run's model, loaded as the study loads it, and a function giving the first
    `length` tokens of the first `count` blocks of a split that are real that far."""
    from layerwise.data import IGNORE
    from layerwise.data.prepared import load_split
    from layerwise.io import load_tensors
    from layerwise.train.runs import build_run_model

    provenance = json.loads((run / "provenance.json").read_text())
    spec = provenance["spec"]
    spec = spec if isinstance(spec, dict) else ast.literal_eval(spec)
    info = load_split(data, "test")[2]
    model = build_run_model(spec, info)
    model.load_state_dict(load_tensors(run / "model.safetensors",
                                       metadata={"spec_hash": provenance["spec_hash"]})[0])

    def prompts(split: str, count: int, length: int) -> list[torch.Tensor]:
        x, y, _ = load_split(data, split)
        whole = (y[:, :length] != IGNORE).all(1)
        return [block[:length].to(device) for block in x[whole][:count]]

    return model.to(device).eval(), prompts


def random_model(args, device: torch.device):
    seed_everything(0)
    spec = dict(arch="gpt2", depth=args.depth, width=args.width, heads=args.heads,
                mlp_ratio=4.0, head_input="raw", pretrained="")
    info = dict(vocab_size=args.vocab, num_classes=args.vocab,
                max_length=args.prompt_length + args.steps)
    model = build_model(spec, info)
    if args.method == "multi_exit":
        model.add_exit_heads(args.vocab)
    generator = torch.Generator().manual_seed(1)
    prompts = list(torch.randint(0, args.vocab, (args.prompts, args.prompt_length),
                                 generator=generator).to(device))
    return model.to(device).eval(), prompts


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a trained run's folder (with --data)")
    parser.add_argument("--data", type=Path, help="the run's prepared dataset folder")
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--small", action="store_true",
                        help="depth 4, width 128, 4 heads, vocabulary 1,024")
    parser.add_argument("--method", default="standard", choices=["standard", "multi_exit"],
                        help="multi_exit drafts through per-layer heads (random, as the rest)")
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=24, help="tokens generated per prompt")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--exit-layers", type=integers,
                        help="comma-separated E (default: every layer with --run, else L/4, "
                             "L/2 and L)")
    parser.add_argument("--draft-lengths", type=integers, default=[2, 4, 8])
    parser.add_argument("--stop-thresholds", type=numbers, default=[0.05, 0.1, 0.2, 0.3, 0.5],
                        help="with --run: the adaptive draft's thresholds to choose from")
    parser.add_argument("--stop-below", type=float, default=0.5,
                        help="without --run: the adaptive draft's threshold")
    parser.add_argument("--draft-head", default="exit", choices=DRAFT_HEADS,
                        help="without --run: how the draft reads layer E")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    if (args.run is None) != (args.data is None):
        parser.error("--run and --data go together")
    if args.small:
        for key, value in SMALL.items():
            setattr(args, key, value)
    cli.set_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    if args.run is not None:
        model, prompts = trained_run(args.run, args.data, device)
        exit_layers = args.exit_layers or list(range(1, model.num_layers))
        chosen, grid = choose_plans(model, prompts("val", args.prompts, args.prompt_length),
                                    args.steps, exit_layers, args.draft_lengths,
                                    args.stop_thresholds, DRAFT_HEADS, args.warmup,
                                    args.repeats)
        records = time_plans(model, prompts("test", args.prompts, args.prompt_length),
                             args.steps, chosen, args.warmup, args.repeats)
        shortlist = grid.dropna(subset=["timed_tokens_per_s"]).to_dict("records")
        source = {"run": str(args.run), "validation_shortlist": shortlist}
    else:
        model, prompts = random_model(args, device)
        depth = model.num_layers
        exit_layers = args.exit_layers or sorted({max(1, depth // 4), max(1, depth // 2),
                                                  depth})
        records = pd.concat([time_plans(model, prompts, args.steps, {
            "fixed": DraftPlan(e, g, args.draft_head),
            "adaptive": DraftPlan(e, g, args.draft_head, args.stop_below)},
            args.warmup, args.repeats) for e in exit_layers for g in args.draft_lengths],
            ignore_index=True)
        source = {"method": args.method, "width": args.width, "heads": args.heads,
                  "vocab": args.vocab}
    result = {**source, "depth": model.num_layers,
              "parameters": sum(p.numel() for p in model.parameters()),
              "prompt_length": args.prompt_length, "new_tokens": args.steps,
              "all_equal_to_full_depth": bool(records["equal_to_full_depth"].all()),
              "records": records.to_dict("records")}
    print(json.dumps(result, default=float))
    return result


if __name__ == "__main__":
    cli.run(main)
