"""Self-speculative greedy decoding: the model's first layers draft, the whole model verifies.

As in LayerSkip (Elhoushi et al. 2024) and Draft & Verify (Zhang et al. 2024), the first E
blocks and the exit at layer E (`model.exit_logits`: the shared head, or the layer's own head in
a multi-exit model) draft up to g tokens one at a time at batch 1. The full model then checks
all of them in one pass over blocks E+1..L, starting from the layer-E states the draft kept,
with the keys and values the draft wrote for layers 1..E reused as they are. The longest prefix
of drafted tokens equal to the full model's argmax is kept, followed by the full model's own
token at the first mismatch (or, when every draft is accepted, the bonus token after the last
one), so the output is full-depth greedy decoding token for token whatever the draft; a good
draft only makes it cheaper: up to g + 1 tokens for one pass over the deep blocks. Rejected
positions are cropped from every layer of the cache.

Unlike early exit (`layerwise.exits.decoding`) no layer is ever skipped, so no state is copied
and nothing is approximated; the cost is the draft blocks whose tokens are rejected. The model
is a `LayeredClassifier` with the cache interface of `layerwise.models.gpt2.GPT2Classifier`
(`embed`, `block` with a transformers `DynamicCache`, `new_cache`); the prompt is encoded by
`prefill` as in early-exit decoding.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch

from layerwise.exits.decoding import greedy_decode, prefill
from layerwise.exits.online import time_pass
from layerwise.models.base import LayeredClassifier, MaskedState

if TYPE_CHECKING:
    from transformers.cache_utils import Cache

Draft = Callable[[torch.Tensor, int], torch.Tensor]  # (pooled state (1, d), layer) -> logits


@dataclass(frozen=True)
class Speculated:
    """Generated tokens and the work they took: tokens drafted and accepted, verification
    passes, and block calls while drafting (one position each) and verifying (L per pass: E
    for the last drafted token, then L - E over every checked position). Full-depth greedy
    decoding makes L block calls per token."""

    tokens: torch.Tensor   # (steps,)
    drafted: int
    accepted: int
    passes: int
    draft_blocks: int
    verify_blocks: int

    @property
    def acceptance(self) -> float:
        """Accepted drafted tokens per drafted token (NaN when nothing was drafted)."""
        return self.accepted / self.drafted if self.drafted else float("nan")

    @property
    def tokens_per_pass(self) -> float:
        return len(self.tokens) / self.passes

    @property
    def block_calls_per_token(self) -> float:
        return (self.draft_blocks + self.verify_blocks) / len(self.tokens)


def speculate_round(model: LayeredClassifier, cache: Cache, token: torch.Tensor,
                    exit_layer: int, count: int, draft: Draft | None = None
                    ) -> tuple[torch.Tensor, int]:
    """One round of drafting `count` tokens and verifying them, from a cache holding the C
    committed positions in every layer and the (1, 1) `token` that follows them. Returns the
    1..count + 1 new tokens (accepted drafts, then the full model's next token) and the number
    of accepted drafts; the cache then holds the committed positions up to the last new token,
    which is the next round's `token`."""
    head = draft or model.exit_logits
    last = model.num_layers
    # The verification mask depends only on where the checked positions sit (C..C + count), so
    # it is built now, while every layer still holds C positions; the embedding is discarded.
    verify_mask = model.embed(token.expand(1, count + 1), cache).attention_mask
    kept, drafted = [], []
    for _ in range(count):
        state = model.embed(token, cache)
        for index in range(exit_layer):
            state = model.block(index, state, cache)
        kept.append(state.hidden)
        token = head(model.pool(state)[:, -1], exit_layer).argmax(-1, keepdim=True)
        drafted.append(token[0])
    # The last drafted token (the given one if nothing was drafted) is checked too, for the
    # bonus token: it has no layer-E state yet.
    state = model.embed(token, cache)
    for index in range(exit_layer):
        state = model.block(index, state, cache)
    state = MaskedState(torch.cat([*kept, state.hidden], dim=1), verify_mask)
    for index in range(exit_layer, last):
        state = model.block(index, state, cache)
    full = model.classify(model.pool(state)[0], last).argmax(-1)  # (count + 1,)
    drafted_tokens = torch.cat(drafted) if drafted else full[:0]
    accepted = int((drafted_tokens == full[:count]).long().cumprod(0).sum())
    if accepted < count:  # every layer holds C + count + 1 positions; keep C + accepted + 1
        cache.crop(accepted - count)
    return torch.cat([drafted_tokens[:accepted], full[accepted:accepted + 1]]), accepted


@torch.inference_mode()
def speculative_decode(model: LayeredClassifier, prompt: torch.Tensor, steps: int,
                       exit_layer: int, draft_length: int, draft: Draft | None = None
                       ) -> Speculated:
    """Greedy decoding of `steps` tokens after a (T,) prompt, drafting up to `draft_length`
    tokens a round through the exit at `exit_layer` (1..L; or through `draft`, called as
    `model.exit_logits` is) and verifying them with the full model. The tokens are those of
    `greedy_decode`."""
    last = model.num_layers
    if not 1 <= exit_layer <= last:
        raise ValueError(f"exit_layer must be in 1..{last}, got {exit_layer}")
    if draft_length < 1 or steps < 1:
        raise ValueError(f"draft_length and steps must be positive, got {draft_length} and "
                         f"{steps}")
    cache, token = prefill(model, prompt)
    tokens, emitted, drafted, accepted, passes = [], 0, 0, 0, 0
    while emitted < steps:
        # a round emits up to count + 1 tokens: draft no more than is still needed
        count = min(draft_length, steps - emitted - 1)
        new, taken = speculate_round(model, cache, token, exit_layer, count, draft)
        tokens.append(new)
        emitted, drafted, accepted, passes = (emitted + len(new), drafted + count,
                                              accepted + taken, passes + 1)
        token = new[-1:].view(1, 1)
    return Speculated(torch.cat(tokens), drafted, accepted, passes,
                      draft_blocks=drafted * exit_layer, verify_blocks=passes * last)


@torch.no_grad()
def time_speculative(model: LayeredClassifier, prompts: list[torch.Tensor], steps: int,
                     exit_layer: int, draft_length: int, warmup: int = 1, repeats: int = 3
                     ) -> dict:
    """Tokens per second of speculative and full-depth greedy decoding of `steps` tokens after
    each prompt at batch 1 (whole runs, the prompt's encoding included), with the acceptance,
    the tokens per verification pass and whether the outputs are equal on every prompt.

    After `warmup` untimed rounds over all prompts, each repeat times both variants on every
    prompt in turn, interleaved so that they share the machine's load. A prompt's time is its
    median over the repeats, and the rate reported is `steps` over the median prompt's time.
    On CUDA the device is synchronized before the clock is read.
    """
    model.eval()
    device = prompts[0].device
    runners = {"full_depth": lambda p: greedy_decode(model, p, steps),
               "speculative": lambda p: speculative_decode(model, p, steps, exit_layer,
                                                           draft_length)}
    for _ in range(warmup):
        for run in runners.values():
            time_pass(run, prompts, device)
    times = {name: [[] for _ in prompts] for name in runners}
    for _ in range(repeats):
        for i, prompt in enumerate(prompts):
            for name, run in runners.items():
                times[name][i].append(time_pass(run, [prompt], device))
    seconds = {name: statistics.median(statistics.median(t) for t in per_prompt)
               for name, per_prompt in times.items()}

    decoded = [speculative_decode(model, p, steps, exit_layer, draft_length) for p in prompts]
    equal = all(torch.equal(d.tokens, greedy_decode(model, p, steps))
                for d, p in zip(decoded, prompts))
    drafted, accepted = sum(d.drafted for d in decoded), sum(d.accepted for d in decoded)
    passes, tokens = sum(d.passes for d in decoded), steps * len(prompts)
    calls = sum(d.draft_blocks + d.verify_blocks for d in decoded)
    return {"exit_layer": exit_layer, "draft_length": draft_length, "prompts": len(prompts),
            "steps": steps, "device": device.type, "threads": torch.get_num_threads(),
            "tokens_per_s_full_depth": steps / seconds["full_depth"],
            "tokens_per_s_speculative": steps / seconds["speculative"],
            "wall_speedup": seconds["full_depth"] / seconds["speculative"],
            "acceptance": accepted / drafted if drafted else float("nan"),
            "tokens_per_pass": tokens / passes,
            "block_calls_per_token": calls / tokens, "block_calls_full_depth": model.num_layers,
            "equal_to_full_depth": equal}


def acceptance_sweep(model: LayeredClassifier, prompts: list[torch.Tensor], steps: int,
                     exit_layers: list[int], draft_length: int) -> pd.DataFrame:
    """One row per exit layer: tokens drafted and accepted over all prompts, the acceptance,
    the tokens per verification pass and the block calls per token (counts, no timing)."""
    rows = []
    for exit_layer in exit_layers:
        decoded = [speculative_decode(model, p, steps, exit_layer, draft_length)
                   for p in prompts]
        drafted, accepted = sum(d.drafted for d in decoded), sum(d.accepted for d in decoded)
        tokens = steps * len(prompts)
        rows.append({"exit_layer": exit_layer, "draft_length": draft_length,
                     "drafted": drafted, "accepted": accepted,
                     "acceptance": accepted / drafted if drafted else float("nan"),
                     "tokens_per_pass": tokens / sum(d.passes for d in decoded),
                     "block_calls_per_token":
                         sum(d.draft_blocks + d.verify_blocks for d in decoded) / tokens})
    return pd.DataFrame(rows)


@torch.no_grad()
def choose_draft(model: LayeredClassifier, prompts: list[torch.Tensor], steps: int,
                 exit_layers: list[int], draft_lengths: list[int], warmup: int = 1,
                 repeats: int = 3) -> tuple[tuple[int, int], pd.DataFrame]:
    """The (exit layer, draft length) with the highest measured tokens/s of speculative
    decoding on the given (validation) prompts, and the grid as a frame (exit_layer,
    draft_length, tokens_per_s_speculative: `steps` over the median prompt's median time).

    Only the speculative decoder is timed: full depth is the same for every pair, so the choice
    needs none of its time (`time_speculative` measures the chosen pair against it). One
    `warmup` round of the whole grid comes first; each repeat then times every pair on every
    prompt in turn, so that all pairs share the machine's load."""
    model.eval()
    device = prompts[0].device
    pairs = [(e, g) for e in exit_layers for g in draft_lengths]

    def runner(pair):
        return lambda p: speculative_decode(model, p, steps, *pair)

    for _ in range(warmup):
        for pair in pairs:
            time_pass(runner(pair), prompts, device)
    times = {pair: [[] for _ in prompts] for pair in pairs}
    for _ in range(repeats):
        for i, prompt in enumerate(prompts):
            for pair in pairs:
                times[pair][i].append(time_pass(runner(pair), [prompt], device))
    grid = pd.DataFrame([{"exit_layer": e, "draft_length": g, "tokens_per_s_speculative":
                          steps / statistics.median(statistics.median(t) for t in times[(e, g)])}
                         for e, g in pairs])
    best = grid.loc[grid["tokens_per_s_speculative"].idxmax()]
    return (int(best["exit_layer"]), int(best["draft_length"])), grid


def speculative_study(model: LayeredClassifier, val_prompts: list[torch.Tensor],
                      test_prompts: list[torch.Tensor], steps: int, exit_layers: list[int],
                      draft_lengths: list[int], predictions: torch.Tensor, warmup: int = 1,
                      repeats: int = 3) -> pd.DataFrame:
    """What the study reports of a language model's self-speculative decoding: (E, g) chosen on
    the validation prompts (`choose_draft`), then every E of `exit_layers` timed on the test
    prompts at the chosen g, one row each (`chosen` marks the chosen E), beside the fraction of
    test tokens whose layer-E prediction already equals layer L's (`layer_agreement`, from the
    (L, N) per-layer predictions `predictions` of layers 1..L): the token-level share of what
    greedy acceptance measures along the decoded text."""
    (chosen_layer, chosen_length), _ = choose_draft(model, val_prompts, steps, exit_layers,
                                                    draft_lengths, warmup, repeats)
    rows = []
    for exit_layer in exit_layers:
        record = time_speculative(model, test_prompts, steps, exit_layer, chosen_length,
                                  warmup, repeats)
        agreement = (predictions[exit_layer - 1] == predictions[-1]).double().mean().item()
        rows.append({**record, "layer_agreement": agreement,
                     "chosen": exit_layer == chosen_layer})
    return pd.DataFrame(rows)
