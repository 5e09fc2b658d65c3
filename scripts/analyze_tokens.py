"""Everything the study reads of one language-model run, from its model in streaming passes
over the tokens (no hidden-state file: they are too large): per-layer next-token accuracy,
cross-entropy and perplexity, COS and linear CKA between layers, per-token samples for the
figures, the early-exit sweep and operating points of every policy on per-token exits, the
saturation layer of every test token, real early-exit greedy decoding timed against full
depth, self-speculative decoding (lossless early exit) and text sampled with the exit fixed at
each layer (paper Fig 9 c, d). The files are those analyze_run.py writes for a classification
run in the exit study, but the hidden states, plus the two decoding files."""

import argparse
import json

import pandas as pd
import torch

from layerwise import cli
from layerwise.data import IGNORE
from layerwise.data.prepared import load_split
from layerwise.data.text import load_tokenizer
from layerwise.exits.decoding import time_decoding
from layerwise.exits.generation import generation_frame
from layerwise.exits.speculative import speculative_study
from layerwise.exits.offline import exit_study
from layerwise.exits.online import flop_profile
from layerwise.hidden.tokens import (finish_similarity, sample_positions, summarize_split,
                                     train_subset)
from layerwise.io import load_tensors, write_csv
from layerwise.train.runs import build_run_model
from layerwise.provenance import config_hash
from layerwise.similarity.measures import (cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, streamed_similarity_frame)
from layerwise.similarity.streaming import StreamingSimilarity

SPLITS = ("train", "val", "test")



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the run spec, as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--similarity-split", required=True)
    parser.add_argument("--train-samples", type=int,
                        help="training-split metrics over about this many tokens (whole blocks "
                             "of a fixed random subset)")
    parser.add_argument("--cka", nargs="+", default=["linear_biased"])
    parser.add_argument("--token-samples", type=int, required=True,
                        help="test tokens whose states the per-token figures show")
    parser.add_argument("--policies", nargs="+", required=True)
    parser.add_argument("--sweep-points", type=int, required=True)
    parser.add_argument("--max-drop", type=float, required=True)
    parser.add_argument("--prompts", type=int, required=True, help="test prompts to decode")
    parser.add_argument("--prompt-length", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True, help="tokens decoded per prompt")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--logit-budget", type=int, default=2**23,
                        help="float32 logits (every layer's, vocabulary-wide) held at once, "
                             "which sets the blocks per forward pass (default 32 MiB: larger "
                             "batches spend more time allocating than computing)")
    parser.add_argument("--decoding-spec", required=True,
                        help="exits.speculative and exits.generation, as JSON")
    for name in ("accuracy", "similarity", "cos-per-sample", "agreement", "norm-ratio", "sweep",
                 "operating-points", "exit-counts", "saturation", "timing", "speculative",
                 "generation"):
        parser.add_argument(f"--{name}-out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    cli.set_threads(args.threads)

    spec = json.loads(args.spec)
    spec_hash = config_hash(spec)
    info = load_split(args.data, "test")[2]
    model = build_run_model(spec, info)
    model.load_state_dict(load_tensors(args.model, metadata={"spec_hash": spec_hash})[0])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()

    per_block = info["max_length"] * (model.num_layers + 1) * info["vocab_size"]
    batch_blocks = max(1, min(64, args.logit_budget // per_block))
    rows, summaries, blocks, similarity_data = [], {}, {}, None
    similarity, kept = None, None
    for split in SPLITS:
        x, y, _ = load_split(args.data, split)
        if split == "train":
            x, y = train_subset(x, y, args.train_samples)
        blocks[split] = x, y
        streaming = split == args.similarity_split
        keep = None
        if streaming:
            similarity = StreamingSimilarity()
            tokens = int((y != IGNORE).sum())
            keep = sample_positions(tokens, args.token_samples, spec["seed"])
            similarity_data = (x, y)
        # exits are calibrated on validation and reported on test; train gets its metrics only
        policies = args.policies if split in ("val", "test") else ()
        summary, states = summarize_split(model, x, y, policies, batch_blocks,
                                          similarity if streaming else None, keep)
        if streaming:
            kept = states
        summaries[split] = summary
        for layer in range(len(summary.accuracy)):
            rows.append({"split": split, "layer": layer,
                         "accuracy": float(summary.accuracy[layer]),
                         "cross_entropy": float(summary.cross_entropy[layer]),
                         "perplexity": float(summary.perplexity[layer]),
                         "tokens": summary.tokens})
    if similarity is None:
        raise SystemExit(f"error: similarity split {args.similarity_split!r} is not one of "
                         f"{', '.join(SPLITS)}")
    finish_similarity(model, *similarity_data, batch_blocks, similarity)
    similarity_frame = streamed_similarity_frame(similarity, tuple(args.cka))

    # early exit on per-token exits (FLOPs per token: a block's count over its positions)
    x_test = blocks["test"][0]
    flops = flop_profile(model, x_test[:1].to(device)).scaled(1 / x_test.shape[1])
    study = exit_study(args.policies, summaries["val"].exits, summaries["test"].exits,
                       args.max_drop, args.sweep_points, flops)

    def prompts(split: str, count: int, length: int) -> list[torch.Tensor]:
        """The first `length` tokens of the split's first `count` blocks real that far."""
        x, y = blocks[split]
        whole = (y[:, :length] != IGNORE).all(1)
        return [block[:length].to(device) for block in x[whole][:count]]

    calm = prompts("test", args.prompts, args.prompt_length)
    timing = pd.DataFrame([{**time_decoding(model, calm, args.steps, p,
                                            threshold, args.warmup, args.repeats),
                            "batch_size": 1} for p, threshold in study.exits().values()])

    # lossless early exit: self-speculative decoding, (E, g) chosen on validation prompts
    decoding = json.loads(args.decoding_spec)
    draft = decoding["speculative"]
    exit_layers = draft["exit_layers"] or list(range(1, model.num_layers))
    speculative = speculative_study(
        model, prompts("val", draft["prompts"], draft["prompt_length"]),
        prompts("test", draft["prompts"], draft["prompt_length"]), draft["steps"],
        exit_layers, draft["draft_lengths"], summaries["test"].exits.predictions,
        args.warmup, args.repeats)

    # Fig 9 (c, d): text sampled with the exit fixed at each layer
    sampling = decoding["generation"]
    tokenizer = load_tokenizer(args.data)
    generation = generation_frame(
        model, prompts("test", sampling["prefixes"], sampling["prefix_length"]),
        tokenizer.decode, range(1, model.num_layers + 1), sampling["new_tokens"],
        sampling["top_p"], sampling["seed"], sampling["coherence_encoder"] or None)

    write_csv(args.accuracy_out, pd.DataFrame(rows))
    write_csv(args.similarity_out, similarity_frame)
    write_csv(args.cos_per_sample_out, cos_to_last_frame(kept))
    write_csv(args.agreement_out, cos_cka_agreement(similarity_frame))
    write_csv(args.norm_ratio_out, norm_ratio_frame(kept))
    study.write(args.sweep_out, args.operating_points_out, args.exit_counts_out,
                args.saturation_out)
    write_csv(args.timing_out, timing)
    write_csv(args.speculative_out, speculative)
    write_csv(args.generation_out, generation)


if __name__ == "__main__":
    cli.run(main)
