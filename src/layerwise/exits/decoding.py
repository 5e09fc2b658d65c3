"""Real early-exit greedy decoding of a causal language model, and its speed against full depth.

Decoding runs one sequence (batch 1) token by token with a key/value cache. Each new position
goes up block by block; after block l < L the exit at l (`model.exit_logits`: the shared head,
or the layer's own head in a multi-exit model) is scored by the online rule of an exit policy
(`layerwise.exits.policies`), and an exit predicts the next token from layer l. The deeper
layers still owe later tokens this position's keys and values: as in CALM (Schuster et al.
2022), the exited state is copied up to the skipped layers and only their key/value projection
is computed from it (`fill_cache`), not their attention or MLP.

The model is a `CausalDecoder` (`layerwise.models.base`), whose `embed` and `block` take a
cache and which has `new_cache` and `fill_cache`. The prompt but its last token is encoded at
full depth; the last prompt token is then decoded like every generated one, so that each
generated token has an exit decision.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from layerwise.exits.offline import speedup
from layerwise.exits.online import time_pass
from layerwise.exits.policies import OnlineRule, lookup
from layerwise.models.base import CausalDecoder

if TYPE_CHECKING:
    from transformers.cache_utils import Cache


@dataclass(frozen=True)
class Decoded:
    """Generated tokens, the layer each was predicted from, and the work it took: blocks run
    fully, skipped layers that only projected keys and values, and exits scored below layer L
    (the full-depth decoder runs L blocks and no such exit per token)."""

    tokens: torch.Tensor   # (steps,)
    layers: torch.Tensor   # (steps,) exit layer in 1..L
    blocks: int
    kv_only: int
    exits_scored: int


def prefill(model: CausalDecoder, prompt: torch.Tensor) -> tuple[Cache, torch.Tensor]:
    """A cache holding the full-depth keys and values of a (T,) prompt but its last token,
    and that token as a (1, 1) batch: what `exit_step` starts from."""
    if prompt.dim() != 1 or len(prompt) == 0:
        raise ValueError(f"a prompt is one non-empty sequence of token ids, got shape "
                         f"{tuple(prompt.shape)}")
    cache = model.new_cache()
    if len(prompt) > 1:
        state = model.embed(prompt[None, :-1], cache)
        for index in range(model.num_layers):
            state = model.block(index, state, cache)
    return cache, prompt[None, -1:]


def exit_step(model: CausalDecoder, token: torch.Tensor, cache: Cache, rule: OnlineRule
              ) -> tuple[torch.Tensor, int]:
    """The (1, 1) next token after a (1, 1) `token` and the layer it exits at, decided by a
    fresh `rule`; every layer's cache gains this position."""
    state, last = model.embed(token, cache), model.num_layers
    for layer in range(1, last + 1):
        state = model.block(layer - 1, state, cache)
        logits = model.exit_logits(model.pool(state)[:, -1], layer)
        if layer < last and bool(rule.decide(logits)):
            for index in range(layer, last):
                model.fill_cache(index, state, cache)
            break
    return logits.argmax(-1, keepdim=True), layer


@torch.inference_mode()
def early_exit_decode(model: CausalDecoder, prompt: torch.Tensor, steps: int, policy: str,
                      threshold: float) -> Decoded:
    """Greedy decoding of `steps` tokens after a (T,) prompt, every token exiting where the
    policy's online rule first passes at `threshold` (at layer L at the latest)."""
    cache, token = prefill(model, prompt)
    policy_record, last = lookup(policy), model.num_layers
    tokens, layers = [], []
    for _ in range(steps):
        token, layer = exit_step(model, token, cache, policy_record.rule(threshold))
        tokens.append(token)
        layers.append(layer)
    exit_layers = torch.tensor(layers, dtype=torch.long)
    scored = exit_layers.clamp(max=last - 1)
    return Decoded(torch.cat(tokens, dim=1)[0], exit_layers, blocks=int(exit_layers.sum()),
                   kv_only=int((last - exit_layers).sum()), exits_scored=int(scored.sum()))


@torch.inference_mode()
def greedy_decode(model: CausalDecoder, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps,) tokens of plain greedy decoding through all L blocks, the reference and the
    timing baseline of early exit (no exit is scored, nothing waits on the host)."""
    cache, token = prefill(model, prompt)
    last, tokens = model.num_layers, []
    for _ in range(steps):
        state = model.embed(token, cache)
        for index in range(last):
            state = model.block(index, state, cache)
        token = model.classify(model.pool(state)[:, -1], last).argmax(-1, keepdim=True)
        tokens.append(token)
    return torch.cat(tokens, dim=1)[0]


def agreement(tokens: list[torch.Tensor], reference: list[torch.Tensor]) -> tuple[float, float]:
    """(prefix, overall) agreement of generated sequences with reference ones of equal length:
    the fraction of positions before each sequence's first divergence, and the fraction of
    positions equal anywhere. After a divergence the two continue different texts, so only the
    prefix compares like with like."""
    prefix = equal = total = 0
    for ours, theirs in zip(tokens, reference, strict=True):
        same = (ours.cpu() == theirs.cpu()).long()
        prefix += int(same.cumprod(0).sum())
        equal += int(same.sum())
        total += len(same)
    return prefix / total, equal / total


@torch.no_grad()
def time_decoding(model: CausalDecoder, prompts: list[torch.Tensor], steps: int,
                  policy: str, threshold: float, warmup: int = 1, repeats: int = 3) -> dict:
    """Tokens per second of early-exit and full-depth greedy decoding of `steps` tokens after
    each prompt at batch 1 (whole runs, the prompt's encoding included), with the exit pattern
    and the agreement of the two outputs.

    Both variants run once per repeat, interleaved so that they share the machine's load, after
    `warmup` untimed rounds; the median round counts. On CUDA the device is synchronized
    before the clock is read.
    """
    model.eval()
    device = prompts[0].device
    runners = {"full_depth": lambda p: greedy_decode(model, p, steps),
               "early_exit": lambda p: early_exit_decode(model, p, steps, policy, threshold)}
    for _ in range(warmup):
        for run in runners.values():
            time_pass(run, prompts, device)
    rounds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            rounds[name].append(time_pass(run, prompts, device))
    seconds = {name: statistics.median(values) for name, values in rounds.items()}

    decoded = [early_exit_decode(model, p, steps, policy, threshold) for p in prompts]
    reference = [greedy_decode(model, p, steps) for p in prompts]
    layers = torch.cat([d.layers for d in decoded])
    prefix, overall = agreement([d.tokens for d in decoded], reference)
    tokens = steps * len(prompts)
    return {"policy": policy, "threshold": threshold, "prompts": len(prompts),
            "tokens": tokens, "device": device.type, "threads": torch.get_num_threads(),
            "tokens_per_s_full_depth": tokens / seconds["full_depth"],
            "tokens_per_s_early_exit": tokens / seconds["early_exit"],
            "wall_speedup": seconds["full_depth"] / seconds["early_exit"],
            "mean_exit_layer": layers.double().mean().item(),
            "speedup": speedup(layers, model.num_layers),
            "blocks_per_token": sum(d.blocks for d in decoded) / tokens,
            "kv_only_per_token": sum(d.kv_only for d in decoded) / tokens,
            "exits_scored_per_token": sum(d.exits_scored for d in decoded) / tokens,
            "agreement_prefix": prefix, "agreement": overall}
