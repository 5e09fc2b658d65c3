"""A job's own usage record (layerwise.usage) against what a child process is known to use."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

CHILD = """
import os, time
start = time.process_time()
while time.process_time() - start < 0.5:   # half a second of CPU
    pass
block = bytearray(200 * 2**20)              # 200 MiB resident
block[::4096] = b"x" * len(block[::4096])
with open(os.environ["OUT"], "wb") as out:
    out.write(os.urandom(2**20))
raise SystemExit(3)
"""


def test_the_record_counts_the_childs_cpu_and_peak_memory_and_keeps_its_exit_code(tmp_path):
    log = tmp_path / "logs" / "train" / "seed0.log"
    done = subprocess.run(
        [sys.executable, "-m", "layerwise.usage", "--beside", str(log), "--", sys.executable,
         "-c", CHILD], env={**os.environ, "OUT": str(tmp_path / "out.bin")},
        capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    record = json.loads((tmp_path / "logs" / "train" / "seed0.usage.json").read_text())
    assert record["returncode"] == 3
    assert 0.5 <= record["cpu_s"] <= record["wall_s"] + 0.5
    assert record["max_rss_mb"] >= 200
    assert record["written_mb"] >= 0


def test_every_rule_runs_its_command_under_the_usage_record():
    """The runtime table reads these records, so a rule without one would go uncounted."""
    from conftest import ROOT

    rules = 0
    for path in (ROOT / "workflow").rglob("*.smk"):
        text = path.read_text()
        firsts = re.findall(r'\n\s+shell:\n\s+"([^"]*)"', text)
        assert len(firsts) == len(re.findall(r"\n\s+shell:", text)), path.name
        assert set(firsts) <= {"python -m layerwise.usage --beside {log:q} --"}, path.name
        rules += len(firsts)
    assert rules >= 16
