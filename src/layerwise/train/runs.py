"""Runs: what a run is called and the model it trains.

A run is a training method, or a depth-study run (paper Fig 5): a standard model with fewer
blocks, named after its depth so that it lives beside the methods in every path
(runs/<experiment>/standard_d6/seed0/...). The plan, the report and the scripts read run names
here. Importing this module does not import torch: the workflow's plan reads the names.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from layerwise.models import build_model
from layerwise.train.methods import method

if TYPE_CHECKING:
    from layerwise.models.base import LayeredClassifier

_DEPTH_RUN = re.compile(r"^standard_d([0-9]+)$")


def depth_run_name(depth: int) -> str:
    """Name of the depth-study run of a standard model with `depth` blocks."""
    return f"standard_d{depth}"


def split_run_name(name: str) -> tuple[str, int | None]:
    """(training method, depth override or None) of a run name: standard_d6 -> (standard, 6)."""
    match = _DEPTH_RUN.match(name)
    return ("standard", int(match.group(1))) if match else (name, None)


def run_names(exp: dict) -> list[str]:
    """Every run name of a validated experiment: its methods, then its depth-study runs."""
    return list(exp["methods"]) + [depth_run_name(d) for d in exp["depth_study"]]


def build_run_model(run_spec: dict, data_info: dict) -> LayeredClassifier:
    """The model of one run: a method that trains exit heads gets them, a tuned lens its
    translators, so its weights (saved with them) load back into the model the run spec
    describes."""
    model = build_model(run_spec["model"], data_info)
    record = method(run_spec["method"])
    if record.exit_heads:
        model.add_exit_heads(data_info["num_classes"])
    if record.lens:
        model.add_lens()
    return model


def load_run_model(run_spec: dict, data_info: dict, weights: str) -> LayeredClassifier:
    """The model of one run with its trained weights, which must carry the run spec's hash
    (weights of another spec are an error, not a silent mismatch)."""
    from layerwise.io import load_tensors
    from layerwise.provenance import config_hash

    model = build_run_model(run_spec, data_info)
    model.load_state_dict(load_tensors(weights, metadata={"spec_hash": config_hash(run_spec)})[0])
    return model
