"""Everything the study reads of one language-model run, from its model in streaming passes
over the tokens (no hidden-state file: they are too large): per-layer next-token accuracy,
cross-entropy and perplexity, COS and linear CKA between layers, per-token samples for the
figures, the early-exit sweep and operating points of every policy on per-token exits, the
saturation layer of every test token, real early-exit greedy decoding timed against full
depth, self-speculative decoding (lossless early exit) and text sampled with the exit fixed at
each layer (paper Fig 9 c, d). The files are those analyze_run.py writes for a classification
run in the exit study, but the hidden states, plus the two decoding files."""

import pandas as pd
import torch

from layerwise import cli
from layerwise.data import IGNORE
from layerwise.data.prepared import load_split
from layerwise.data.text import load_tokenizer
from layerwise.exits.decoding import time_decoding
from layerwise.exits.generation import generation_frame
from layerwise.exits.offline import evaluate_policies
from layerwise.exits.online import flop_profile
from layerwise.exits.policies import POLICIES
from layerwise.exits.speculative import speculative_study
from layerwise.hidden.tokens import (finish_similarity, sample_positions, summarize_split,
                                     train_subset)
from layerwise.io import load_tensors, write_csv
from layerwise.provenance import config_hash
from layerwise.similarity.measures import (CKA_ESTIMATORS, cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, streamed_similarity_frame)
from layerwise.similarity.streaming import StreamingSimilarity
from layerwise.study.plan import ANALYSIS_PARTS, DECODING_PARTS, EXIT_PARTS, SPLITS
from layerwise.train.runs import build_run_model

SPEC_KEYS = ("run", "metric", "similarity_split", "cka_estimators", "train_samples",
             "token_samples", "exits", "judge")
EXIT_KEYS = ("policies", "sweep_points", "max_accuracy_drop", "timing", "decoding",
             "speculative", "generation")
#: float32 logits (every layer's, vocabulary-wide) held at once, which sets the blocks per
#: forward pass (32 MiB: larger batches spend more time allocating than computing)
LOGIT_BUDGET = 2**23


def load_model(run_spec: dict, info: dict, weights: str):
    """The model of a run spec with its weights, checked against the spec's hash."""
    model = build_run_model(run_spec, info)
    model.load_state_dict(load_tensors(weights, metadata={"spec_hash": config_hash(run_spec)})[0])
    return model


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the analysis spec: the run's spec under `run`, the "
                                      "layer-wise analysis' settings and `exits`, with decoding")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--judge", required=True,
                        help="weights of the model that scores every method's generated text "
                             "(the spec's `judge`)")
    parser.add_argument("--threads", type=int, default=1)
    cli.add_output_options(parser, ANALYSIS_PARTS + EXIT_PARTS + DECODING_PARTS)
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, SPEC_KEYS)
    exits = spec["exits"]
    cli.check_keys("--spec exits", exits, EXIT_KEYS)
    cli.check_choices("similarity_split", spec["similarity_split"], SPLITS)
    cli.check_choices("cka_estimators", spec["cka_estimators"], list(CKA_ESTIMATORS))
    cli.check_choices("exits.policies", exits["policies"], list(POLICIES))
    cli.set_threads(args.threads)

    info = load_split(args.data, "test")[2]
    model = load_model(spec["run"], info, args.model)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()

    per_block = info["max_length"] * (model.num_layers + 1) * info["vocab_size"]
    batch_blocks = max(1, min(64, LOGIT_BUDGET // per_block))
    rows, summaries, blocks, similarity_data = [], {}, {}, None
    similarity, kept = None, None
    for split in SPLITS:
        x, y, _ = load_split(args.data, split)
        if split == "train":
            x, y = train_subset(x, y, spec["train_samples"])
        blocks[split] = x, y
        streaming = split == spec["similarity_split"]
        keep = None
        if streaming:
            similarity = StreamingSimilarity()
            tokens = int((y != IGNORE).sum())
            keep = sample_positions(tokens, spec["token_samples"], spec["run"]["seed"])
            similarity_data = (x, y)
        # exits are calibrated on validation and reported on test; train gets its metrics only
        policies = exits["policies"] if split in ("val", "test") else ()
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
    finish_similarity(model, *similarity_data, batch_blocks, similarity)
    similarity_frame = streamed_similarity_frame(similarity, tuple(spec["cka_estimators"]))

    # early exit on per-token exits (FLOPs per token: a block's count over its positions)
    x_test = blocks["test"][0]
    flops = flop_profile(model, x_test[:1].to(device)).scaled(1 / x_test.shape[1])
    study = evaluate_policies(exits["policies"], summaries["val"].exits, summaries["test"].exits,
                              exits["max_accuracy_drop"], exits["sweep_points"], flops)

    def prompts(split: str, count: int, length: int) -> list[torch.Tensor]:
        """The first `length` tokens of the split's first `count` blocks real that far."""
        x, y = blocks[split]
        whole = (y[:, :length] != IGNORE).all(1)
        return [block[:length].to(device) for block in x[whole][:count]]

    greedy, timed = exits["decoding"], exits["timing"]
    warmup, repeats = timed["warmup"], timed["repeats"]
    calm = prompts("test", greedy["prompts"], greedy["prompt_length"])
    timing = pd.DataFrame([{**time_decoding(model, calm, greedy["steps"], p,
                                            threshold, warmup, repeats),
                            "batch_size": 1} for p, threshold in study.exits().values()])

    # lossless early exit: self-speculative decoding, the drafts chosen on validation prompts
    draft = exits["speculative"]
    exit_layers = draft["exit_layers"] or list(range(1, model.num_layers))
    speculative = speculative_study(
        model, prompts("val", draft["prompts"], draft["prompt_length"]),
        prompts("test", draft["prompts"], draft["prompt_length"]), draft["steps"],
        exit_layers, draft["draft_lengths"], draft["stop_thresholds"],
        summaries["test"].exits.predictions, tuple(draft["draft_heads"]), warmup, repeats)

    # Fig 9 (c, d): text sampled with the exit fixed at each layer
    sampling = exits["generation"]
    tokenizer = load_tokenizer(args.data)
    judge = load_model(spec["judge"]["run"], info, args.judge).to(device).eval()
    generation = generation_frame(
        model, prompts("test", sampling["prefixes"], sampling["prefix_length"]),
        tokenizer.decode, range(1, model.num_layers + 1), sampling["new_tokens"],
        sampling["top_p"], sampling["seed"], sampling["coherence_encoder"] or None,
        judge=judge).assign(coherence_judge=spec["judge"]["name"])

    write_csv(args.layer_accuracy, pd.DataFrame(rows))
    write_csv(args.similarity, similarity_frame)
    write_csv(args.cos_per_sample, cos_to_last_frame(kept))
    write_csv(args.agreement, cos_cka_agreement(similarity_frame))
    write_csv(args.norm_ratio, norm_ratio_frame(kept))
    study.write(args.sweep, args.operating_points, args.exit_counts, args.saturation)
    write_csv(args.timing, timing)
    write_csv(args.speculative, speculative)
    write_csv(args.generation, generation)


if __name__ == "__main__":
    cli.run(main)
