"""Every figure the default study draws is legible, and the one kind it does not draw (a
two-tower model's image_text, from the paper config's CLIP experiment): drawn from small
constructed inputs shaped like the study's (its experiments, methods, layers, seeds, paper
curves and baselines, with the titles and labels its plan asks for), no two texts overlap,
every text lies inside the figure, and every legend is smaller than the panel it belongs to
(one under all panels, smaller than the largest)."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.transforms import Bbox

from layerwise.exits.policies import POLICIES
from layerwise.report.figure_kinds import FIGURES, figure_parser
from layerwise.similarity.measures import MEASURES
from layerwise.study.config import load_config_file, validate_config
from layerwise.study.plan import StudyPlan
from layerwise.train.runs import run_names

ROOT = Path(__file__).resolve().parents[1]
# Boxes may share this much (pixels at 100 dpi) before they count as overlapping: the extents
# of texts that only touch differ by rounding.
TOLERANCE = 0.5


# --- what is checked -------------------------------------------------------------------------
def _drawn_tick_labels(ax, axis) -> list:
    """The tick labels the axis draws: non-empty, visible, at a tick inside the view."""
    lo, hi = sorted(axis.get_view_interval())
    labels = []
    for minor in (False, True):
        locs = axis.get_minorticklocs() if minor else axis.get_majorticklocs()
        ticks = axis.get_minor_ticks(len(locs)) if minor else axis.get_major_ticks(len(locs))
        for loc, tick in zip(locs, ticks):
            if lo - 1e-9 * (hi - lo) <= loc <= hi + 1e-9 * (hi - lo):
                labels += [tick.label1, tick.label2]
    return labels


def _shown(text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def text_boxes(fig, renderer) -> list[tuple[str, Bbox]]:
    """(name, window extent) of every text the figure shows, a legend as one box; the values
    written inside heatmap cells are left out (they sit in their cells on purpose)."""
    texts = [(f"figure text {t.get_text()!r}", t) for t in fig.texts]
    for i, ax in enumerate(fig.axes):
        where = f"axes {i}"
        texts.append((f"{where} title {ax.title.get_text()!r}", ax.title))
        for axis in (ax.xaxis, ax.yaxis):
            name = axis.axis_name
            texts.append((f"{where} {name} label {axis.label.get_text()!r}", axis.label))
            texts.append((f"{where} {name} offset text", axis.get_offset_text()))
            texts += [(f"{where} {name} tick {t.get_text()!r}", t)
                      for t in _drawn_tick_labels(ax, axis)]
        if not any(isinstance(c, QuadMesh) for c in ax.collections):
            texts += [(f"{where} text {t.get_text()!r}", t) for t in ax.texts]
    boxes = [(name, t.get_window_extent(renderer)) for name, t in texts if _shown(t)]
    for i, legend in enumerate(fig.legends):
        boxes.append((f"figure legend {i}", legend.get_window_extent(renderer)))
    for i, ax in enumerate(fig.axes):
        if ax.get_legend() is not None and ax.get_legend().get_visible():
            boxes.append((f"axes {i} legend", ax.get_legend().get_window_extent(renderer)))
    return boxes


def _area(box: Bbox) -> float:
    return box.width * box.height


def _overlap(a: Bbox, b: Bbox) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE
            and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE)


def _panels(fig) -> list:
    """The figure's panels: its axes other than colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def legibility_problems(fig) -> list[str]:
    """What makes the figure hard to read, once drawn on the Agg canvas, as sentences. The
    layout runs first a few times, as saving it as PDF and PNG runs it: constrained layout may
    move texts from one draw to the next."""
    for _ in range(2):
        fig.draw_without_rendering()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = text_boxes(fig, renderer)
    problems = [f"{a} overlaps {b}" for (a, box_a), (b, box_b) in combinations(boxes, 2)
                if _overlap(box_a, box_b)]
    edge = fig.bbox.padded(TOLERANCE)
    problems += [f"{name} sticks out of the figure" for name, box in boxes
                 if not (edge.x0 <= box.x0 and box.x1 <= edge.x1
                         and edge.y0 <= box.y0 and box.y1 <= edge.y1)]
    for i, ax in enumerate(fig.axes):
        legend = ax.get_legend()
        if legend is not None and (_area(legend.get_window_extent(renderer))
                                   >= _area(ax.get_window_extent(renderer))):
            problems.append(f"axes {i}: legend larger than its panel")
    largest = max(_area(ax.get_window_extent(renderer)) for ax in _panels(fig))
    problems += [f"figure legend {i} larger than a panel" for i, legend in enumerate(fig.legends)
                 if _area(legend.get_window_extent(renderer)) >= largest]
    return problems


