import numpy as np
import pandas as pd
import pytest
import torch

from layerwise.hidden.files import read_hidden
from layerwise.hidden.metrics import layer_accuracy
from layerwise.similarity.measures import frame_matrix, matrix_frame, similarity_frame
from layerwise.io import ArtifactError, save_tensors


def test_layer_accuracy_on_hand_made_logits():
    labels = torch.tensor([0, 1, 1])
    logits = torch.tensor([
        [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]],   # predicts 0,0,0 -> 1/3
        [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]],   # predicts 1,1,1 -> 2/3
        [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],   # all right
    ])
    np.testing.assert_allclose(layer_accuracy(logits, labels), [1 / 3, 2 / 3, 1.0])


def test_matrix_frame_round_trip():
    m = np.arange(9.0).reshape(3, 3)
    frame = matrix_frame(m, "cos")
    assert list(frame.columns) == ["measure", "layer_a", "layer_b", "value"]
    np.testing.assert_array_equal(frame_matrix(frame), m)


def test_similarity_frame_covers_layers_1_to_L_with_unit_diagonals():
    reps = torch.randn(4, 50, 6, generator=torch.Generator().manual_seed(0))
    reps[0] = 1.0  # a ViT's layer-0 [CLS] token: the same for every sample
    frame = similarity_frame(reps)
    assert set(frame["measure"]) == {"cos", "cos_raw", "cka_linear_biased"}
    assert set(frame["layer_a"]) == set(frame["layer_b"]) == {1, 2, 3}
    assert frame["value"].notna().all()
    for _, group in frame.groupby("measure"):
        np.testing.assert_allclose(np.diag(frame_matrix(group)), 1.0, rtol=1e-10)


def write_hidden(path, reps, logits, labels, spec_hash="abc"):
    save_tensors(path, {"representations": reps, "logits": logits, "labels": labels},
                 {"spec_hash": spec_hash})


def test_hidden_state_file_with_wrong_shape_is_reported(tmp_path):
    path = tmp_path / "test.safetensors"
    write_hidden(path, torch.randn(3, 10, 4), torch.randn(3, 9, 2), torch.zeros(10).long())
    with pytest.raises(ArtifactError, match="test.safetensors.*disagree"):
        read_hidden(path, "abc")


def test_hidden_state_file_of_another_run_is_reported(tmp_path):
    path = tmp_path / "val.safetensors"
    write_hidden(path, torch.randn(3, 10, 4), torch.randn(3, 10, 2), torch.zeros(10).long())
    with pytest.raises(ArtifactError, match="another config"):
        read_hidden(path, "xyz")


def test_nan_in_features_is_reported(tmp_path):
    path = tmp_path / "val.safetensors"
    reps = torch.randn(3, 10, 4)
    reps[1, 2, 3] = float("nan")
    write_hidden(path, reps, torch.randn(3, 10, 2), torch.zeros(10).long())
    with pytest.raises(ArtifactError, match="NaN or Inf"):
        read_hidden(path, "abc")


def test_similarity_frame_computes_the_chosen_cka_estimators():
    reps = torch.randn(4, 40, 5, generator=torch.Generator().manual_seed(1))
    frame = similarity_frame(reps, cka=("linear_biased", "linear_unbiased", "rbf"),
                             batch_size=10)
    assert set(frame["measure"]) == {"cos", "cos_raw", "cka_linear_biased",
                                     "cka_linear_unbiased", "cka_rbf"}
    from layerwise.similarity.engine import cka_matrix
    minibatch = frame_matrix(frame[frame["measure"] == "cka_linear_unbiased"])
    np.testing.assert_allclose(minibatch, cka_matrix(reps[1:], estimator="unbiased",
                                                     batch_size=10), rtol=1e-12)


def test_cos_to_last_frame_matches_a_per_sample_loop():
    from layerwise.similarity.measures import cos_to_last_frame
    reps = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    frame = cos_to_last_frame(reps)
    assert sorted(frame["layer"].unique()) == [1, 2]
    centered = reps - reps.mean(dim=1, keepdim=True)
    for row in frame.itertuples():
        a, b = centered[row.layer, row.sample], centered[2, row.sample]
        assert row.cos == pytest.approx((a @ b / (a.norm() * b.norm())).item(), abs=1e-12)


def agreement_input(cka_matrix):
    cos = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.6], [0.3, 0.6, 1.0]])
    return pd.concat([matrix_frame(cos, "cos", 1),
                      matrix_frame(cka_matrix, "cka_linear_biased", 1)], ignore_index=True)


def test_agreement_is_one_for_the_same_ranking_and_minus_one_for_the_reverse():
    from layerwise.similarity.measures import cos_cka_agreement
    same = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    result = cos_cka_agreement(agreement_input(same)).set_index("scope")["spearman"]
    assert result["pairs"] == pytest.approx(1.0) and result["to_last"] == pytest.approx(1.0)
    reverse = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.5], [0.9, 0.5, 1.0]])
    result = cos_cka_agreement(agreement_input(reverse)).set_index("scope")["spearman"]
    assert result["pairs"] == pytest.approx(-1.0) and result["to_last"] == pytest.approx(-1.0)


def test_similarity_leaves_its_input_untouched():
    reps = torch.randn(3, 20, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    before = reps.clone()
    similarity_frame(reps, cka=("linear_biased", "linear_unbiased", "rbf"))
    from layerwise.similarity.measures import cos_to_last_frame
    cos_to_last_frame(reps)
    assert torch.equal(reps, before)


def test_norm_ratio_against_a_hand_computation():
    from layerwise.similarity.measures import norm_ratio_frame

    # two samples, layers 0..2 of width 2: block 1 adds (0, 1) to (3, 4); block 2 adds (3, 4)
    reps = torch.tensor([[[3.0, 4.0], [1.0, 0.0]],
                         [[3.0, 5.0], [1.0, 0.0]],
                         [[6.0, 9.0], [1.0, 2.0]]])
    frame = norm_ratio_frame(reps)
    assert list(frame.columns) == ["layer", "sample", "ratio"]
    ratio = {(r.layer, r.sample): r.ratio for r in frame.itertuples()}
    assert ratio[(1, 0)] == pytest.approx(5.0 / 1.0)             # ||(3,4)|| / ||(0,1)||
    assert ratio[(2, 0)] == pytest.approx(34 ** 0.5 / 5.0)       # ||(3,5)|| / ||(3,4)||
    assert ratio[(1, 1)] == float("inf")                          # block 1 leaves sample 1 alone
    assert ratio[(2, 1)] == pytest.approx(1.0 / 2.0)
