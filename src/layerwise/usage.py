"""Run a job's command and record what it used, beside the job's log: CPU time of the command
and every process it waited for, their peak resident memory, the bytes they wrote, wall time.

    python -m layerwise.usage --beside LOG -- COMMAND [ARG ...]

writes LOG's name with `.usage.json` in place of its suffix (results/logs/train/x/seed0.log ->
seed0.usage.json) and exits with COMMAND's exit code. Snakemake's `benchmark:` samples a job's
processes at intervals, so a job's CPU time and memory peaks between samples go uncounted; the
kernel's own accounting of the children a process has waited for (getrusage(RUSAGE_CHILDREN))
misses nothing. Its peak memory is that of the largest process, not the sum of several running
at once (a job of several processes, torchrun's, reports its largest). Kept free of anything
heavy: it starts before every job.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from layerwise.io import write_json

SUFFIX = ".usage.json"


def record_path(log: str | Path) -> Path:
    log = Path(log)
    return log.with_name(log.stem + SUFFIX)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beside", required=True, help="the job's log; the record goes beside it")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    start = time.monotonic()
    returncode = subprocess.run(command).returncode
    wall = time.monotonic() - start
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    write_json(record_path(args.beside), {
        "wall_s": wall, "cpu_s": used.ru_utime + used.ru_stime, "user_s": used.ru_utime,
        "system_s": used.ru_stime,
        "max_rss_mb": used.ru_maxrss / 1024,           # Linux counts it in KiB
        "written_mb": used.ru_oublock * 512 / 1e6,      # blocks of 512 bytes
        "returncode": returncode})
    return returncode


if __name__ == "__main__":
    sys.exit(main())
