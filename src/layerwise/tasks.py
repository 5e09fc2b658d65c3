"""What each dataset source is evaluated with, and which of the paper's curves it is drawn beside.

Kept free of torch (and of anything heavy) because the workflow and the config check import it.
The GLUE facts follow the paper's Fig 8: MRPC and QQP are scored by F1 of the positive class,
the others by accuracy; evaluation is on the validation set (MNLI: matched).
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT_SOURCES = ("rotten_tomatoes", "glue")


@dataclass(frozen=True)
class GlueTask:
    label: str                      # the name the paper prints
    text_columns: tuple[str, ...]   # one column, or a sentence pair
    num_classes: int
    metric: str
    eval_split: str                 # the validation split the paper reports


GLUE_TASKS = {
    "sst2": GlueTask("SST-2", ("sentence",), 2, "accuracy", "validation"),
    "mrpc": GlueTask("MRPC", ("sentence1", "sentence2"), 2, "f1", "validation"),
    "qnli": GlueTask("QNLI", ("question", "sentence"), 2, "accuracy", "validation"),
    "mnli": GlueTask("MNLI", ("premise", "hypothesis"), 3, "accuracy", "validation_matched"),
    "rte": GlueTask("RTE", ("sentence1", "sentence2"), 2, "accuracy", "validation"),
    "qqp": GlueTask("QQP", ("question1", "question2"), 2, "f1", "validation"),
}

def dataset_metric(spec: dict) -> str:
    """The metric a dataset's layer-wise results are reported in: accuracy, or F1 (MRPC, QQP)."""
    if spec["source"] == "glue":
        return GLUE_TASKS[spec["glue"]["task"]].metric
    return "accuracy"


def paper_curves(spec: dict) -> tuple[str, str] | None:
    """(key, label) of the paper's Fig 8 BERT-base curves comparable to a dataset, or None
    (a key for layerwise.reference.fig8_curves).

    The Rotten Tomatoes snippets are drawn beside SST-2, which was built from the same source
    (Socher et al. 2013 re-annotated Pang and Lee's Rotten Tomatoes sentences); the label says so.
    """
    if spec["source"] == "glue":
        task = spec["glue"]["task"]
        suffix = "f1" if GLUE_TASKS[task].metric == "f1" else "acc"
        return f"{task}_{suffix}", f"paper BERT-base {GLUE_TASKS[task].label}"
    if spec["source"] == "rotten_tomatoes":
        return "sst2_acc", "paper BERT-base SST-2 (from Rotten Tomatoes)"
    return None
