"""Text generated with the exit fixed at layer k, and its diversity and coherence (the paper's
Fig 9 c, d).

For a causal language model fine-tuned by each method, every generated token is predicted by the
exit at layer k (`model.exit_logits`: the layer's own head in a multi-exit model, else the
shared head), sampled with nucleus sampling (top-p) after a prefix of test text. Two numbers per
k describe the continuations:

- diversity, as SimCTG computes it (yxuansu/SimCTG, simctg/evaluation.py): words are the text
  split on whitespace; rep-n = 1 - unique n-grams / all n-grams for n = 2, 3, 4 (unique per text,
  both summed over texts), diversity = prod_n (1 - rep-n);
- coherence, as the paper defines it: the mean cosine similarity of the SimCSE embeddings
  (princeton-nlp/sup-simcse-bert-base-uncased) of each prefix and its continuation. Where no
  encoder can be loaded (offline, the default study), a model-free substitute stands in and is
  labelled as one: the full-depth model's mean cross-entropy of the continuation given the prefix
  (nats per token, lower is more coherent). One judge scores every method's continuations of
  a seed (the study passes the pretrained model, else the standard run), so that methods are
  compared alike.

Since every position exits at layer k, blocks above k are never needed, and only blocks
0..k-1 run, with a key/value cache. The first author's code runs every layer and reads layer k's
logits: the same tokens for the same random draws, at the cost of the full depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from layerwise.models.base import CausalDecoder, LayeredClassifier

SIMCSE_MODEL = "princeton-nlp/sup-simcse-bert-base-uncased"
SIMCSE_MEASURE = "simcse_cosine"
SUBSTITUTE_MEASURE = "full_depth_ce_nats"
NGRAMS = (2, 3, 4)


# --- nucleus sampling at a fixed exit ------------------------------------------------------------
def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """The nucleus distribution of `logits` (over the last dimension): the smallest set of most
    probable tokens whose probability reaches `top_p` (always at least the most probable one),
    renormalised; zero elsewhere. top_p = 1 is the full softmax, untouched, so that rounding in
    the cumulative sum cannot drop its tail."""
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    probs = logits.softmax(-1)
    if top_p == 1:
        return probs
    ranked, order = probs.sort(dim=-1, descending=True, stable=True)
    # A token joins while the more probable ones have not yet reached p; the first always does.
    before = F.pad(ranked.cumsum(-1)[..., :-1], (1, 0))
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, before < top_p)
    kept = probs * keep
    return kept / kept.sum(-1, keepdim=True)


def sample_next(logits: torch.Tensor, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 1) tokens drawn from the nucleus of (B, V) logits. The draw is over the vocabulary in
    its own order, so at top_p = 1 it is torch.multinomial on the softmax itself."""
    return torch.multinomial(nucleus(logits, top_p), 1, generator=generator)


