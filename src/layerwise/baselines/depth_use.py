"""How much of its depth a run uses, read from its layer-wise scores and its dataset's baselines.

The depth-use share of layer l of a run is

    s_l = (score_l - trivial) / (score_L - trivial),

the part of what the run's last layer gains over the trivial predictor (the majority class; a
language model's unigram model) that layer l already has, on the same test samples. The score
is the experiment's metric, or a language model's cross-entropy with its sign turned. A run
whose last layer does not beat the trivial predictor has learned nothing and has no share.

A run's layer-wise scores are read as its analysis reads them (the shared classifier, a
multi-exit run's own heads, a tuned lens' translators), so the share of a model's depth is the
share of the tuned lens fitted on it, where the experiment has one: the shared classifier reads
an untrained intermediate layer badly whatever that layer holds. An arm uses its depth where the
model beats the shallow baseline on every seed and its first layer's share, read so, is at most
a bound (`deep_first_layer_share`) on every seed; otherwise its findings describe a task that a
model without hidden layers, or one layer of it, already solves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.baselines import lower_is_better


def _scores(baselines: dict, name: str, split: str) -> float:
    return baselines["models"][name][split][baselines["metric"]]


def _gain(values, reference: float, metric: str):
    """How far `values` are above `reference`, in the direction of better."""
    return (reference - values) if lower_is_better(metric) else (values - reference)


def depth_use(acc: pd.DataFrame, baselines: dict, split: str = "test") -> pd.DataFrame:
    """Per run and layer 1..L: method, seed, layer, the layer's score (the baselines' metric)
    and its depth-use share (NaN for every layer of a run that has not learned)."""
    metric = baselines["metric"]
    trivial = _scores(baselines, baselines["trivial"], split)
    rows = acc[(acc["split"] == split) & (acc["layer"] >= 1)]
    parts = []
    for (method, seed), run in rows.groupby(["method", "seed"], sort=False):
        run = run.sort_values("layer")
        gain = _gain(run[metric].iloc[-1], trivial, metric)
        share = _gain(run[metric], trivial, metric) / gain if gain > 0 else np.nan
        parts.append(pd.DataFrame({"method": method, "seed": int(seed),
                                   "layer": run["layer"].astype(int), metric: run[metric],
                                   "share": share}))
    return pd.concat(parts, ignore_index=True)


def learning(acc: pd.DataFrame, baselines: dict, split: str = "test") -> pd.DataFrame:
    """Per run: method, seed, its last layer's score, and whether it beats the trivial
    predictor (`learned`) and the shallow baseline (`beats_shallow`; missing without one)."""
    metric = baselines["metric"]
    rows = acc[(acc["split"] == split) & (acc["layer"] == acc["layer"].max())]
    trivial = _scores(baselines, baselines["trivial"], split)
    shallow = (_scores(baselines, baselines["shallow"], split) if baselines["shallow"]
               else None)
    last = rows[metric].to_numpy()
    beats = _gain(last, shallow, metric) > 0 if shallow is not None else [pd.NA] * len(last)
    return pd.DataFrame({"method": rows["method"].to_numpy(),
                         "seed": rows["seed"].astype(int).to_numpy(), metric: last,
                         "learned": _gain(last, trivial, metric) > 0,
                         "beats_shallow": pd.array(beats, dtype="boolean")})


def uses_depth(runs: pd.DataFrame, model: str, reader: str, max_first_layer_share: float
               ) -> dict:
    """The verdict on an arm from its runs (method, seed, beats_shallow, s_1: one row per run,
    as report.tables.depth_use_table writes them): whether its `model` runs beat the shallow
    baseline on every seed and the first layer's share, read by the `reader` runs of the same
    seeds (the tuned lens fitted on the model, or the model itself), is at most
    `max_first_layer_share` on every seed. Returns {"deep", "seeds", "beats_shallow" (how many
    seeds do), "first_layer_share" (per seed, None where the reader has not learned), "model",
    "reader"}."""
    mine = runs[runs["method"] == model].sort_values("seed")
    first = runs[runs["method"] == reader].set_index("seed")["s_1"]
    share = [float(first.get(seed, np.nan)) for seed in mine["seed"]]
    share = [s if np.isfinite(s) else None for s in share]
    beats = mine["beats_shallow"].astype("boolean").fillna(False).astype(bool)
    deep = (len(mine) > 0 and bool(beats.all())
            and all(s is not None and s <= max_first_layer_share for s in share))
    return {"deep": deep, "seeds": len(mine), "beats_shallow": int(beats.sum()),
            "first_layer_share": share, "model": model, "reader": reader}
