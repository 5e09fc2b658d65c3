"""Fitting a tuned lens (Belrose et al. 2023, arXiv:2303.08112) on a frozen model.

The lens (`LayeredClassifier.add_lens`) gives layers 1..L-1 an affine translator each; its exit
at layer l is the model's whole output path on the translated state. Fitting changes nothing
but the translators: every other parameter is frozen, and the loss is, summed over layers
1..L-1 and averaged over samples (a language model's positions), KL(p_L || p_l) from the final
layer's prediction p_L to the lens' prediction p_l at layer l, the tuned lens' objective (it
needs no labels: the lens learns to read a layer the way the model reads its last one).

Two entry points, for the two ways an arm holds its training data:
- `fit_lens_on_states`: stored representations (L+1, N, d) of the training split (the
  classifier arms write them). Only the head path runs, never the backbone.
- `fit_lens_on_batches`: a language model, whose training blocks stream through the frozen
  model batch by batch; positions without a target (IGNORE) are dropped.

Both read only what they are given (the caller passes the training split) and are deterministic
given torch's seed (minibatches are drawn from torch's global generator).

The optimizer. The tuned lens trains with SGD, Nesterov momentum 0.9, lr 1.0 (in its own
parametrisation, which is torch's lr 0.1 with momentum 0.9), weight decay 1e-3 toward the
identity and a linear decay to zero over 250 steps of 2^18 tokens, for GPT-scale models (width
768 and up, vocabularies of tens of thousands). On this project's models (width 48-64, 10
classes or a 258-token vocabulary) that recipe is stable (no divergence at torch's lr 0.1 on any
arm, nor at 1.0 on vit_digits and the GPT-2) but slow: after its 250 steps the summed KL on the
validation split of the standard runs was 0.44 / 0.54 (vit_digits seeds 0 / 1, 1,000 stored
training states, full batch), 0.095 (bert_rotten_tomatoes seed 0) and 0.60 (the 12-layer GPT-2
on running_text, batches of 8 x 64 tokens), against 0.29 / 0.34, 0.034 and 0.56 for Adam at lr
1e-2 with the same 250 steps and linear decay, in about the same time (Adam at 1e-3 and 3e-3
ended higher, at 3e-2 no lower). A baseline should be fit as well as its budget allows, so the
lens is fit with Adam (torch's default betas), lr `LR` = 1e-2 decayed linearly to zero over the
fit, as the tuned lens decays its rate, for `STEPS` = 250 steps, the tuned lens' count. Settings
were compared on the validation split, never on test. No weight decay: the tuned lens decays its
translators toward the identity (it stores A - I), whereas decay on A itself would pull toward
zero, away from the logit lens the fit starts from; over 250 steps the train-validation gap
stayed small (vit_digits seed 0: 0.23 train, 0.29 validation).
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from layerwise.data import IGNORE
from layerwise.models.base import LayeredClassifier

STEPS = 250  # the tuned lens' number of steps
LR = 1e-2    # Adam's rate, decayed linearly to zero (see above)


def lens_divergences(model: LayeredClassifier, reps: torch.Tensor) -> torch.Tensor:
    """(L-1,): for each layer l in 1..L-1, KL(p_L || p_l) averaged over the samples of `reps`
    (L+1, N, d), where p_l is the softmax of the exit logits at layer l (through the lens, if
    the model has one). Differentiable in the lens."""
    last = model.num_layers
    with torch.no_grad():  # the target is the frozen model's own prediction
        target = F.log_softmax(model.exit_logits(reps[last], last).float(), dim=-1)
    divergences = []
    for layer in range(1, last):
        log_probs = F.log_softmax(model.exit_logits(reps[layer], layer).float(), dim=-1)
        divergences.append(F.kl_div(log_probs, target, log_target=True, reduction="batchmean"))
    return torch.stack(divergences)


def fit_lens_on_states(model: LayeredClassifier, reps: torch.Tensor, steps: int, lr: float,
                       batch_size: int | None = None, log_every: int = 10) -> list[dict]:
    """Fit `model.lens` on stored representations `reps` (L+1, N, d) of the training split,
    full-batch (`batch_size` None) or on minibatches of `batch_size` samples, each epoch a fresh
    permutation. Runs only the head path (translators, final norm, head). Returns the log of
    `fit`."""
    if reps.dim() != 3 or len(reps) != model.num_layers + 1:
        raise ValueError(f"expected representations (L+1, N, d) with L = {model.num_layers}, "
                         f"got {tuple(reps.shape)}")
    like = next(model.parameters())
    reps = reps.to(device=like.device, dtype=like.dtype)
    return fit(model, _state_batches(reps, batch_size), steps, lr, log_every)


def fit_lens_on_batches(model: LayeredClassifier, batches: Iterable, steps: int, lr: float,
                        log_every: int = 10) -> list[dict]:
    """Fit `model.lens` on (inputs, targets) batches of training data streamed through the
    frozen model, one batch a step; positions whose target is IGNORE are left out. `batches`
    is read again from the start when it runs out (a list, or any object that iterates anew),
    so a one-pass iterator must hold `steps` batches. Returns the log of `fit`."""
    return fit(model, _streamed_states(model, batches), steps, lr, log_every)


def fit(model: LayeredClassifier, states: Iterator[torch.Tensor], steps: int, lr: float,
        log_every: int = 10) -> list[dict]:
    """Fit `model.lens` for `steps` steps, one batch of representations (L+1, n, d) from
    `states` a step, with every other parameter frozen and the model in eval mode (both
    restored afterwards). Returns the log: {step, kl, seconds} every `log_every` steps and at
    the last, kl being the step's loss (summed over layers) before its update and seconds the
    time since the start."""
    if model.lens is None:
        raise ValueError("the model has no lens: call add_lens() first")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    trainable = {id(p) for p in model.lens.parameters()}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    for p, _ in flags:
        # Frozen, not only left out of the optimizer: no gradient is computed for the head or
        # the final norm, which the loss runs through.
        p.requires_grad_(id(p) in trainable)
    model.eval()  # the lens reads the model as it predicts (no dropout)
    optimizer, schedule = make_optimizer(list(model.lens.parameters()), lr, steps)
    log, start = [], time.perf_counter()
    try:
        for step in range(steps):
            loss = lens_divergences(model, next(states)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % log_every == 0 or step == steps - 1:
                log.append({"step": step, "kl": loss.item(),
                            "seconds": time.perf_counter() - start})
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    return log


def make_optimizer(params: list[torch.nn.Parameter], lr: float, steps: int):
    """Adam at `lr`, and the schedule that decays it linearly to zero over `steps` steps (the
    module's docstring says why)."""
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    return optimizer, schedule


def _state_batches(reps: torch.Tensor, batch_size: int | None) -> Iterator[torch.Tensor]:
    """The whole of `reps` every step, or its minibatches, epoch after epoch."""
    while True:
        if batch_size is None:
            yield reps
            continue
        for rows in torch.randperm(reps.shape[1]).split(batch_size):
            yield reps[:, rows.to(reps.device)]


def _streamed_states(model: LayeredClassifier, batches: Iterable) -> Iterator[torch.Tensor]:
    """Every layer's representation (L+1, n, d) of the positions with a target, batch after
    batch of `batches`, pass after pass. The backbone runs without autograd: it is only read."""
    device = next(model.parameters()).device
    while True:
        empty = True
        for inputs, targets in batches:
            empty = False
            with torch.no_grad():
                reps = model.layer_representations(inputs.to(device))
            yield reps[:, targets.to(device) != IGNORE]
        if empty:
            raise ValueError("the batches ran out before the fit's last step: pass a list (or "
                             "another iterable that iterates anew), or fewer steps")
