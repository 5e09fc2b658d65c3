"""The claims table: numeric for the CSV, display strings for Markdown and LaTeX, one row per
claim and subject in the order evaluate returns them."""

from __future__ import annotations

import pandas as pd

from layerwise.claims.evaluation import HOLDS, ClaimResult


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def ours_text(row: ClaimResult) -> str:
    if row.mean is None:
        return "–"
    sd = f" ± {row.sd:.3f}" if row.sd is not None else ""
    return f"{row.mean:.3f}{sd} (n={row.n})"


def verdict_text(row: ClaimResult) -> str:
    """E.g. "holds on 3/3 seeds", "fails: holds on 0/3 seeds", "mixed: holds on 2/3 seeds;
    mean within 1 sd of the threshold": the count is always of the seeds on which it holds."""
    if row.reason:
        return f"{row.status}: {row.reason}"
    spread = "" if row.clear is None or row.clear else "; mean within 1 sd of the threshold"
    count = f"holds on {row.passing}/{row.n} seeds{spread}"
    return count if row.status == HOLDS else f"{row.status}: {count}"


def claims_frame(rows: list[ClaimResult]) -> pd.DataFrame:
    """The numeric table (CSV): one row per claim and experiment."""
    return pd.DataFrame([{
        "claim": r.claim, "experiment": r.experiment, "statistic": r.statistic,
        "mean": r.mean, "sd": r.sd, "n": r.n, "seeds_passing": r.passing, "clear": r.clear,
        "comparison": r.comparison, "threshold": r.threshold, "paper": r.paper,
        "status": r.status, "reason": r.reason,
        "detail": r.detail} for r in rows])


def threshold_text(row: ClaimResult) -> str:
    """">= 0.9", "<= 0.02", or "|·| <= 0.02" for a two-sided claim."""
    if row.comparison == "|≤|":
        return f"|·| <= {row.threshold:g}"
    return f"{row.comparison} {row.threshold:g}"


def format_claims(rows: list[ClaimResult]) -> pd.DataFrame:
    """The display table (Markdown, LaTeX)."""
    return pd.DataFrame([{
        "claim": f"{r.claim} {r.statement}", "experiment": r.experiment,
        "statistic": r.statistic, "ours (mean ± sd over seeds)": ours_text(r),
        "threshold": threshold_text(r), "paper": _number(r.paper),
        "verdict": verdict_text(r)} for r in rows])
