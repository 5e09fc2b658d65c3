"""Everything the study reads of one language-model run, from its model in streaming passes
over the tokens (no hidden-state file: they are too large): per-layer next-token accuracy,
cross-entropy and perplexity, COS and linear CKA between layers, per-token samples for the
figures, the early-exit sweep and operating points of every policy on per-token exits, the
saturation layer of every test token, real early-exit greedy decoding timed against full
depth, self-speculative decoding (lossless early exit) and text sampled with the exit fixed at
each layer (paper Fig 9 c, d). The files are those of a classifier run in the exit study
(layerwise.hidden.classifier_run) but the hidden states, plus the two decoding files.
scripts/analyze_tokens.py is its command line.

`outputs` maps each file's name (an analysis part, an exit part, a decoding part) to its path.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from layerwise.data import IGNORE
from layerwise.data.prepared import SPLITS, load_split
from layerwise.data.text import load_tokenizer
from layerwise.exits.decoding import time_decoding
from layerwise.exits.generation import generation_frame
from layerwise.exits.offline import evaluate_policies
from layerwise.exits.online import flop_profile
from layerwise.exits.speculative import speculative_study
from layerwise.hidden.tokens import (finish_similarity, sample_positions, summarize_split,
                                     train_subset)
from layerwise.io import write_csv
from layerwise.models.base import CausalDecoder
from layerwise.similarity.measures import (cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, streamed_similarity_frame)
from layerwise.similarity.streaming import StreamingSimilarity
from layerwise.train.runs import load_run_model

#: float32 logits (every layer's, vocabulary-wide) held at once, which sets the blocks per
#: forward pass (32 MiB: larger batches spend more time allocating than computing)
LOGIT_BUDGET = 2**23


def analyze_language_model(model: CausalDecoder, spec: dict, data: str, judge_weights: str,
                           outputs: Mapping[str, str], device: torch.device) -> None:
    """The analysis `spec` asks of a run whose model (on `device`, in eval mode) is loaded, on
    the prepared dataset in `data`; the run of `judge_weights` (the spec's `judge`) scores every
    method's generated text."""
    exits = spec["exits"]
    rows, summaries, blocks, similarity_data = [], {}, {}, None
    similarity, kept = None, None
    for split in SPLITS:
        x, y, info = load_split(data, split)   # info: the dataset's, the same for every split
        per_block = info["max_length"] * (model.num_layers + 1) * info["vocab_size"]
        batch_blocks = max(1, min(64, LOGIT_BUDGET // per_block))
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
    tokenizer = load_tokenizer(data)
    judge = load_run_model(spec["judge"]["run"], info, judge_weights).to(device).eval()
    generation = generation_frame(
        model, prompts("test", sampling["prefixes"], sampling["prefix_length"]),
        tokenizer.decode, range(1, model.num_layers + 1), sampling["new_tokens"],
        sampling["top_p"], sampling["seed"], sampling["coherence_encoder"] or None,
        judge=judge).assign(coherence_judge=spec["judge"]["name"])

    write_csv(outputs["layer_accuracy"], pd.DataFrame(rows))
    write_csv(outputs["similarity"], similarity_frame)
    write_csv(outputs["cos_per_sample"], cos_to_last_frame(kept))
    write_csv(outputs["agreement"], cos_cka_agreement(similarity_frame))
    write_csv(outputs["norm_ratio"], norm_ratio_frame(kept))
    study.write(outputs["sweep"], outputs["operating_points"], outputs["exit_counts"],
                outputs["saturation"])
    write_csv(outputs["timing"], timing)
    write_csv(outputs["speculative"], speculative)
    write_csv(outputs["generation"], generation)
