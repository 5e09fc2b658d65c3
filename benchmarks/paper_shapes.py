"""config/paper.yaml run to the end offline, at the paper's model shapes, on this machine.

    python -m benchmarks.paper_shapes --out /tmp/paper_shapes [--experiments a,b | all]
                                      [--cores 2] [--keep-going] [--table-only]

The paper's experiments (by default all but three of the six GLUE tasks, whose shapes SST-2,
MRPC and MNLI cover: one sentence, a pair scored by F1, three classes; `all`, or those named)
run through every rule of the paper DAG
with the paper's models at their shapes (DeiT-S at 224 with 16 x 16 patches and at 32 with
4 x 4, BERT-base, GPT-2 124M with its 50,257-token vocabulary and, for multi-exit, eleven
vocabulary-wide heads) and the paper's batch sizes, on stand-in data of the downloads' shapes
(benchmarks/stand_ins.py): what changes is how much data and how many steps, never a shape.
Each run trains two steps (so that an alternating method takes a step of each kind), one seed,
no torch.compile (a CPU); ImageNet keeps 256 test images, and real early exit is timed once on
256 samples in one batch of the paper's 256. GPT-2 trains one micro-batch of the paper's step
(8 sequences; a step of 128 repeats it 16 times), and on this CPU every step runs in
micro-batches (CPU_MICRO_BATCH) whose float32 activations
two jobs at once can hold: the same gradient, less memory.

The project is copied to OUT/project and run there with a private hub cache (OUT/hf) and
HF_HUB_OFFLINE=1. Each job records its own CPU time, peak resident memory and bytes written
(layerwise.usage); the table set beside them is what each job declared: the rule's local
`mem_mb` and the SLURM profile's (workflow/profiles/slurm/config.yaml). Prints the table in
Markdown (per rule and experiment: jobs, the largest peak memory, CPU and wall time, bytes
written, the declared limits) and one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks import stand_ins

ROOT = Path(__file__).resolve().parents[1]
GLUE_ROWS = {"train": 160, "test": 64}
WIKITEXT_ARTICLES = {"train": 64, "validation": 24, "test": 24}
IMAGENET_PER_CLASS = {"train": 1, "val": 1}
VISION_SAMPLES = {"train_samples": 640, "test_samples": 256}
STEPS = 2
# Micro-batches that keep two jobs' float32 activations within this machine's 24 GB (a step of
# the paper's batch still runs whole, in parts): ViT 32 images, BERT 8 and GPT-2 2 sequences.
CPU_MICRO_BATCH = {"vit": 32, "bert": 8, "gpt2": 2}
# GLUE tasks of the same shapes as those run: left out by default, to stay within an hour
SAME_SHAPES = ("bert_qnli", "bert_rte", "bert_qqp")
# experiments whose models this machine cannot hold, never run here
EXCEEDS_MACHINE = {"llama3_wikitext103": "Llama 3 8B's weights alone take 32 GB in float32, "
                                         "beyond this machine's 24 GB"}


def stand_in_datasets(datasets: dict, inputs: Path) -> dict:
    """The paper's datasets with each download replaced by its stand-in of the same shape."""
    out = {}
    for name, spec in datasets.items():
        spec = dict(spec)
        source = spec["source"]
        if source in ("cifar10", "mnist"):
            channels, side = (3, 32) if source == "cifar10" else (1, 28)
            spec = {"source": "generated", "image_size": side, "val_fraction": 0.25,
                    "split_seed": spec.get("split_seed", 0),
                    "generated": {"channels": channels, "num_classes": 10, **VISION_SAMPLES}}
        elif source == "imagenet":
            # one image per class and split: val_fraction of the training images cannot be
            # stratified, so it is a share large enough to hold a few hundred
            spec.update(root=str(inputs / "imagenet"), val_fraction=0.25,
                        max_samples={"test": VISION_SAMPLES["test_samples"]})
        elif source == "glue":
            spec["glue"] = {**spec["glue"], "repository": str(inputs / "glue")}
            spec["val_fraction"] = 0.2
        elif source == "wikitext":
            spec["wikitext"] = {**spec["wikitext"], "repository": str(inputs / "wikitext")}
        out[name] = spec
    return out