@torch.inference_mode()
def generate_at_exit(model: CausalDecoder, prefix: torch.Tensor, new_tokens: int,
                     exit_layer: int, top_p: float,
                     generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """(new_tokens,) tokens sampled after a (T,) prefix, each predicted by the exit at
    `exit_layer` (1..L) with nucleus sampling; deterministic given `generator`'s state. A (B, T)
    batch of prefixes of one length takes one generator per row and gives (B, new_tokens):
    row i draws from generator i alone, so it samples what prefix i alone would (up to the
    rounding of a batched product).

    The model is a `CausalDecoder`, whose `embed` and `block` take a cache (`new_cache`). Only
    blocks 0..k-1 run: the prefix once, then each new token, its keys and values appended to
    the cache of those k blocks."""
    single = prefix.dim() == 1
    fed = prefix[None] if single else prefix
    generators = [generator] if isinstance(generator, torch.Generator) else list(generator)
    if fed.dim() != 2 or fed.shape[1] == 0 or len(generators) != len(fed):
        raise ValueError(f"a prefix is one non-empty sequence of token ids, or a batch of them "
                         f"with one generator each; got shape {tuple(prefix.shape)} and "
                         f"{len(generators)} generator(s)")
    if not 1 <= exit_layer <= model.num_layers:
        raise ValueError(f"exit_layer must be in 1..{model.num_layers}, got {exit_layer}")
    cache, tokens = model.new_cache(), []
    for _ in range(new_tokens):
        state = model.embed(fed, cache)
        for index in range(exit_layer):
            state = model.block(index, state, cache)
        logits = model.exit_logits(model.pool(state)[:, -1], exit_layer)
        fed = torch.cat([sample_next(row[None], top_p, g)
                         for row, g in zip(logits, generators)])
        tokens.append(fed)
    sampled = torch.cat(tokens, dim=1) if tokens else fed.new_empty(len(fed), 0)
    return sampled[0] if single else sampled


# --- diversity -----------------------------------------------------------------------------------
def ngram_counts(words: Sequence[str], n: int, drop_last: bool = True) -> tuple[int, int]:
    """(unique, total) n-grams of one text's words. With `drop_last`, the last n-gram is not
    counted, as SimCTG's loop stops one window early."""
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if drop_last:
        grams = grams[:-1]
    return len(set(grams)), len(grams)


def diversity(texts: Iterable[str], drop_last: bool = True) -> dict[str, float]:
    """rep_2, rep_3, rep_4 and diversity of `texts`, as fractions (SimCTG reports rep-n in
    percent, rounded to 2 decimals, and multiplies the rounded values; here nothing is rounded).

    `drop_last=True` (the default) reproduces SimCTG's count faithfully, off-by-one included:
    its loop leaves out each text's last n-gram. The paper's numbers were computed with SimCTG's
    function, so the default compares with them; `drop_last=False` counts every n-gram. A rep-n
    with no n-gram to count (every text shorter than n + 1 words, or n words when counting all)
    is NaN, and so is the diversity."""
    split = [text.split() for text in texts]
    result, product = {}, 1.0
    for n in NGRAMS:
        counts = [ngram_counts(words, n, drop_last) for words in split]
        unique, total = sum(u for u, _ in counts), sum(t for _, t in counts)
        rep = 1 - unique / total if total else math.nan
        result[f"rep_{n}"] = rep
        product *= 1 - rep
    result["diversity"] = product
    return result


# --- coherence -----------------------------------------------------------------------------------
class SimCSE:
    """A SimCSE sentence encoder from a transformers name or local path.

    The embedding is the one SimCSE's own tool (princeton-nlp/SimCSE, simcse/tool.py) uses for a
    supervised model: `pooler_output`, BERT's pooler (dense + tanh, into which the supervised
    checkpoints fold their training MLP) over [CLS]; the tool keeps [CLS] before the pooler only
    for unsupervised models. Texts are encoded as the tool does: padded batches, truncated at
    128 tokens."""

    def __init__(self, name_or_path: str | Path = SIMCSE_MODEL, device: str | None = None,
                 max_length: int = 128, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = AutoModel.from_pretrained(str(name_or_path)).to(self.device).eval()
        self.max_length, self.batch_size = max_length, batch_size

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, d) embeddings of `texts`."""
        embeddings = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                    truncation=True, max_length=self.max_length,
                                    return_tensors="pt").to(self.device)
            embeddings.append(self.model(**inputs).pooler_output.cpu())
        return torch.cat(embeddings)

    def coherence(self, prefixes: Sequence[str], continuations: Sequence[str]) -> float:
        """The mean over pairs of the cosine similarity of a prefix and its continuation."""
        if len(prefixes) != len(continuations):
            raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
        cosines = F.cosine_similarity(self.encode(prefixes), self.encode(continuations), dim=-1)
        return cosines.mean().item()


@torch.inference_mode()
def continuation_cross_entropy(model: LayeredClassifier, prefix: torch.Tensor,
                               continuation: torch.Tensor) -> float:
    """The full-depth model's mean cross-entropy (nats per token) of a (C,) continuation given a
    (T,) prefix: the model's own head at layer L predicts each continuation token from the
    tokens before it."""
    if len(prefix) == 0 or len(continuation) == 0:
        raise ValueError("the prefix and the continuation must each hold a token")
    logits = model(torch.cat([prefix, continuation])[None])[0]  # (T + C, V)
    return F.cross_entropy(logits[len(prefix) - 1:-1], continuation).item()


def measure_coherence(judge: LayeredClassifier, prefixes: Sequence[torch.Tensor],
                      continuations: Sequence[torch.Tensor], decode: Callable[[list[int]], str],
                      encoder: SimCSE | None = None) -> tuple[str, float]:
    """(measure, value): the SimCSE coherence of the decoded texts when an `encoder` is given,
    else the substitute, the `judge` model's full-depth cross-entropy averaged over the
    pairs."""
    if encoder is not None:
        texts = [[decode(ids.tolist()) for ids in part] for part in (prefixes, continuations)]
        return SIMCSE_MEASURE, encoder.coherence(*texts)
    values = [continuation_cross_entropy(judge, p, c)
              for p, c in zip(prefixes, continuations, strict=True)]
    return SUBSTITUTE_MEASURE, sum(values) / len(values)


# --- the figure's table --------------------------------------------------------------------------
def generation_frame(model: CausalDecoder, prefixes: Sequence[torch.Tensor],
                     decode: Callable[[list[int]], str], exit_layers: Iterable[int],
                     new_tokens: int, top_p: float, seed: int,
                     coherence: SimCSE | str | Path | None = None,
                     judge: LayeredClassifier | None = None) -> pd.DataFrame:
    """One row per exit layer k: rep_2..4 and diversity of the continuations of all prefixes
    generated at k, their coherence and the `coherence_measure` it is (SimCSE's cosine when
    `coherence`, an encoder or its name/path, is given, else the full-depth cross-entropy under
    `judge`, by default `model` itself: one judge for every method compares their texts
    alike).

    `decode` turns a list of token ids into text (e.g. a tokenizers.Tokenizer's `decode`). The
    generator of prefix i is seeded with seed + i for every k, so that layers and methods run on
    the same random draws."""
    encoder = coherence if coherence is None or isinstance(coherence, SimCSE) \
        else SimCSE(coherence)
    model.eval()
    rows = []
    # Prefixes of one length are sampled as one batch: a third of the time of one by one.
    batches: dict[int, list[int]] = {}
    for i, prefix in enumerate(prefixes):
        batches.setdefault(len(prefix), []).append(i)
    for layer in exit_layers:
        continuations = [None] * len(prefixes)
        for members in batches.values():
            sampled = generate_at_exit(
                model, torch.stack([prefixes[i] for i in members]), new_tokens, layer, top_p,
                [torch.Generator(prefixes[i].device).manual_seed(seed + i) for i in members])
            for i, tokens in zip(members, sampled):
                continuations[i] = tokens
        scores = diversity(decode(ids.tolist()) for ids in continuations)
        measure, value = measure_coherence(judge or model, prefixes, continuations, decode,
                                           encoder)
        rows.append({"exit_layer": layer, **scores, "coherence": value,
                     "coherence_measure": measure, "prefixes": len(prefixes),
                     "new_tokens": new_tokens, "top_p": top_p, "seed": seed})
    return pd.DataFrame(rows)
