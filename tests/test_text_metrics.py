"""The task's metric per layer (F1 for MRPC and QQP), and the paper's Fig 8 curves beside ours."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from layerwise.hidden.metrics import LAYER_METRICS, layer_f1
from layerwise.report.figures import layerwise_accuracy_figure, layerwise_panels_figure
from layerwise.reference import curves, paper_values
from layerwise.report.tables import layerwise_accuracy_table
from layerwise.data.sources import GLUE_TASKS, dataset_metric, paper_curves


def test_layer_f1_matches_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 200, 2, generator=generator)
    labels = torch.randint(0, 2, (200,), generator=generator)
    expected = [f1_score(labels.numpy(), layer.argmax(-1).numpy()) for layer in logits]
    np.testing.assert_allclose(layer_f1(logits, labels), expected, rtol=1e-12)


def test_a_layer_that_never_predicts_the_positive_class_scores_zero():
    logits = torch.tensor([[[5.0, 0.0]] * 4, [[0.0, 5.0]] * 4])  # all negative, all positive
    labels = torch.tensor([1, 0, 1, 0])
    np.testing.assert_allclose(layer_f1(logits, labels), [0.0, 2 / 3])
    np.testing.assert_allclose(layer_f1(logits[:1], torch.zeros(4, dtype=torch.long)), [0.0])
    assert set(LAYER_METRICS) == {"accuracy", "f1"}


@pytest.mark.parametrize("task", sorted(GLUE_TASKS))
def test_every_glue_task_has_its_metric_and_the_papers_curves(task):
    spec = {"source": "glue", "glue": {"task": task}}
    assert dataset_metric(spec) == ("f1" if task in ("mrpc", "qqp") else "accuracy")
    key, label = paper_curves(spec)
    drawn = curves(key, label)
    assert set(drawn) == {f"{label}: standard", f"{label}: aligned"}
    assert all(len(values) == 12 for values in drawn.values())
    assert key in paper_values()["fig8_bert_base_glue_layerwise"]


def test_rotten_tomatoes_is_drawn_beside_sst2_and_labelled_so():
    key, label = paper_curves({"source": "rotten_tomatoes"})
    assert key == "sst2_acc" and "SST-2" in label and "Rotten Tomatoes" in label
    assert paper_curves({"source": "sklearn_digits"}) is None


def accuracy_frame(metric_values):
    rows = [{"method": m, "seed": s, "split": "test", "layer": layer, "accuracy": 0.5,
             "f1": metric_values[m][layer]}
            for m in metric_values for s in (0, 1) for layer in range(len(metric_values[m]))]
    return pd.DataFrame(rows)


def test_tables_and_figures_report_the_tasks_metric():
    frame = accuracy_frame({"standard": [0.0, 0.1, 0.8], "aligned": [0.0, 0.7, 0.8]})
    table = layerwise_accuracy_table(frame, "test", "f1")
    assert table["standard_mean"].tolist() == [0.1, 0.8]
    fig = layerwise_accuracy_figure(frame, "test", metric="f1")
    assert "F1" in fig.axes[0].get_ylabel()
    reference = curves("mrpc_f1", "paper MRPC")
    panels = layerwise_panels_figure({"MRPC": (frame, "f1", reference),
                                      "other": (frame, "accuracy", None)}, "test", "Fig 8")
    assert len(panels.axes) == 2
    # 12 paper values are drawn at the same relative depth over our 2 layers
    drawn = [line for line in panels.axes[0].lines if line.get_label().startswith("paper")]
    assert len(drawn) == 2 and drawn[0].get_xdata()[-1] == pytest.approx(2.0)