def default_experiments(paper: dict) -> list[str]:
    """Every experiment of the paper config this machine can hold, but the GLUE tasks whose
    shapes the others cover."""
    return [e["name"] for e in paper["experiments"]
            if e["name"] not in SAME_SHAPES and e["name"] not in EXCEEDS_MACHINE]


def shape_config(paper: dict, inputs: Path, experiments: list[str] | None) -> dict:
    """config/paper.yaml with stand-in data, a few steps per run and one seed; shapes kept."""
    too_large = sorted(set(experiments or ()) & set(EXCEEDS_MACHINE))
    if too_large:
        raise SystemExit("; ".join(f"{name} cannot run here: {EXCEEDS_MACHINE[name]}"
                                   for name in too_large))
    chosen = [e for e in paper["experiments"] if e["name"] not in EXCEEDS_MACHINE
              and (not experiments or e["name"] in experiments)]
    missing = set(experiments or ()) - {e["name"] for e in chosen}
    if missing:
        raise SystemExit(f"no experiment {', '.join(sorted(missing))} in config/paper.yaml")
    used = {e["dataset"] for e in chosen}
    runs = []
    for experiment in chosen:
        if "train" not in experiment:   # analysis only: a checkpoint as published
            runs.append({**experiment, "seeds": [0]})
            continue
        train = {**experiment["train"], "epochs": 1, "steps_per_epoch": STEPS,
                 "warmup_epochs": 0, "compile": False}
        # a step of several micro-batches repeats one micro-batch's memory: one is enough
        train["batch_size"] = train.pop("micro_batch_size", None) or train["batch_size"]
        # float32 activations on a CPU: a BERT-base step of 32 x 256 tokens holds 12 GB
        cpu_micro = CPU_MICRO_BATCH.get(experiment["model"]["arch"])
        if cpu_micro and cpu_micro < train["batch_size"]:
            train["micro_batch_size"] = cpu_micro
        if train.get("schedule") == "multistep":
            train["milestones"] = []
        run = {**experiment, "seeds": [0], "train": train}
        if {"tuned_lens", "aligned_lens"} & set(experiment["methods"]):   # a lens: its steps too
            run["tuned_lens"] = {**experiment.get("tuned_lens", {}), "steps": STEPS}
        runs.append(run)
    config = {**paper, "experiments": runs,
              "datasets": stand_in_datasets({k: v for k, v in paper["datasets"].items()
                                             if k in used}, inputs)}
    analysis = dict(config["analysis"])
    analysis["train_samples"] = 256
    if analysis.get("residual_ablation") and not {
            *analysis["residual_ablation"].values()} <= {e["name"] for e in runs}:
        analysis.pop("residual_ablation")
    config["analysis"] = analysis
    exits = dict(config["exits"])
    # real early exit timed once at the paper's batch (its largest), with no warm-up pass: the
    # timing's passes over the test split cost most of a classifier's analysis, and batch 1 runs
    # the same code
    exits["timing"] = {**exits["timing"], "batch_sizes": exits["timing"]["batch_sizes"][-1:],
                       "samples": VISION_SAMPLES["test_samples"], "warmup": 0, "repeats": 1}
    # the language model's decoding at its shapes, on fewer prompts, tokens and settings: the
    # speculative search runs every (exit, draft length, head, threshold) on every prompt
    # (partial sections: Snakemake merges them into the default config's)
    exits["decoding"] = {**exits.get("decoding", {}), "steps": 8}
    exits["speculative"] = {**exits.get("speculative", {}), "exit_layers": [6],
                            "draft_lengths": [4], "stop_thresholds": [0.2], "prompts": 2,
                            "steps": 8}
    exits["generation"] = {**exits.get("generation", {}), "prefixes": 2, "new_tokens": 16}
    config["exits"] = exits
    return config


