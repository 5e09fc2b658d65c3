"""The library's shape: stage packages without import cycles, no module reading another's private
names, and modules the workflow imports at parse time that stay free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "layerwise"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def top_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import run when `path` is imported: statements at
    module level (including under `if`/`try`), not inside functions or TYPE_CHECKING blocks."""
    found = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((alias.name, []) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((node.module, [alias.name for alias in node.names]))
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def resolve(name: str, names: list[str]) -> list[str]:
    """The project modules an import statement loads (a `from package import module` loads the
    submodule too)."""
    hits = [name] if name in MODULES else []
    hits += [f"{name}.{n}" for n in names if f"{name}.{n}" in MODULES]
    return hits


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imported, names in top_level_imports(path):
            for target in resolve(imported, names):
                targets.add(target)
                parts = target.split(".")  # importing a.b.c imports the packages a.b and a
                targets.update(".".join(parts[:i]) for i in range(2, len(parts)))
        targets.discard(name)
        edges[name] = {t for t in targets if not name.startswith(t + ".")}  # a parent package
    return edges


def test_the_stage_packages_exist():
    stages = {"data", "models", "train", "hidden", "similarity", "exits", "report", "claims",
              "study"}
    assert stages <= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the directed graph `edges` as a path that returns to its start, or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    edges = graph()
    assert "layerwise.devices" in edges["layerwise.hidden.extract"]  # the graph is read
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("layerwise"):
                offenders += [f"{name} imports {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert not offenders, offenders


@pytest.mark.parametrize("module", ["layerwise.study.plan", "layerwise.study.config",
                                    "layerwise.models", "layerwise.train.methods",
                                    "layerwise.exits.policies", "layerwise.similarity.measures",
                                    "layerwise.claims", "layerwise.data.sources"])
def test_registries_and_the_plan_import_without_torch(module):
    """The workflow reads them when it parses the Snakefile, which must answer at once."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'snakemake', " \
           "'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC)})
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["layerwise.report.figures", "layerwise.report.exit_figures",
                                    "layerwise.report.summary", "layerwise.report.exit_tables"])
def test_figure_and_table_modules_import_without_torch(module):
    """A figure job starts in about a second when it does not pay for torch's import."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC)})
    assert out.stdout.strip() == "False"
