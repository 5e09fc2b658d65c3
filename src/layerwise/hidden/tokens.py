"""Token-level analysis of a causal language model in streaming passes (docs/method.md §10).

A language model's hidden states and vocabulary-wide logits of every token are too large to
store (the paper's GPT-2 test split: 16.7 GB of float32 states per run), so everything the
study reads of a run is reduced batch by batch as the tokens leave the model, with memory
independent of the number of tokens but for O(L N) per-token numbers:

- per layer 0..L: the tokens' cross-entropy, perplexity and top-1 next-token accuracy;
- the exits of layers 1..L as `LayerExits` (predictions, each policy's score, the target's loss),
  for the offline exit study and the saturation layers;
- COS and exact linear CKA between layers 1..L (`StreamingSimilarity`: a second pass over the
  same tokens after the means are known);
- a fixed seeded sample of tokens whose states are kept for the per-token figures (COS to the
  last layer, the norm ratio of Fig 11b).

A "sample" is one position with a target (padding is left out).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from layerwise.data import IGNORE
from layerwise.data.prepared import subset_order
from layerwise.devices import autocast
from layerwise.exits.offline import LayerExits
from layerwise.models.base import LayeredClassifier
from layerwise.similarity.streaming import StreamingSimilarity
from layerwise.train.batches import eval_batches


@torch.no_grad()
def token_states(model: LayeredClassifier, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per batch of blocks: the (L+1, n, d) float32 states of its n positions that have a
    target, and their (n,) targets, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    for inputs, targets in eval_batches(x, y, batch_size, device):
        targets = targets.to(device)
        with autocast(device):
            reps = model.layer_representations(inputs)
        keep = targets != IGNORE
        yield reps[:, keep].float(), targets[keep]


@dataclass(frozen=True)
class SplitSummary:
    """What the study keeps of one split of a language-model run."""

    tokens: int
    accuracy: np.ndarray        # (L+1,) top-1 next-token accuracy of layers 0..L
    cross_entropy: np.ndarray   # (L+1,) mean -log p(target), nats
    exits: LayerExits | None    # layers 1..L (None when no policy was asked for)

    @property
    def perplexity(self) -> np.ndarray:
        return np.exp(self.cross_entropy)


def sample_positions(total: int, count: int, seed: int) -> torch.Tensor:
    """Sorted indices of `count` of `total` samples drawn without replacement (all when
    count >= total): the fixed sample of the per-token figures."""
    if count >= total:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:count].sort().values


@torch.no_grad()
def summarize_split(model: LayeredClassifier, x: torch.Tensor, y: torch.Tensor,
                    policies: Sequence[str], batch_size: int,
                    similarity: StreamingSimilarity | None = None,
                    keep: torch.Tensor | None = None
                    ) -> tuple[SplitSummary, torch.Tensor | None]:
    """One pass over a split: its per-layer metrics and (with `policies`) its exits; with
    `similarity`, its first (means) pass over layers 1..L; with `keep` (sorted sample indices),
    the (L+1, len(keep), d) states of those samples."""
    correct = nll_sum = None
    exits, kept, seen = [], [], 0
    for reps, targets in token_states(model, x, y, batch_size):
        with autocast(reps.device):
            logits = model.layer_exit_logits(reps).float()
        # exits are at layers 1..L (a patience run starts at layer 1); layer 0 is only scored
        batch = LayerExits.from_logits(logits[1:], targets, policies, nll=True)
        embedding = LayerExits.from_logits(logits[:1], targets, (), nll=True)
        predictions = torch.cat([embedding.predictions, batch.predictions])
        right = (predictions == targets).sum(1, dtype=torch.float64)
        loss = torch.cat([embedding.nll, batch.nll]).sum(1, dtype=torch.float64)
        correct = right if correct is None else correct + right
        nll_sum = loss if nll_sum is None else nll_sum + loss
        if policies:
            exits.append(LayerExits(batch.predictions.cpu(), targets.cpu(),
                                    {p: s.cpu() for p, s in batch.scores.items()},
                                    batch.nll.cpu()))
        shown = model.exit_representations(reps)  # a tuned lens' translated states
        if similarity is not None:
            similarity.update_means(shown[1:])
        if keep is not None:
            inside = keep[(keep >= seen) & (keep < seen + len(targets))] - seen
            kept.append(shown[:, inside.to(reps.device)].cpu())
        seen += len(targets)
    if seen == 0:
        raise ValueError("the split has no position with a target")
    summary = SplitSummary(seen, (correct / seen).cpu().numpy(), (nll_sum / seen).cpu().numpy(),
                           LayerExits.concat(exits) if exits else None)
    return summary, (torch.cat(kept, dim=1) if keep is not None else None)


@torch.no_grad()
def finish_similarity(model: LayeredClassifier, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int, similarity: StreamingSimilarity) -> StreamingSimilarity:
    """The second (centered) pass of `similarity` over the tokens its first pass saw."""
    similarity.finish_means()
    for reps, _ in token_states(model, x, y, batch_size):
        similarity.update(model.exit_representations(reps)[1:])
    return similarity


def train_subset(x: torch.Tensor, y: torch.Tensor, tokens: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The fewest blocks, in the fixed subset order, that hold `tokens` next-token targets (all
    blocks when None): the training split gets its metrics only, on a sample as a classifier's."""
    order = subset_order(len(y))
    held = (y[order] != IGNORE).sum(dim=1).cumsum(0)
    if tokens is None or tokens >= int(held[-1]):
        return x, y
    blocks = order[:int(torch.searchsorted(held, tokens)) + 1].sort().values
    return x[blocks], y[blocks]
