"""Versioned results and the report, as users drive them: dvc.yaml parses and `dvc status`
runs; the HTML report builds on the smoke study; and the round trip of a direct Snakemake run
committed to DVC, pushed, deleted, pulled and made current again with identical files."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SMOKE, copy_project, job_counts, snakemake
from layerwise.claims.registry import CLAIMS

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

# What a clone holds besides the project copy of conftest.copy_project: DVC's files and the
# dependencies the study stage tracks.
DVC_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", ".gitignore",
             "requirements.txt", "pyproject.toml")
# Top-level entries of results/ that DVC does not version, and why (see dvc.yaml).
UNVERSIONED = {"README.md": "in git", "hidden": "recomputable, large",
               "checkpoints": "not an output", "downloads": "a download cache",
               "report.html": "rebuilt by snakemake --report"}


def with_dvc_files(project: Path) -> Path:
    for name in DVC_FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, project / name)
    return project


def environment(project: Path) -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1",
               DVC_SITE_CACHE_DIR=str(project / ".dvc" / "site_cache"),
               GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.org",
               GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.org")
    # The stage's command calls `snakemake` (and the rules `python`) of this interpreter.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def run(project: Path, *command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(list(command), cwd=project, env=environment(project),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run(project, sys.executable, "-m", "dvc", *args)


def git_repository(project: Path) -> None:
    run(project, "git", "init", "-q")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", "study")


def stage_outputs() -> list[str]:
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["study"]
    return [next(iter(out)) if isinstance(out, dict) else out for out in stage["outs"]]


def hashes(project: Path) -> dict[str, str]:
    """sha256 of every file DVC versions."""
    files = []
    for out in stage_outputs():
        path = project / out
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def test_dvc_yaml_parses_and_dvc_status_runs(tmp_path):
    project = with_dvc_files(copy_project(tmp_path))
    git_repository(project)
    status = dvc(project, "status")
    assert "study" in status.stdout  # nothing has run: the stage's outputs are missing
    config = (project / ".dvc" / "config").read_text()
    assert "analytics = false" in config and "site_cache_dir" in config
    assert (project / ".dvc" / "site_cache").is_dir()  # the site cache stays in the project
    outs = stage_outputs()
    assert "results/hidden" not in outs and "results/checkpoints" not in outs
    assert "results/hidden" in (ROOT / "dvc.yaml").read_text()  # the decision is explained


def test_report_builds_on_the_smoke_study(smoke_project, tmp_path):
    report = tmp_path / "report.html"
    done = snakemake(smoke_project, "--report", str(report), "--configfile", "config/smoke.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    html = report.read_text(encoding="utf-8")
    categories = ["Similarity", "Layer-wise accuracy", "Saturation", "Multi-exit", "Claims",
                  "Runtime"]
    if (smoke_project / "results/figures/text_layerwise.png").exists():
        categories.append("Text arm")
    for category in categories:
        assert f'"{category}"' in html, category
    for name in ("layerwise_accuracy.png", "cos_heatmaps.png", "exit_tradeoff.png",
                 "saturation.png", "residual_ablation.png", "claims.csv", "runtime.csv"):
        assert name in html, name
    assert "<script src=" not in html and 'rel="stylesheet" href="http' not in html
    results = smoke_project / "results"
    assert "## Claims of the paper, checked" in (results / "SUMMARY.md").read_text()
    claims = json.loads((results / "tables" / "claims.json").read_text())["claims"]
    config = yaml.safe_load((smoke_project / "config/smoke.yaml").read_text())
    transformers = [e["name"] for e in config["experiments"] if e["model"]["arch"] != "mlp"]
    # the claims before C8 once per transformer experiment, in the registry's order; C8 once,
    # for the MLP pair; then the rest once per transformer experiment.
    ablation = next(c["experiment"] for c in claims if c["claim"] == "C8")
    ids = list(CLAIMS)
    before, after = ids[:ids.index("C8")], ids[ids.index("C8") + 1:]
    assert [(c["claim"], c["experiment"]) for c in claims] == \
        [(claim, name) for claim in before for name in transformers] + \
        [("C8", ablation)] + [(claim, name) for claim in after for name in transformers]


def test_dvc_round_trip_restores_identical_results_that_snakemake_accepts(smoke_project,
                                                                          tmp_path):
    # A clone in which the smoke study was run directly with Snakemake: its config is the
    # default config, so that the stage's command and params describe what ran.
    project = tmp_path / "clone"
    shutil.copytree(smoke_project, project, symlinks=True)
    with_dvc_files(project)
    from layerwise.study.config import load_config_file, merge_configs

    merged = merge_configs(load_config_file(project / "config/config.yaml"),
                           load_config_file(project / "config/smoke.yaml"))
    (project / "config/config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    git_repository(project)
    assert job_counts(snakemake(project, "-n").stdout) == {}

    # Every top-level result is versioned or deliberately not.
    outs = {Path(o).name for o in stage_outputs()}
    for entry in (project / "results").iterdir():
        assert entry.name in outs or entry.name in UNVERSIONED, entry.name

    # After a direct Snakemake run: record the results, then push them to the default remote.
    dvc(project, "commit", "-f")
    assert "up to date" in dvc(project, "status").stdout
    dvc(project, "push")
    before = hashes(project)
    assert len(before) > 50

    # A fresh clone: no results, no DVC cache, no Snakemake metadata.
    for out in stage_outputs() + ["results/hidden", "results/checkpoints"]:
        path = project / out
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(project / ".snakemake")
    dvc(project, "pull")
    done = snakemake(project, "--touch", "--forceall", "--cores", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    dry = snakemake(project, "-n")
    assert dry.returncode == 0 and job_counts(dry.stdout) == {}, dry.stdout[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert hashes(project) == before
    assert "up to date" in dvc(project, "status").stdout

    # Metrics, params and plots as DVC shows them.
    metrics = json.loads(dvc(project, "metrics", "show", "--json").stdout)
    (workspace,) = metrics.values()  # keyed by revision: "" for the workspace
    shown = workspace["data"]["results/metrics.json"]["data"]
    assert set(shown["claims"]) == set(CLAIMS)
    assert shown["experiments"][SMOKE]["final_accuracy"]["aligned"] > 0.1
    plots = dvc(project, "plots", "show", "-o", str(tmp_path / "plots"))
    assert "failed" not in (plots.stdout + plots.stderr).lower()
    assert (tmp_path / "plots" / "index.html").stat().st_size > 1000

    # A changed threshold: DVC sees the param, `dvc repro` reruns only what depends on it.
    config = (project / "config/config.yaml").read_text()
    (project / "config/config.yaml").write_text(
        config.replace("min_intermediate_gain: 0.1", "min_intermediate_gain: 0.3"))
    assert "claims.min_intermediate_gain" in dvc(project, "params", "diff").stdout
    assert job_counts(snakemake(project, "-n").stdout) == {"check_claims": 1,
                                                            "study_summary": 1, "all": 1}
    dvc(project, "repro")
    claims = json.loads((project / "results/tables/claims.json").read_text())
    assert claims["thresholds"]["min_intermediate_gain"] == 0.3
    assert "min_intermediate_gain: 0.3" in (project / "dvc.lock").read_text()
    assert (project / "results" / "report.html").stat().st_size > 100_000
    assert "up to date" in dvc(project, "status").stdout
