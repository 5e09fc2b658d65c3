"""The cluster profile, for real: a slice of the smoke study (its ViT experiment, standard and
aligned, one seed) through workflow/profiles/slurm on a one-node SLURM (munged, slurmctld,
slurmd) that this module starts and stops.

The cluster is private to the test: its own munge key and socket, its own ports, state and logs
in a temporary folder, `SLURM_CONF` pointing there; the daemons are started and stopped by their
own process ids. The node offers two fake GPUs (`Gres=gpu:2`; gres.conf names /dev/null and
/dev/zero as their device files), so the rules that ask for `gpu` are scheduled as on a GPU
cluster (two at a time, as the node has two cores) and then run on the CPU.

The profile is used as written except for what a one-node, two-core test cluster needs (see
`fitted_profile`): its partition, memory and threads scaled to the node, and the plugin polling
job states with squeue (there is no accounting database for sacct) from 1 s after submission
(instead of 40 s). The binaries come from tests/slurm/install.sh (the README's test command
calls it). Without them, or without root to start slurmd, the test fails in CI (CI=true) and
is skipped elsewhere, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SMOKE, copy_project

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

BINARIES = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch",
            "/usr/bin/squeue", "/usr/bin/scontrol", "/usr/bin/scancel", "/usr/bin/sinfo")
PARTITION = "debug"
NODE_MEM_MB = 3000        # what a test job may ask for (two fit beside the test itself)
CLUSTER_TIMEOUT_S = 1800  # the slice through SLURM: 6.5 min idle, 15 min on a loaded 2-core box


def unavailable() -> str | None:
    """Why a SLURM cluster cannot be started here, or None."""
    missing = [b for b in BINARIES if not os.access(b, os.X_OK)]
    if missing:
        return (f"SLURM binaries missing: {', '.join(missing)}; run tests/slurm/install.sh "
                "(needs root and apt)")
    if os.geteuid() != 0:
        return "starting slurmd (which launches jobs as their users) needs root"
    try:
        import pwd

        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (install the munge package: tests/slurm/install.sh)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_line(node: str) -> str:
    """This machine as a SLURM node (`slurmd -C`: CPUs, sockets, cores, memory)."""
    out = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    line = next(l for l in out.splitlines() if l.startswith("NodeName="))
    fields = [f for f in line.split() if not f.startswith("NodeName=")]
    return f"NodeName={node} NodeAddr=127.0.0.1 {' '.join(fields)} Gres=gpu:2 State=UNKNOWN"


class LocalSlurm:
    """munged, slurmctld and slurmd for one node, in a private folder."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="layerwise-slurm-"))
        self.dir.chmod(0o755)  # munged (its own user) must reach its socket folder
        self.node = socket.gethostname().split(".")[0]
        conf = self.dir / "slurm.conf"
        # Inside a job the plugin's jobstep runs `srun` with the SLURM_* variables removed, so
        # srun looks for /etc/slurm/slurm.conf, where a real cluster keeps it; this private
        # cluster's srun is a shim (first on PATH) that names its config instead.
        shim = self.dir / "bin"
        shim.mkdir()
        (shim / "srun").write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec /usr/bin/srun "$@"\n')
        (shim / "srun").chmod(0o755)
        self.env = {**os.environ, "SLURM_CONF": str(conf),
                    "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.procs: dict[str, subprocess.Popen] = {}

    def _write_config(self) -> None:
        munge = self.dir / "munge"
        munge.mkdir(mode=0o755)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        shutil.chown(munge, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        for part in ("state", "spool", "log"):
            (self.dir / part).mkdir()
        d = self.dir
        # No accounting database: finished jobs are known to squeue (the plugin's status
        # command here) and scontrol only until MinJobAge, which outlasts the whole run.
        (d / "slurm.conf").write_text(f"""\
ClusterName=layerwise-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}/munge.socket
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=7200
DefMemPerCPU=1000
GresTypes=gpu
{node_line(self.node)}
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        (d / "gres.conf").write_text("Name=gpu File=/dev/null\nName=gpu File=/dev/zero\n")

    def _start(self, name: str, command: list[str], **kwargs) -> None:
        log = open(self.dir / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True, **kwargs)
        log.close()

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for "
                                       f"{what}: {self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}: {self.logs()}")

    def start(self) -> "LocalSlurm":
        self._write_config()
        munge = self.dir / "munge"
        self._start("munged", ["/usr/sbin/munged", "--foreground", f"--socket={munge}/munge.socket",
                               f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid",
                               f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed"],
                    user="munge", group="munge")
        self._wait("the munge socket", lambda: (munge / "munge.socket").exists())
        self._start("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i"])
        self._start("slurmd", ["/usr/sbin/slurmd", "-D", "-N", self.node])
        self._wait("an idle node", lambda: self.run("sinfo", "-h", "-o", "%T").stdout.strip()
                   in ("idle", "mixed"))
        return self

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env=self.env,
                              timeout=timeout)

    def logs(self) -> str:
        texts = []
        for path in sorted((self.dir / "log").glob("*")):
            texts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-1500:])
        return "\n".join(texts)

    def stop(self) -> None:
        """Cancel what is left, then stop the daemons by their process ids (and their sessions:
        slurmd's job steps), the node daemon first."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--full", "--user", str(os.getuid()), timeout=10)
            except subprocess.SubprocessError:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = unavailable()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the SLURM test cannot run in CI: {reason}")
        pytest.skip(reason)
    cluster = LocalSlurm()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def fitted_profile(project: Path) -> Path:
    """workflow/profiles/slurm, fitted to the one-node test cluster: the only changes."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = PARTITION
    for resources in profile["set-resources"].values():
        if "slurm_partition" in resources:
            resources["slurm_partition"] = PARTITION
        if "mem_mb" in resources:
            resources["mem_mb"] = min(resources["mem_mb"], NODE_MEM_MB)
    profile["default-resources"]["mem_mb"] = min(profile["default-resources"]["mem_mb"],
                                                 NODE_MEM_MB)
    profile["set-threads"] = {rule: 1 for rule in profile["set-threads"]}
    profile["slurm-status-command"] = "squeue"             # no accounting database for sacct
    profile["slurm-init-seconds-before-status-checks"] = 1  # MinJobAge (7200 s) >= 3 x this
    profile["slurm-keep-successful-logs"] = True            # to see which rules ran as jobs
    folder = project / "workflow" / "profiles" / "slurm-test"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def test_the_profile_asks_for_gpus_as_resources_and_keeps_plots_local():
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["rerun-incomplete"] is True
    assert 1 <= profile["retries"] <= 3
    assert re.fullmatch(r"\d+\s*[smhd]", profile["default-resources"]["runtime"])
    assert {"mem_mb", "slurm_partition"} <= set(profile["default-resources"])
    for rule in ("train", "analyze_run", "analyze_exit_run", "analyze_tokens"):
        assert profile["set-resources"][rule]["gpu"] >= 1
    assert "slurm_extra" not in yaml.safe_dump(profile)
    rules = {m for f in (ROOT / "workflow/rules").glob("*.smk")
             for m in re.findall(r"^rule (\w+):", f.read_text(), re.M)}
    local = re.search(r"^localrules:\n((?:\s+\w+,?\n)+)", (ROOT / "workflow/Snakefile").read_text(),
                      re.M)
    assert local, "the Snakefile declares no localrules"
    local = set(re.findall(r"\w+", local.group(1)))
    assert {r for r in rules if r.startswith("figure_")} <= local
    assert local <= rules | {"all"}
    # an experiment's figures are one rule per experiment, defined in a loop, local itself
    figures = (ROOT / "workflow/rules/figures.smk").read_text()
    assert re.search(r'name: figure_rule\(.*\)\n\s+localrule: True', figures)


def smoke_slice(project: Path) -> Path:
    """The smoke study's ViT experiment, standard and aligned, one seed: every kind of rule
    (data, GPU training, extraction, analysis, early exit, summaries, figures, claims) in a few
    minutes on two cores; each job pays a scheduler round trip and a Snakemake start inside it,
    so the whole smoke study (about 50 cluster jobs) would take half an hour here."""
    smoke = yaml.safe_load((project / "config/smoke.yaml").read_text())
    experiment = next(e for e in smoke["experiments"] if e["name"] == SMOKE)
    config = {"experiments": [{**experiment, "seeds": experiment["seeds"][:1],
                               "methods": ["standard", "aligned"], "depth_study": []}],
              "analysis": {"residual_ablation": None}}
    path = project / "config" / "slurm-smoke.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_smoke_study_runs_through_the_slurm_profile(slurm_cluster, tmp_path):
    project = copy_project(tmp_path)
    profile = fitted_profile(project)
    config = smoke_slice(project)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--workflow-profile", str(profile),
         "--configfile", "config/smoke.yaml", str(config)], cwd=project, env=slurm_cluster.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=CLUSTER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # snakemake cancels its jobs on SIGTERM
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"the smoke study did not finish within {CLUSTER_TIMEOUT_S} s on SLURM:\n"
                    f"{output[-3000:]}\n{slurm_cluster.logs()}")
    seconds = time.perf_counter() - started
    print(f"smoke study through SLURM: {seconds:.0f} s")
    assert proc.returncode == 0, output[-4000:] + "\n" + slurm_cluster.logs()

    results = project / "results"
    assert (results / "figures" / SMOKE / "layerwise_accuracy.png").stat().st_size > 1000
    assert len(list((results / "runs" / SMOKE).glob("*/seed0/model.safetensors"))) == 2
    # Every computing rule ran as a SLURM job, the GPU rules on the node's (fake) GPU...
    jobs = slurm_cluster.run("scontrol", "show", "job", "--oneliner").stdout.splitlines()
    rules = {}
    for line in jobs:
        rule = re.search(r"Comment=rule_([A-Za-z0-9_]+?)(?:_wildcards_\S*)?(?:\s|$)", line)
        state = re.search(r"JobState=(\w+)", line).group(1)
        assert state == "COMPLETED", line
        rules.setdefault(rule.group(1), []).append(bool(re.search(r"TresPerJob=\S*gpu", line)))
    assert {"prepare_data", "train", "analyze_exit_run"} <= set(rules), sorted(rules)
    assert all(rules["train"] + rules["analyze_exit_run"]), "GPU rules ran without a GPU"
    assert not any(rules["prepare_data"]), "a CPU rule asked for a GPU"
    # ...and the plots ran on the submitting host.
    assert not [r for r in rules if r.startswith("figure")], sorted(rules)
