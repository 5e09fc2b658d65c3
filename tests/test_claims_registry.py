"""The claims registry drives the evaluation, the paper values and the table: every record is
consistent with the config schema, yields one row per subject, and an added record needs no
other change; each claim's paper value stands alone."""

from __future__ import annotations

import string
import subprocess
import sys

import pytest

from layerwise import claims
from layerwise.claims import ABLATION, EXPERIMENT, HOLDS, NOT_EVALUATED, Claim, ExperimentData
from layerwise.claims.registry import _no_paper_value
from layerwise.reference import paper_values
from layerwise.study.config import load_config_file, load_schema, validate_config

from conftest import ROOT

PLACEHOLDERS = {"metric", "policy", "early"}


@pytest.fixture(scope="module")
def thresholds() -> dict:
    return validate_config(load_config_file(ROOT / "config/config.yaml"))["claims"]


def test_every_record_is_consistent_with_the_schema():
    keys = load_schema()["properties"]["claims"]["properties"]
    # numbered C1, C2, ... in order, however many the registry holds; a variant of a claim
    # (C6-FLOPs: C6 matched another way) follows it
    numbered = [claim_id for claim_id in claims.CLAIMS if "-" not in claim_id]
    assert numbered == [f"C{i}" for i in range(1, len(numbered) + 1)]
    ids = list(claims.CLAIMS)
    for variant in set(ids) - set(numbered):
        base = variant.split("-")[0]
        assert ids.index(variant) == ids.index(base) + 1, variant
    for claim_id, record in claims.CLAIMS.items():
        assert record.id == claim_id
        assert record.threshold_key in keys, claim_id
        fields = {name for _, name, _, _ in string.Formatter().parse(record.statistic) if name}
        assert fields <= PLACEHOLDERS, claim_id


def test_a_record_rejects_an_unknown_comparison_or_scope():
    record = claims.CLAIMS["C3"]
    fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
    with pytest.raises(ValueError, match="comparison"):
        Claim(**{**fields, "comparison": ">"})
    with pytest.raises(ValueError, match="scope"):
        Claim(**{**fields, "scope": "run"})


def test_the_table_has_one_row_per_record_and_subject(thresholds):
    experiments = [ExperimentData(name="a"), ExperimentData(name="b")]
    pair = (ExperimentData(name="plain"), ExperimentData(name="residual"))
    rows = claims.evaluate(experiments, thresholds, pair)
    expected = [(claim.id, name) for claim in claims.CLAIMS.values()
                for name in (["a", "b"] if claim.scope == EXPERIMENT else ["plain vs residual"])]
    assert [(r.claim, r.experiment) for r in rows] == expected
    for frame in (claims.claims_frame(rows), claims.format_claims(rows)):
        assert len(frame) == len(expected)
    assert list(claims.claims_frame(rows)["claim"]) == [claim for claim, _ in expected]
    assert {r.status for r in rows} == {NOT_EVALUATED} and all(r.reason for r in rows)


def constant(data, thresholds) -> dict[int, float]:
    return {0: 0.6, 1: 0.8}


def missing(pair, thresholds):
    raise claims.NotEvaluated("the pair lacks what C99 reads")


def test_an_added_record_is_evaluated_tabled_and_given_its_paper_value(thresholds):
    registered = list(claims.CLAIMS)
    extra = {
        **claims.CLAIMS,
        "C98": Claim("C98", "a claim added in one record", "mean test {metric} by layer {early}",
                     ">=", "min_intermediate_gain", EXPERIMENT, compute=constant,
                     paper=lambda values, early_fraction: 0.5),
        "C99": Claim("C99", "an ablation claim added in one record", "gap", "<=",
                     "max_final_gap", ABLATION, compute=missing,
                     paper=lambda values, early_fraction: values["no such figure"]),
    }
    experiments = [ExperimentData(name="a", metric="f1"), ExperimentData(name="b")]
    paper = claims.paper_statistics(paper_values(), thresholds["early_fraction"], extra)
    rows = claims.evaluate(experiments, thresholds, None, paper, registry=extra)

    assert [r.claim for r in rows][-3:] == ["C98", "C98", "C99"]
    added = {(r.claim, r.experiment): r for r in rows if r.claim in ("C98", "C99")}
    for name, metric in (("a", "f1"), ("b", "accuracy")):
        row = added["C98", name]
        assert row.status == HOLDS and row.mean == pytest.approx(0.7) and row.n == 2
        assert row.paper == 0.5 and row.statistic == f"mean test {metric} by layer " \
            f"{thresholds['early_fraction']:g}·L"
    assert added["C99", "–"].status == NOT_EVALUATED and added["C99", "–"].paper is None
    assert "residual_ablation" in added["C99", "–"].reason
    shown = claims.format_claims(rows)
    assert "C98 a claim added in one record" in set(shown["claim"])
    assert list(claims.CLAIMS) == registered  # the registry is untouched


@pytest.mark.parametrize("key, dependents", [
    ("fig2_deit_s_scratch_standard", {"C2"}),
    ("fig4_deit_s_imagenet", {"C3", "C4", "C5", "C9"}),
    ("fig14_deit_s_imagenet_cos_regularization", {"C9"}),
    ("fig7_imagenet_early_exit", {"C6"}),
    ("fig1_deit_s_pretrained_finetuned_cifar10", {"C7"}),
    ("fig12_mlp9_mnist", {"C8"}),
])
@pytest.mark.parametrize("damage", ["removed", "malformed"])
def test_a_missing_reference_value_blanks_only_the_claims_that_read_it(key, dependents, damage):
    full = claims.paper_statistics(paper_values())
    values = dict(paper_values())
    if damage == "removed":
        del values[key]
    else:
        values[key] = "not a figure"
    damaged = claims.paper_statistics(values)
    assert list(damaged) == list(full)
    for claim_id, value in damaged.items():
        if claim_id in dependents:
            assert value is None, claim_id
        else:
            assert value == full[claim_id], claim_id
            # none only where the record says the paper gives none (C1, C10, C11)
            assert value is not None or claims.CLAIMS[claim_id].paper is _no_paper_value, \
                claim_id


def test_the_claims_package_imports_neither_torch_nor_matplotlib():
    code = ("import sys, layerwise.claims; "
            "print(sorted({'torch', 'matplotlib'} & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