# --- the default study's figures, from constructed inputs ------------------------------------
SEEDS = (0, 1)


def _rows(columns, rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def _curve(layer: int, last: int, low: float, high: float) -> float:
    return low + (high - low) * layer / last


def layer_accuracy(methods, last: int, lm: bool) -> pd.DataFrame:
    frame = _rows(["method", "seed", "split", "layer", "accuracy"], (
        (m, s, split, layer, _curve(layer, last, 0.1 + 0.05 * i, 0.5 + 0.1 * (i % 2)))
        for i, m in enumerate(methods) for s in SEEDS for split in ("train", "val", "test")
        for layer in range(last + 1)))
    return frame.assign(cross_entropy=4.0 - 4.5 * frame["accuracy"]) if lm else frame


def similarity(methods, last: int) -> pd.DataFrame:
    return _rows(["method", "seed", "measure", "layer_a", "layer_b", "value"], (
        (m, s, measure, a, b, 0.95 ** abs(a - b))
        for m in methods for s in SEEDS for measure in MEASURES
        for a in range(1, last + 1) for b in range(1, last + 1)))


def per_sample(methods, last: int, column: str, low: float, high: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return _rows(["method", "seed", "layer", "sample", column], (
        (m, s, layer, i, rng.uniform(low, high) * layer / last)
        for m in methods for s in SEEDS for layer in range(1, last + 1) for i in range(10)))


def analysis_files(methods, runs, last: int, lm: bool) -> dict[str, pd.DataFrame]:
    """Every summary file an experiment's figures read, by name."""
    pairs = [(m, s) for m in methods for s in SEEDS]
    return {
        "layer_accuracy.csv": layer_accuracy(methods, last, lm),
        "similarity.csv": similarity(methods, last),
        "cos_per_sample.csv": per_sample(methods, last, "cos", -0.2, 1.0),
        "norm_ratio.csv": per_sample(methods, last, "ratio", 0.2, 12.0),
        "cross_model_cka.csv": similarity(["standard"], last)
        .query("measure == 'cka_linear_biased'").drop(columns="method"),
        "exit_sweep.csv": _rows(
            ["method", "seed", "policy", "split", "threshold", "accuracy", "speedup", "selected"],
            ((m, s, p, split, t, 0.9 - 0.05 * t, 1 + t, t == 1) for m, s in pairs
             for p in POLICIES for split in ("val", "test") for t in range(6))),
        "exit_counts.csv": _rows(["method", "seed", "policy", "layer", "count"], (
            (m, s, p, layer, layer) for m, s in pairs for p in POLICIES
            for layer in range(1, last + 1))),
        "saturation.csv": _rows(["method", "seed", "split", "sample", "saturation_layer"], (
            (m, s, "test", i, 1 + i % last) for m, s in pairs for i in range(3 * last))),
        "depth_study_accuracy.csv": _rows(["run", "seed", "split", "layer", "accuracy"], (
            (r, s, "train", layer, min(1.0, 0.5 + layer / last))
            for r in runs for s in SEEDS for layer in range(last + 1))),
        "depth_study_val_accuracy.csv": _rows(["run", "seed", "epoch", "val_accuracy"], (
            (r, s, e, 0.6 + 0.03 * e) for r in runs for s in SEEDS for e in range(1, 11))),
        "speculative.csv": _rows(  # drafts through each layer's exit ("kind")
            ["method", "seed", "kind", "exit_layer", "draft_length", "acceptance",
             "layer_agreement", "tokens_per_pass", "tokens_per_s_full_depth",
             "tokens_per_s_speculative", "wall_speedup", "equal_to_full_depth", "chosen"],
            ((m, s, "exit", k, 4, 0.06 * k, 0.07 * k, 1.5, 200.0, 180.0, 1.9 - 0.1 * k, True,
              k == 2) for m, s in pairs for k in (1, 2, 3, 4, 6, 8, 10))),
        "image_text.csv": _rows(  # a two-tower model of `last` image and text layers
            ["modality_a", "layer_a", "modality_b", "layer_b", "cos", "method", "seed"],
            ((a, i, b, j, 0.9 ** abs(i - j) - 0.3 * (a != b), m, s) for m, s in pairs
             for a, b in (("image", "image"), ("text", "text"), ("image", "text"))
             for i in range(last + 1) for j in range(last + 1))),
        "generation.csv": _rows(
            ["method", "seed", "exit_layer", "diversity", "coherence", "coherence_measure"],
            ((m, s, k, 1.0, 10.0 / k, "full_depth_ce_nats") for m, s in pairs
             for k in range(1, last + 1))),
    }


def baselines(lm: bool) -> dict:
    """A baselines file as rule fit_baselines writes it, with the default study's models."""
    if lm:
        return {"metric": "cross_entropy", "trivial": "unigram", "shallow": "kneser_ney",
                "models": {
                    "unigram": {"label": "unigram model",
                                "test": {"accuracy": 0.164, "cross_entropy": 3.18}},
                    "bigram": {"label": "bigram model",
                               "test": {"accuracy": 0.274, "cross_entropy": 2.43}},
                    "kneser_ney": {"label": "Kneser-Ney 8-gram model",
                                   "test": {"accuracy": 0.647, "cross_entropy": 1.2}}}}
    return {"metric": "accuracy", "trivial": "majority", "shallow": "logistic", "models": {
        "majority": {"label": "majority class", "test": {"accuracy": 0.102}},
        "logistic": {"label": "logistic regression on token counts",
                     "test": {"accuracy": 0.969}}}}


def legibility_config() -> dict:
    """The default study, and the paper config's CLIP experiment for the figure kind the
    default study does not draw."""
    config = load_config_file(ROOT / "config" / "config.yaml")
    paper = load_config_file(ROOT / "config" / "paper.yaml")
    clip = next(e for e in paper["experiments"] if e["model"]["arch"] == "clip")
    config["experiments"].append(clip)
    config["datasets"][clip["dataset"]] = paper["datasets"][clip["dataset"]]
    return validate_config(config)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> StudyPlan:
    """The plan of `legibility_config`, its results folder holding constructed inputs."""
    results = tmp_path_factory.mktemp("results")
    plan = StudyPlan(legibility_config(), str(results))
    for name, exp in plan.experiments.items():
        lm = name in plan.token_experiments
        folder = results / "analysis" / name
        folder.mkdir(parents=True)
        for file, frame in analysis_files(exp["methods"], run_names(exp),
                                          exp["model"]["depth"], lm).items():
            frame.to_csv(folder / file, index=False)
        path = Path(plan.baselines_file(name))
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(baselines(lm)))
    return plan


def _shape(plan: StudyPlan, job) -> tuple:
    """What sets a figure's layout besides its experiment's name and numbers: its kind, its
    options (a language model's loss panel, a transformer's norm-ratio panel) and whether its
    experiment has one method or several."""
    experiment = Path(job.stem).parent.name
    methods = plan.experiments[experiment]["methods"] if experiment in plan.experiments else []
    flags = {arg for arg in job.argv if arg.startswith("--")} - {"--pdf", "--png"}
    return job.kind, frozenset(flags), len(methods) == 1


def figure_jobs(plan: StudyPlan) -> list:
    """Each figure of the study that differs in layout from the others: of the figures of one
    shape (see `_shape`), the one of the experiment with the most methods (the most panels
    and legend entries) and the longest arguments (the longest names)."""
    jobs = [job for name in plan.experiments for job in plan.figure_jobs(name)]
    jobs += plan.study_figure_jobs()

    def demand(job) -> tuple[int, int]:
        experiment = plan.experiments.get(Path(job.stem).parent.name, {"methods": []})
        return len(experiment["methods"]), len(" ".join(job.argv))

    chosen = {}
    for job in sorted(jobs, key=demand, reverse=True):
        chosen.setdefault(_shape(plan, job), job)
    return list(chosen.values())


def _case(job) -> str:
    """A figure's name in the test's id: its experiment (or 'figures') and file stem."""
    return f"{Path(job.stem).parent.name}/{Path(job.stem).name}"


CASES = {_case(job): job.kind for job in figure_jobs(StudyPlan(legibility_config()))}


def test_every_figure_kind_is_drawn():
    assert {kind for kind in CASES.values()} == set(FIGURES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_figure_is_legible(case, study):
    job = next(j for j in figure_jobs(study) if _case(j) == case)
    fig = FIGURES[job.kind].drawer()(figure_parser().parse_args(list(job.argv)))
    try:
        problems = legibility_problems(fig)
    finally:
        plt.close(fig)
    assert not problems, "\n".join(problems)


def test_the_check_sees_overlapping_texts():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a title")
    ax.text(0.5, 1.02, "a note on the title", transform=ax.transAxes, ha="center")
    ax.plot([0, 1], [0, 1], label="a line with a long label " * 4)
    ax.legend(loc="center left")
    try:
        problems = legibility_problems(fig)
    finally:
        plt.close(fig)
    assert any("overlaps" in p for p in problems)
    assert any("sticks out" in p for p in problems)
