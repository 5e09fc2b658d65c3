"""The install story stays consistent: pins, the conda file, the README commands and CI."""

import re

import yaml

from conftest import ROOT


def pins(lines):
    return sorted(line.strip() for line in lines if re.match(r"^[A-Za-z0-9_.-]+==\S+$", line.strip()))


def test_requirements_are_exact_pins():
    lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines and pins(lines) == sorted(l.strip() for l in lines)


def test_environment_yml_matches_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == pins((ROOT / "requirements.txt").read_text().splitlines())


def readme_commands():
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [l for l in block.splitlines() if l.strip() and not l.startswith("#")]


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    install_and_run, install_and_test = readme_commands()
    assert install_and_run.endswith("snakemake --cores all")
    assert install_and_test.endswith("pytest")
    ci = (ROOT / ".ci/run").read_text()
    assert install_and_test.replace(" -r ", " -q -r ") in ci or install_and_test in ci


def test_dvc_yaml_is_valid_yaml_with_a_study_stage():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert "snakemake" in dvc["stages"]["study"]["cmd"]