def write_stand_ins(out: Path, config: dict) -> None:
    """The hub cache and the datasets the chosen experiments read (kept when already there)."""
    from layerwise.data.sources import GLUE_TASKS

    generator = np.random.default_rng(0)
    vocabulary = stand_ins.words(60000, generator)
    hub = out / "hf" / "hub"
    if not (hub / "models--gpt2").exists():
        stand_ins.hub_cache(hub, vocabulary[:stand_ins.BERT_VOCAB - 5], vocabulary)
    inputs = out / "inputs"
    sources = {spec["source"]: spec for spec in config["datasets"].values()}
    tasks = {spec["glue"]["task"] for spec in config["datasets"].values()
             if spec["source"] == "glue"}
    if tasks and not (inputs / "glue").exists():
        stand_ins.glue_folder(inputs / "glue", {t: GLUE_TASKS[t] for t in GLUE_TASKS},
                              vocabulary[:stand_ins.BERT_VOCAB - 5], GLUE_ROWS, generator)
    if "wikitext" in sources and not (inputs / "wikitext").exists():
        stand_ins.wikitext_folder(inputs / "wikitext", sources["wikitext"]["wikitext"]["config"],
                                  vocabulary, WIKITEXT_ARTICLES, generator)
    if "imagenet" in sources and not (inputs / "imagenet").exists():
        stand_ins.image_tree(inputs / "imagenet", 1000, IMAGENET_PER_CLASS, generator)


# --- what each job used against what it declared --------------------------------------------
def declared_local(snakemake_log: str) -> dict[str, int]:
    """{job log path: mem_mb} from the `resources:` line of each job Snakemake printed."""
    declared = {}
    for block in snakemake_log.split("\nrule ")[1:] + snakemake_log.split("\nlocalrule ")[1:]:
        log = re.search(r"^\s+log: (\S+?),?$", block, re.MULTILINE)
        mem = re.search(r"mem_mb=(\d+)", block)
        if log and mem:
            declared[log.group(1)] = int(mem.group(1))
    return declared


def declared_slurm(profile: Path) -> dict[str, int]:
    """{rule: mem_mb} the SLURM profile asks for, "*" for its default."""
    settings = yaml.safe_load(profile.read_text())
    declared = {"*": int(settings["default-resources"]["mem_mb"])}
    for rule, resources in (settings.get("set-resources") or {}).items():
        if "mem_mb" in resources:
            declared[rule] = int(resources["mem_mb"])
    return declared


def usage_rows(project: Path, local: dict[str, int], slurm: dict[str, int]) -> list[dict]:
    rows = []
    logs = project / "results" / "logs"
    for record in sorted(logs.rglob("*.usage.json")):
        used = json.loads(record.read_text())
        relative = record.relative_to(logs)
        name = "/".join(relative.parts).removesuffix(".usage.json")
        rule, _, job = name.partition("/")   # a job of no wildcards logs as logs/<rule>.log
        log = next((path for path in local if path.startswith(
            f"results/logs/{name}.")), None)
        rows.append({"rule": rule, "job": job, "max_rss_mb": used["max_rss_mb"],
                     "cpu_s": used["cpu_s"], "wall_s": used["wall_s"],
                     "written_mb": used["written_mb"], "returncode": used["returncode"],
                     "declared_mb": local.get(log), "slurm_mb": slurm.get(rule, slurm["*"])})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """One row per rule: its jobs, the largest peak memory (and whose), CPU, disk, declared."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["rule"], []).append(row)
    table = []
    for rule, group in groups.items():
        largest = max(group, key=lambda r: r["max_rss_mb"])
        table.append({"rule": rule, "jobs": len(group), "max_rss_mb": largest["max_rss_mb"],
                      "largest": largest["job"], "cpu_s": sum(r["cpu_s"] for r in group),
                      "max_wall_s": max(r["wall_s"] for r in group),
                      "written_mb": max(r["written_mb"] for r in group),
                      "declared_mb": max((r["declared_mb"] or 0) for r in group) or None,
                      "slurm_mb": largest["slurm_mb"]})
    return sorted(table, key=lambda r: -r["cpu_s"])


def per_experiment(rows: list[dict], rules=("train", "fit_lens", "analyze_run",
                                            "analyze_exit_run", "analyze_tokens")) -> str:
    """Markdown: per experiment, the runs' jobs (largest memory, CPU, most written)."""
    lines = ["| experiment | rule | jobs | peak memory (MB) | CPU s | written (MB) |",
             "|" + " --- |" * 6]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["rule"] in rules:
            groups.setdefault((row["job"].split("/")[0], row["rule"]), []).append(row)
    for (experiment, rule), group in sorted(groups.items()):
        lines.append(f"| {experiment} | {rule} | {len(group)} | "
                     f"{max(r['max_rss_mb'] for r in group):,.0f} | "
                     f"{sum(r['cpu_s'] for r in group):,.0f} | "
                     f"{max(r['written_mb'] for r in group):,.0f} |")
    return "\n".join(lines)


