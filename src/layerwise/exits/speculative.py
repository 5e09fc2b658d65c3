"""Self-speculative greedy decoding: the model's first layers draft, the whole model verifies.

As in LayerSkip (Elhoushi et al. 2024) and Draft & Verify (Zhang et al. 2024), the first E
blocks and a head read at layer E draft up to g tokens one at a time at batch 1: the method's
own exit (`model.exit_logits`: the shared head, the layer's own head in a multi-exit model, a
lens' translator and the output path) or the model's final output path, final norm and head
(the logit lens; `DRAFT_HEADS`). Drafting stops early at the first token whose top probability
falls below a threshold (as Draft & Verify and SWIFT stop), which is not proposed. The full
model then checks the drafted tokens in one pass over blocks E+1..L, starting from the layer-E
states the draft kept, with the keys and values the draft wrote for layers 1..E reused as they
are. The longest prefix of drafted tokens equal to the full model's argmax is kept, followed by
the full model's own token at the first mismatch (or, when every draft is accepted, the bonus
token after the last one), so the output is full-depth greedy decoding token for token
whatever the draft; a good draft only makes it cheaper: up to g + 1 tokens for one pass over
the deep blocks. Rejected positions are cropped from every layer of the cache.

Unlike early exit (`layerwise.exits.decoding`) no layer is ever skipped, so no state is copied
and nothing is approximated; the cost is the draft blocks whose tokens are rejected. The model
is a `CausalDecoder` (`layerwise.models.base`: `embed` and `block` with a transformers cache,
`new_cache`); the prompt is encoded by `prefill` as in early-exit decoding.

Which drafts to use is chosen on validation prompts (`choose_plans`): a replay (`trace_drafts`,
`replay`) counts, for every draft exit, head, length and threshold, the tokens each round
would accept along the full-depth output, from one teacher-forced pass, and ranks them by the
block and head calls they would spend, measured against a block's time; the best fixed and the
best adaptive plan are then timed, which says which of the two is faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd
import torch

from layerwise.exits.decoding import greedy_decode, prefill
from layerwise.exits.online import synchronize
from layerwise.models.base import CausalDecoder

if TYPE_CHECKING:
    from transformers.cache_utils import Cache

Draft = Callable[[torch.Tensor, int], torch.Tensor]  # (pooled state (1, d), layer) -> logits

#: How a draft reads layer E: "exit", the method's own exit there (what its layer-wise analysis
#: reads); "final", the model's final output path, final norm and head (the logit lens).
DRAFT_HEADS = ("exit", "final")


def draft_reader(model: CausalDecoder, head: str) -> Draft:
    """The draft head `head` (one of DRAFT_HEADS) of `model`, called as `model.exit_logits`."""
    if head == "exit":
        return model.exit_logits
    if head == "final":
        return lambda h, layer: model.head(model.final_norm(h))
    raise ValueError(f"unknown draft head {head!r}; one of {DRAFT_HEADS}")


@dataclass(frozen=True)
class DraftPlan:
    """How to draft: at exit `exit_layer` through `head`, up to `draft_length` tokens a round,
    stopping at the first token whose top probability is below `stop_below` (0: never)."""

    exit_layer: int
    draft_length: int
    head: str = "exit"
    stop_below: float = 0.0

    @property
    def adaptive(self) -> bool:
        return self.stop_below > 0

    def decode(self, model: CausalDecoder, prompt: torch.Tensor, steps: int
               ) -> "Speculated":
        return speculative_decode(model, prompt, steps, self.exit_layer, self.draft_length,
                                  draft_reader(model, self.head), self.stop_below)


@dataclass(frozen=True)
class Speculated:
    """Generated tokens and the work they took: tokens drafted and accepted, verification
    passes, block calls while drafting (one position each) and verifying (L per pass: E
    for the last drafted token, then L - E over every checked position), and head calls while
    drafting (one per drafted token, and one per round that stopped early). Full-depth greedy
    decoding makes L block calls per token."""

    tokens: torch.Tensor   # (steps,)
    drafted: int
    accepted: int
    passes: int
    draft_blocks: int
    verify_blocks: int
    draft_heads: int = 0

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


def speculate_round(model: CausalDecoder, cache: Cache, token: torch.Tensor,
                    exit_layer: int, count: int, draft: Draft | None = None,
                    stop_below: float = 0.0) -> tuple[torch.Tensor, int, int]:
    """One round of drafting up to `count` tokens and verifying them, from a cache holding the
    C committed positions in every layer and the (1, 1) `token` that follows them. Drafting
    stops early at a token whose top probability is below `stop_below`. Returns the new tokens
    (accepted drafts, then the full model's next token), the number of accepted drafts and the
    number drafted; the cache then holds the committed positions up to the last new token,
    which is the next round's `token`."""
    head = draft or model.exit_logits
    last = model.num_layers
    # What the verification needs of its positions (mask, position embeddings) depends only on
    # where they sit (C..C + count), so it is built now, while every layer still holds C
    # positions; the embedding is discarded.
    verify = model.embed(token.expand(1, count + 1), cache)
    kept, drafted = [], []
    while True:  # the layer-E state of each input: the given token, then every drafted one
        state = model.embed(token, cache)
        for index in range(exit_layer):
            state = model.block(index, state, cache)
        kept.append(state.hidden)
        if len(drafted) == count:
            break
        logits = head(model.pool(state)[:, -1], exit_layer)
        if stop_below > 0 and float(logits.softmax(-1).amax()) < stop_below:
            break  # not confident: verify what was drafted so far
        token = logits.argmax(-1, keepdim=True)
        drafted.append(token[0])
    checked = len(kept)
    state = replace(verify.first(checked), hidden=torch.cat(kept, dim=1))
    for index in range(exit_layer, last):
        state = model.block(index, state, cache)
    full = model.classify(model.pool(state)[0], last).argmax(-1)  # (checked,)
    drafted_tokens = torch.cat(drafted) if drafted else full[:0]
    accepted = int((drafted_tokens == full[:len(drafted)]).long().cumprod(0).sum())
    if accepted < len(drafted):  # every layer holds C + checked positions; keep C + accepted + 1
        cache.crop(accepted - len(drafted))
    new = torch.cat([drafted_tokens[:accepted], full[accepted:accepted + 1]])
    return new, accepted, len(drafted)


@torch.inference_mode()
def speculative_decode(model: CausalDecoder, prompt: torch.Tensor, steps: int,
                       exit_layer: int, draft_length: int, draft: Draft | None = None,
                       stop_below: float = 0.0) -> Speculated:
    """Greedy decoding of `steps` tokens after a (T,) prompt, drafting up to `draft_length`
    tokens a round through the exit at `exit_layer` (1..L; or through `draft`, called as
    `model.exit_logits` is), stopping a draft at a token whose top probability is below
    `stop_below`, and verifying them with the full model. The tokens are those of
    `greedy_decode`."""
    last = model.num_layers
    if not 1 <= exit_layer <= last:
        raise ValueError(f"exit_layer must be in 1..{last}, got {exit_layer}")
    if draft_length < 1 or steps < 1:
        raise ValueError(f"draft_length and steps must be positive, got {draft_length} and "
                         f"{steps}")
    if not 0 <= stop_below <= 1:
        raise ValueError(f"stop_below is a probability in [0, 1], got {stop_below}")
    cache, token = prefill(model, prompt)
    tokens, emitted, drafted, accepted, passes, heads = [], 0, 0, 0, 0, 0
    while emitted < steps:
        # a round emits up to count + 1 tokens: draft no more than is still needed
        count = min(draft_length, steps - emitted - 1)
        new, taken, proposed = speculate_round(model, cache, token, exit_layer, count, draft,
                                               stop_below)
        tokens.append(new)
        heads += proposed + (proposed < count)
        emitted, drafted, accepted, passes = (emitted + len(new), drafted + proposed,
                                              accepted + taken, passes + 1)
        token = new[-1:].view(1, 1)
    return Speculated(torch.cat(tokens), drafted, accepted, passes,
                      draft_blocks=drafted * exit_layer, verify_blocks=passes * last,
                      draft_heads=heads)


# --- replay: what every draft would accept, from one pass --------------------------------
@dataclass(frozen=True)
class DraftTrace:
    """Along one prompt's full-depth greedy output, what each draft (exit layer, head) would
    propose for every token given the output before it: whether it is the output's token, and
    its top probability."""

    tokens: torch.Tensor                                # (steps,) the full-depth output
    right: dict[tuple[int, str], torch.Tensor]          # (E, head) -> (steps,) bool
    confidence: dict[tuple[int, str], torch.Tensor]     # (E, head) -> (steps,) top probability


@torch.inference_mode()
def trace_drafts(model: CausalDecoder, prompt: torch.Tensor, steps: int,
                 exit_layers: list[int], heads: tuple[str, ...] = DRAFT_HEADS) -> DraftTrace:
    """Decode `steps` tokens at full depth, then read every exit of `exit_layers` through every
    head of `heads` along that output in one teacher-forced pass."""
    tokens = greedy_decode(model, prompt, steps)
    reps = model.layer_representations(torch.cat([prompt, tokens[:-1]])[None])
    start = len(prompt) - 1  # the state that predicts the first new token
    right, confidence = {}, {}
    for exit_layer in exit_layers:
        states = reps[exit_layer, 0, start:]
        for head in heads:
            logits = draft_reader(model, head)(states, exit_layer).float()
            right[exit_layer, head] = (logits.argmax(-1) == tokens).cpu()
            confidence[exit_layer, head] = logits.softmax(-1).amax(-1).cpu()
    return DraftTrace(tokens, right, confidence)


def replay(trace: DraftTrace, plan: DraftPlan, num_layers: int) -> Speculated:
    """The rounds `plan` would run along `trace`'s output: drafted and accepted tokens, passes,
    block and head calls, as `speculative_decode` counts them. Exact for a fixed draft length
    (up to argmax ties between batched and one-position arithmetic); with a stop threshold,
    after a rejected token the draft's confidence is read along the output rather than along
    its own wrong continuation, so the count of rejected drafts is an estimate."""
    right = trace.right[plan.exit_layer, plan.head].tolist()
    confidence = trace.confidence[plan.exit_layer, plan.head].tolist()
    steps = len(right)
    emitted = drafted = accepted = passes = heads = 0
    while emitted < steps:
        count = min(plan.draft_length, steps - emitted - 1)
        proposed = 0
        while proposed < count and confidence[emitted + proposed] >= plan.stop_below:
            proposed += 1
        taken = 0
        while taken < proposed and right[emitted + taken]:
            taken += 1
        heads += proposed + (proposed < count)
        emitted, drafted, accepted, passes = (emitted + taken + 1, drafted + proposed,
                                              accepted + taken, passes + 1)
    return Speculated(trace.tokens, drafted, accepted, passes, drafted * plan.exit_layer,
                      passes * num_layers, heads)


def replay_all(traces: list[DraftTrace], plan: DraftPlan, num_layers: int) -> Speculated:
    """`replay` over several traces, summed: the counts of decoding all their prompts."""
    runs = [replay(t, plan, num_layers) for t in traces]
    return Speculated(torch.cat([r.tokens for r in runs]),
                      *(sum(getattr(r, f) for r in runs) for f in (
                          "drafted", "accepted", "passes", "draft_blocks", "verify_blocks",
                          "draft_heads")))


def relative_head_costs(model: CausalDecoder, heads: tuple[str, ...] = DRAFT_HEADS,
                        calls: int = 50) -> dict[str, float]:
    """Wall-clock time of one call of each draft head (and of the final head, key "full"),
    in units of one block call at one position, measured at batch 1."""
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        state = model.embed(torch.ones(1, 1, dtype=torch.long, device=device))
        hidden = model.pool(state)[:, -1]
        readers = {head: draft_reader(model, head) for head in heads}
        readers["full"] = lambda h, layer: model.classify(h, model.num_layers)

        def seconds(run) -> float:
            run()
            synchronize(device)
            started = time.perf_counter()
            for _ in range(calls):
                run()
            synchronize(device)
            return time.perf_counter() - started

        block = seconds(lambda: model.block(0, state))
        return {name: seconds(lambda read=read: read(hidden, 1)) / block
                for name, read in readers.items()}


def predicted_speedup(counts: Speculated, num_layers: int, head_costs: dict[str, float],
                      head: str) -> float:
    """Full depth's calls per token (L blocks and the final head) over the draft's (its block
    calls, its draft head calls, a final head per pass), in block-call units."""
    full = num_layers + head_costs["full"]
    spent = (counts.draft_blocks + counts.verify_blocks + counts.draft_heads * head_costs[head]
             + counts.passes * head_costs["full"])
    return full * len(counts.tokens) / spent


# --- timing ---------------------------------------------------------------------------------
def time_runners(runners: dict[str, Callable], prompts: list[torch.Tensor], warmup: int,
                 repeats: int) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Each runner's seconds per prompt (median over `repeats`) and its output of each prompt,
    after `warmup` untimed runs of the first prompt. Within a repeat every prompt is run by
    every runner in turn, the order rotating from one prompt and repeat to the next, so that
    no runner always goes first. On CUDA the device is synchronized around each run."""
    device = prompts[0].device
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name](prompts[0])
    times = {name: [[] for _ in prompts] for name in names}
    outputs = {name: [None] * len(prompts) for name in names}
    for repeat in range(max(repeats, 1)):
        for i, prompt in enumerate(prompts):
            shift = (repeat + i) % len(names)
            for name in names[shift:] + names[:shift]:
                synchronize(device)
                started = time.perf_counter()
                outputs[name][i] = runners[name](prompt)
                synchronize(device)
                times[name][i].append(time.perf_counter() - started)
    return ({name: [statistics.median(t) for t in per_prompt]
             for name, per_prompt in times.items()}, outputs)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (all the one value, for one)."""
    if len(values) == 1:
        return (values[0],) * 3
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


@torch.no_grad()
def time_plans(model: CausalDecoder, prompts: list[torch.Tensor], steps: int,
               plans: dict[str, DraftPlan], warmup: int = 1, repeats: int = 3) -> pd.DataFrame:
    """One row per plan: its tokens/s and full depth's on the same prompts at batch 1 (`steps`
    over the median prompt's time), the speed-up (median over prompts of full depth's time over
    the plan's, with its quartiles), the acceptance, tokens per pass, block calls per token and
    whether every output equals full-depth greedy decoding. Full depth and every plan are timed
    in one interleaved loop (`time_runners`). On CUDA the device is synchronized around each
    timed prompt."""
    model.eval()
    device = prompts[0].device
    runners = {"full_depth": lambda p: greedy_decode(model, p, steps)}
    runners.update({name: (lambda p, plan=plan: plan.decode(model, p, steps))
                    for name, plan in plans.items()})
    seconds, outputs = time_runners(runners, prompts, warmup, repeats)
    references = outputs["full_depth"]
    rows = []
    for name, plan in plans.items():
        decoded = outputs[name]
        ratios = [f / t for f, t in zip(seconds["full_depth"], seconds[name])]
        low, speedup, high = _quartiles(ratios)
        drafted, accepted = sum(d.drafted for d in decoded), sum(d.accepted for d in decoded)
        tokens = steps * len(prompts)
        rows.append({
            "plan": name, "exit_layer": plan.exit_layer, "draft_length": plan.draft_length,
            "head": plan.head, "stop_below": plan.stop_below, "prompts": len(prompts),
            "steps": steps, "device": device.type, "threads": torch.get_num_threads(),
            "tokens_per_s_full_depth": steps / statistics.median(seconds["full_depth"]),
            "tokens_per_s_speculative": steps / statistics.median(seconds[name]),
            "wall_speedup": speedup, "wall_speedup_q1": low, "wall_speedup_q3": high,
            "acceptance": accepted / drafted if drafted else float("nan"),
            "tokens_per_pass": tokens / sum(d.passes for d in decoded),
            "block_calls_per_token":
                sum(d.draft_blocks + d.verify_blocks for d in decoded) / tokens,
            "block_calls_full_depth": model.num_layers,
            "equal_to_full_depth": all(torch.equal(d.tokens, r)
                                       for d, r in zip(decoded, references))})
    return pd.DataFrame(rows)


# --- choosing a draft on validation, and the study ------------------------------------------
def replay_grid(model: CausalDecoder, traces: list[DraftTrace], exit_layers: list[int],
                draft_lengths: list[int], stop_thresholds: list[float],
                heads: tuple[str, ...], head_costs: dict[str, float]) -> pd.DataFrame:
    """One row per plan (exit layer, head, draft length, stop threshold; 0 = never stop):
    the replayed acceptance, tokens per pass and predicted speed-up over all traces."""
    rows = []
    for exit_layer in exit_layers:
        for head in heads:
            for length in draft_lengths:
                for stop in [0.0, *stop_thresholds]:
                    total = replay_all(traces, DraftPlan(exit_layer, length, head, stop),
                                       model.num_layers)
                    rows.append({"exit_layer": exit_layer, "head": head,
                                 "draft_length": length, "stop_below": stop,
                                 "acceptance": total.acceptance,
                                 "tokens_per_pass": total.tokens_per_pass,
                                 "predicted_speedup": predicted_speedup(
                                     total, model.num_layers, head_costs, head)})
    return pd.DataFrame(rows)


def _plan(row) -> DraftPlan:
    return DraftPlan(int(row["exit_layer"]), int(row["draft_length"]), str(row["head"]),
                     float(row["stop_below"]))


@torch.no_grad()
def choose_plans(model: CausalDecoder, prompts: list[torch.Tensor], steps: int,
                 exit_layers: list[int], draft_lengths: list[int], stop_thresholds: list[float],
                 heads: tuple[str, ...] = DRAFT_HEADS, warmup: int = 1, repeats: int = 3
                 ) -> tuple[dict[str, DraftPlan], pd.DataFrame]:
    """The fixed-length and the adaptive (confidence-stopped) draft to use, chosen on the given
    (validation) prompts: of each kind, the plan (exit layer, head, draft length, threshold)
    the replay predicts fastest. Both are then timed there (`time_runners`; full depth is the
    same for both, so it is not timed here), which says which kind is faster. Returns
    {"fixed": plan, "adaptive": plan} (an adaptive plan where `stop_thresholds` has one) and
    the replayed grid, the chosen plans' measured tokens/s beside their predicted speed-up."""
    model.eval()
    traces = [trace_drafts(model, p, steps, exit_layers, heads) for p in prompts]
    grid = replay_grid(model, traces, exit_layers, draft_lengths, stop_thresholds, heads,
                       relative_head_costs(model, heads))
    grid["kind"] = ["adaptive" if stop > 0 else "fixed" for stop in grid["stop_below"]]
    best = grid.groupby("kind", sort=False)["predicted_speedup"].idxmax()
    chosen = {kind: _plan(grid.loc[best[kind]]) for kind in ("fixed", "adaptive")
              if kind in best}
    seconds, _ = time_runners({kind: (lambda p, plan=plan: plan.decode(model, p, steps))
                               for kind, plan in chosen.items()}, prompts, warmup, repeats)
    grid["timed_tokens_per_s"] = float("nan")
    for kind, per_prompt in seconds.items():
        grid.loc[best[kind], "timed_tokens_per_s"] = steps / statistics.median(per_prompt)
    return chosen, grid


def speculative_study(model: CausalDecoder, val_prompts: list[torch.Tensor],
                      test_prompts: list[torch.Tensor], steps: int, exit_layers: list[int],
                      draft_lengths: list[int], stop_thresholds: list[float],
                      predictions: torch.Tensor, heads: tuple[str, ...] = DRAFT_HEADS,
                      warmup: int = 1, repeats: int = 3) -> pd.DataFrame:
    """What the study reports of a language model's self-speculative decoding.

    The fixed-length and the adaptive draft chosen on the validation prompts (`choose_plans`,
    each prompt timed once) are timed against full depth on the test prompts (the median of
    `repeats` runs of each): two rows, `kind` "fixed" and "adaptive",
    `chosen` marking the one faster on validation. Then one row per exit layer E (`kind`
    "exit"), the chosen fixed draft's head and length replayed there on the test prompts:
    acceptance and tokens per pass (no timing), beside the fraction of test tokens whose
    layer-E prediction already equals layer L's (`layer_agreement`, from the (L, N) per-layer
    predictions `predictions` of layers 1..L)."""
    if not stop_thresholds or any(not 0 < t <= 1 for t in stop_thresholds):
        raise ValueError(f"stop thresholds are probabilities in (0, 1], at least one (never "
                         f"stopping is the fixed draft's), got {stop_thresholds}")
    # On validation each prompt is timed once: ranking two plans needs less than measuring them.
    chosen, grid = choose_plans(model, val_prompts, steps, exit_layers, draft_lengths,
                                stop_thresholds, heads, warmup, repeats=1)
    timed = grid.dropna(subset=["timed_tokens_per_s"])   # the chosen plans' rows
    faster = timed.loc[timed["timed_tokens_per_s"].idxmax(), "kind"]
    predicted = dict(zip(timed["kind"], timed["predicted_speedup"]))
    timed = time_plans(model, test_prompts, steps, chosen, warmup, repeats)
    timed = timed.rename(columns={"plan": "kind"}).assign(
        chosen=lambda f: f["kind"] == faster,
        val_predicted_speedup=lambda f: f["kind"].map(predicted))

    fixed = chosen["fixed"]
    traces = [trace_drafts(model, p, steps, exit_layers, (fixed.head,)) for p in test_prompts]
    rows = []
    for exit_layer in exit_layers:
        total = replay_all(traces, DraftPlan(exit_layer, fixed.draft_length, fixed.head),
                           model.num_layers)
        rows.append({"kind": "exit", "exit_layer": exit_layer, "head": fixed.head,
                     "draft_length": fixed.draft_length, "stop_below": 0.0,
                     "prompts": len(test_prompts), "steps": steps,
                     "acceptance": total.acceptance,
                     "tokens_per_pass": total.tokens_per_pass,
                     "block_calls_per_token": total.block_calls_per_token,
                     "layer_agreement": (predictions[exit_layer - 1]
                                         == predictions[-1]).double().mean().item(),
                     "chosen": False})
    return pd.concat([timed, pd.DataFrame(rows)], ignore_index=True)
