"""Nothing is unpickled, YAML is loaded safely, no config value reaches a shell unquoted, and no
wildcard value can form a path outside results/."""

import re

import pytest

from conftest import ROOT, snakemake

SOURCES = [p for d in ("src", "scripts", "workflow", "benchmarks")
           for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".smk") or p.name == "Snakefile"]

# Shell params that are assembled in Python with shlex.quote (a rule's output options) or hold
# a number only; every setting reaches a script inside its quoted --spec.
PREQUOTED_PARAMS = {"outputs", "processes"}


def test_sources_were_found():
    assert len(SOURCES) > 20


@pytest.mark.parametrize("pattern, why", [
    (r"\bimport pickle\b|\bpickle\.load", "pickle"),
    (r"\byaml\.load\((?![^)]*Loader=_UniqueKeyLoader)|\byaml\.unsafe_load|yaml\.Loader\b|"
     r"FullLoader|UnsafeLoader", "unsafe YAML loading"),
    (r"\bnp\.load\([^)]*allow_pickle\s*=\s*True", "numpy pickles"),
    (r"(?<![.\w])eval\(|(?<![.\w])exec\(", "eval of strings"),
])
def test_no_unsafe_loading(pattern, why):
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES if re.search(pattern, p.read_text())]
    assert not offenders, f"{why} in {offenders}"


def test_the_yaml_loader_of_configs_is_safe():
    import yaml

    from layerwise.study.config import _UniqueKeyLoader

    assert issubclass(_UniqueKeyLoader, yaml.SafeLoader)


def test_every_torch_load_is_weights_only():
    for path in SOURCES:
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
            assert "weights_only=True" in call, f"{path}: {call}"


def test_shell_commands_quote_every_config_value():
    for path in (ROOT / "workflow").rglob("*.smk"):
        for name in re.findall(r"\{params\.(\w+)\}", path.read_text()):
            assert name in PREQUOTED_PARAMS, f"{path.name}: {{params.{name}}} is not quoted"
        for field in re.findall(r"\{(?:input|output|log)(?:\.\w+)?(?::(\w+))?\}",
                                path.read_text()):
            assert field == "q", f"{path.name}: a file path is used unquoted in a shell command"


@pytest.mark.workflow
@pytest.mark.slow
@pytest.mark.parametrize("target", [
    "results/runs/../../outside/standard/seed0/model.safetensors",
    "results/figures/a/b/layerwise_accuracy.png",
    "results/runs/vit_digits/standard/seed0;rm -rf x/model.safetensors",
])
def test_wildcards_cannot_leave_their_folders(fresh_project, target):
    run = snakemake(fresh_project, "-n", target)
    assert run.returncode != 0
    assert "No rule to produce" in run.stdout + run.stderr