def markdown(table: list[dict]) -> str:
    lines = ["| rule | jobs | peak memory (MB) | its job | CPU s | longest job (s) | "
             "most written (MB) | declared mem_mb: rule / SLURM |", "|" + " --- |" * 8]
    for r in table:
        declared = "-" if r["declared_mb"] is None else f"{r['declared_mb']:,}"
        lines.append(f"| {r['rule']} | {r['jobs']} | {r['max_rss_mb']:,.0f} | {r['largest']} | "
                     f"{r['cpu_s']:,.0f} | {r['max_wall_s']:,.0f} | {r['written_mb']:,.0f} | "
                     f"{declared} / {r['slurm_mb']:,} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (reused)")
    parser.add_argument("--experiments", default=None,
                        help="comma-separated experiment names, or all (default: all but "
                             f"{', '.join(SAME_SHAPES)}; never {', '.join(EXCEEDS_MACHINE)})")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep-going", action="store_true")
    parser.add_argument("--table-only", action="store_true",
                        help="only read the records of an earlier run in OUT")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    project = out / "project"
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    chosen = (None if args.experiments == "all" else args.experiments.split(",")
              if args.experiments else default_experiments(paper))
    config = shape_config(paper, out / "inputs", chosen)
    log_path = out / "snakemake.log"
    wall = None
    if not args.table_only:
        for part in ("workflow", "scripts", "config", "src"):   # this checkout's code, anew
            shutil.rmtree(project / part, ignore_errors=True)
            shutil.copytree(ROOT / part, project / part,
                            ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "environment.yml", project)   # the rules' conda environment
        (project / "config" / "paper_shapes.yaml").write_text(yaml.safe_dump(config))
        started = time.perf_counter()
        write_stand_ins(out, config)
        prepared = time.perf_counter() - started
        env = {**os.environ, "HF_HOME": str(out / "hf"), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores),
                   "--configfile", "config/paper_shapes.yaml", "--printshellcmds",
                   "--rerun-incomplete"]
        command += ["--keep-going"] * args.keep_going
        started = time.perf_counter()
        with open(log_path, "w") as log:
            run = subprocess.run(command, cwd=project, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        wall = time.perf_counter() - started
        print(f"stand-ins {prepared:.0f} s; snakemake exit {run.returncode} in {wall:.0f} s "
              f"(log: {log_path})", file=sys.stderr)
    rows = usage_rows(project, declared_local(log_path.read_text()),
                      declared_slurm(ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"))
    table = summary(rows)
    print(markdown(table) + "\n\n" + per_experiment(rows))
    print(json.dumps({"experiments": [e["name"] for e in config["experiments"]],
                      "wall_s": wall, "cpu_s": sum(r["cpu_s"] for r in rows),
                      "jobs": len(rows), "failed": [r["job"] for r in rows if r["returncode"]],
                      "table": table}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
