"""Crash and resume without loss, and determinism.

Training jobs are killed with SIGKILL at several points (mid-epoch, in the middle of writing a
checkpoint, after training but before the weights are written) and restarted; each must end
with exactly the files an uninterrupted run writes. The whole workflow is killed mid-run and
rerun; it must finish the missing jobs only and match an uninterrupted study byte for byte.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import ROOT, SMOKE, copy_project, snakemake
from layerwise.data.sources import prepare_dataset

# Every test trains in subprocesses (killed and restarted) or runs the workflow.
pytestmark = pytest.mark.slow

SPEC = {"experiment": "kill", "dataset": "digits", "method": "aligned", "seed": 3,
        "model": {"arch": "vit", "depth": 2, "width": 16, "heads": 2, "patch_size": 4,
                  "mlp_ratio": 2.0, "head_input": "final_norm"},
        "train": {"epochs": 3, "batch_size": 256, "lr": 1e-3, "weight_decay": 1e-4,
                  "schedule": "cosine", "milestones": [], "gamma": 0.1, "warmup_epochs": 1,
                  "label_smoothing": 0.0},
        "aligned": {"weights": "linear", "alternate": True}}

# Runs scripts/train.py with one function replaced so that the process SIGKILLs itself at the
# chosen moment, as a preempted cluster job or an OOM kill would.
KILLER = r"""
import io, os, runpy, signal, sys
import torch
import layerwise.io, layerwise.train.loop as training

where, count = os.environ["KILL_AT"].split(":")
count = int(count)
calls = [0]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if where == "step":
    real_loss = training.training_loss
    def training_loss(*args, **kwargs):
        calls[0] += 1
        if calls[0] == count:
            die()
        return real_loss(*args, **kwargs)
    training.training_loss = training_loss
elif where == "checkpoint":
    real_save = torch.save
    def save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == count:  # write half of the checkpoint into its file, then die
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            die()
        return real_save(obj, f, *args, **kwargs)
    torch.save = save
elif where == "weights":
    def save_tensors(*args, **kwargs):
        die()
    layerwise.io.save_tensors = save_tensors

sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path(sys.argv_script, run_name="__main__") if False else None
"""


def train_command(data, out, kill_at=None):
    args = ["--spec", json.dumps(SPEC), "--data", str(data), "--checkpoint", str(out / "ckpt.pt"),
            "--model", str(out / "model.safetensors"), "--log", str(out / "log.csv"),
            "--provenance", str(out / "provenance.json")]
    if kill_at is None:
        return [sys.executable, str(ROOT / "scripts/train.py"), *args]
    code = KILLER.replace('runpy.run_path(sys.argv_script, run_name="__main__") if False else None',
                          f'runpy.run_path({str(ROOT / "scripts/train.py")!r}, run_name="__main__")')
    return [sys.executable, "-c", code, *args]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits")
    prepare_dataset({"source": "sklearn_digits", "val_fraction": 0.15, "test_fraction": 0.25,
                     "split_seed": 0}, path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(train_command(digits, out), check=True, capture_output=True)
    return out


def without_timing(log_csv):
    return pd.read_csv(log_csv).drop(columns=["seconds", "samples_per_second", "peak_memory_mb"])


# 4 optimizer steps per epoch (1077 samples, batch 256): step 6 is mid-epoch 2.
@pytest.mark.parametrize("kill_at", ["step:6", "checkpoint:2", "checkpoint:3", "weights:1"])
def test_killed_training_resumes_to_identical_results(digits, uninterrupted, tmp_path, kill_at):
    killed = subprocess.run(train_command(digits, tmp_path, kill_at), capture_output=True,
                            env={**os.environ, "KILL_AT": kill_at})
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert not (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "ckpt.pt").exists()  # what the restarted job resumes from

    resumed = subprocess.run(train_command(digits, tmp_path), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    assert (tmp_path / "model.safetensors").read_bytes() == \
        (uninterrupted / "model.safetensors").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))  # what the killed writer left is cleaned up
    assert not (tmp_path / "ckpt.pt").exists()  # a finished run keeps no checkpoint
    assert not (uninterrupted / "ckpt.pt").exists()
    pd.testing.assert_frame_equal(without_timing(tmp_path / "log.csv"),
                                  without_timing(uninterrupted / "log.csv"))


@pytest.mark.workflow
def test_interrupted_workflow_finishes_only_what_is_missing_and_matches(smoke_project,
                                                                        tmp_path):
    project = copy_project(tmp_path)
    # Three runs' own analyses: on 2 cores one training at least is still running when the
    # first has finished, so the kill below interrupts the workflow in the middle.
    compared = [f"results/analysis/{SMOKE}/{method}/seed0/{name}"
                for method in ("standard", "aligned", "multi_exit")
                for name in ("layer_accuracy.csv", "similarity.csv")]
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *compared, "--cores", "2",
                             "--configfile", "config/smoke.yaml"], cwd=project,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    runs = project / "results" / "runs" / SMOKE

    def recorded():
        """Trained weights of jobs Snakemake has recorded as finished (their metadata is
        written when a job ends; weights on disk alone may belong to a job still running)."""
        return [p for p in runs.glob("*/seed*/model.safetensors")
                if (project / ".snakemake" / "metadata" / base64.urlsafe_b64encode(
                    str(p.relative_to(project)).encode()).decode()).exists()]

    deadline = time.time() + 300
    while not recorded() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in recorded()}
    assert 1 <= len(finished) < 3

    # A killed Snakemake leaves its lock behind; the user removes it, then reruns.
    unlock = snakemake(project, "--unlock", "--configfile", "config/smoke.yaml")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = snakemake(project, *compared, "--cores", "2", "--configfile", "config/smoke.yaml")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for path, mtime in finished.items():  # nothing that had finished was redone
        assert path.stat().st_mtime_ns == mtime, path
    for name in compared:
        ours, reference = project / name, smoke_project / name
        assert ours.read_bytes() == reference.read_bytes(), name
