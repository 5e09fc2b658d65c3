"""Everything the study reads of one classification run, from its model in one process
(loading the model costs more than the work): every layer's representation and exit logits of
each split (the shared head, or each layer's own in a multi-exit model), written as hidden-state
files; the layer-wise accuracy and the similarity between layers; and, for a run of the
early-exit study (its spec has `exits`), the threshold sweep on the exit logits, each policy's
operating point (chosen on validation, reported on test), exit counts per layer, every test
sample's saturation layer, and the wall-clock time of real early exit at each operating point
against full-depth inference. scripts/analyze_run.py is its command line.

`outputs` maps each file's name (a split's hidden states, an analysis part, an exit part) to
its path.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from layerwise.data.prepared import SPLITS, load_split, subset_order
from layerwise.exits import offline
from layerwise.exits.offline import LayerExits
from layerwise.exits.online import flop_profile, time_operating_points
from layerwise.hidden.extract import predict_layers
from layerwise.hidden.metrics import LAYER_METRICS, layer_accuracy
from layerwise.io import save_tensors, write_csv
from layerwise.models.base import LayeredClassifier
from layerwise.provenance import config_hash
from layerwise.similarity.measures import (cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, similarity_frame)
from layerwise.train.batches import take


def analyze_classifier(model: LayeredClassifier, spec: dict, data: str,
                       outputs: Mapping[str, str], device: torch.device, threads: int = 1
                       ) -> None:
    """The analysis `spec` asks of a run whose model (on `device`) is loaded, on the prepared
    dataset in `data` (a streamed one read by threads - 1 loader workers)."""
    hidden, test_inputs = extract(model, spec, data, outputs, threads)
    layerwise_analysis(hidden, spec, outputs)
    if spec.get("exits") is not None:
        model.eval()
        early_exit(model, hidden, test_inputs, spec["exits"], outputs, device)


def extract(model: LayeredClassifier, spec: dict, data: str, outputs: Mapping[str, str],
            threads: int) -> tuple[dict[str, dict], torch.Tensor]:
    """Each split's representations, exit logits and labels, also written to its file, and the
    test split's inputs (what real early exit is timed on)."""
    hidden, limit, spec_hash = {}, spec["train_samples"], config_hash(spec["run"])
    for split in SPLITS:
        x, y, _ = load_split(data, split)
        if split == "train" and limit and limit < len(y):
            subset = subset_order(len(y))[:limit].sort().values
            x, y = take(x, subset), y[subset]
        reps, logits, targets = predict_layers(model, x, y, workers=max(0, threads - 1))
        hidden[split] = {"representations": reps, "logits": logits, "labels": targets}
        save_tensors(outputs[split], hidden[split], {"spec_hash": spec_hash, "split": split})
    return hidden, x


def layerwise_analysis(hidden: dict[str, dict], spec: dict, outputs: Mapping[str, str]) -> None:
    """Layer-wise accuracy (shared head) of every split and the similarity between layers of
    the similarity split."""
    rows, metric = [], spec["metric"]
    for split in SPLITS:
        logits, labels = hidden[split]["logits"], hidden[split]["labels"]
        scores = {"accuracy": layer_accuracy(logits, labels),
                  metric: LAYER_METRICS[metric](logits, labels)}
        for layer in range(len(logits)):
            rows.append({"split": split, "layer": layer,
                         **{name: float(values[layer]) for name, values in scores.items()}})
    reps = hidden[spec["similarity_split"]]["representations"]
    similarity = similarity_frame(reps, tuple(spec["cka_estimators"]), spec["rbf_threshold"],
                                  spec["cka_batch_size"])
    write_csv(outputs["layer_accuracy"], pd.DataFrame(rows))
    write_csv(outputs["similarity"], similarity)
    write_csv(outputs["cos_per_sample"], cos_to_last_frame(reps))
    write_csv(outputs["agreement"], cos_cka_agreement(similarity))
    write_csv(outputs["norm_ratio"], norm_ratio_frame(reps))


def early_exit(model: LayeredClassifier, hidden: dict[str, dict], test_inputs: torch.Tensor,
               exits: dict, outputs: Mapping[str, str], device: torch.device) -> None:
    """The early-exit sweep and operating points on the stored exit logits, saturation, and
    real early exit timed against full depth."""
    policies, timing = exits["policies"], exits["timing"]
    val, test = (LayerExits.from_logits(hidden[split]["logits"][1:], hidden[split]["labels"],
                                        policies)  # exits are at layers 1..L
                 for split in ("val", "test"))
    flops = flop_profile(model, test_inputs[:1].to(device))
    study = offline.evaluate_policies(policies, val, test, exits["max_accuracy_drop"],
                                      exits["sweep_points"], flops)
    timed = time_operating_points(model, test_inputs[:timing["samples"]].to(device),
                                  study.exits(), timing["batch_sizes"], timing["warmup"],
                                  timing["repeats"])
    study.write(outputs["sweep"], outputs["operating_points"], outputs["exit_counts"],
                outputs["saturation"])
    write_csv(outputs["timing"], timed)
