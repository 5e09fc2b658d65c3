#!/usr/bin/env bash
# Install what the cluster test (tests/test_slurm.py) needs: a single-node SLURM (controller,
# node daemon, client commands) and munge, from the Debian packages. Idempotent: when they are
# already installed it does nothing, so the README's test command can always call it.
# Without root (and without sudo) it only says what is missing; the test then fails in CI
# (CI=true) and is skipped elsewhere, naming the reason.
set -euo pipefail

binaries=(/usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/bin/squeue /usr/sbin/munged)
missing=()
for binary in "${binaries[@]}"; do
    [ -x "$binary" ] || missing+=("$binary")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "tests/slurm/install.sh: ${missing[*]} missing and no root to install them" \
         "(apt-get install slurmctld slurmd slurm-client munge); the SLURM test will not run" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
echo "tests/slurm/install.sh: installed $(/usr/sbin/slurmctld -V)"
