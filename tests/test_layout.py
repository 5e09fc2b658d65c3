"""The library's shape: stage packages whose imports point down the table below and form no
cycle, no module reading another's private names, and modules the workflow imports at parse
time that stay free of torch."""

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


def imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement of the module `name` at `path`,
    wherever it stands: at module level, inside a function, under TYPE_CHECKING. What a module
    depends on is what any of its code imports, not only what runs when it is imported: a lazy
    import hides a cycle from the interpreter, not from the reader."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((module, [alias.name for alias in node.names]))
    return found


def resolve(name: str, names: list[str]) -> list[str]:
    """The project modules an import statement loads (a `from package import module` loads the
    submodule too)."""
    hits = [name] if name in MODULES else []
    hits += [f"{name}.{n}" for n in names if f"{name}.{n}" in MODULES]
    return hits


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in its code)."""
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imported, names in imports(name, path):
            for target in resolve(imported, names):
                targets.add(target)
                parts = target.split(".")  # importing a.b.c imports the packages a.b and a
                targets.update(".".join(parts[:i]) for i in range(2, len(parts)))
        targets.discard(name)
        edges[name] = {t for t in targets if not name.startswith(t + ".")}  # a parent package
    return edges


def test_the_stage_packages_exist():
    stages = {"data", "baselines", "models", "train", "hidden", "similarity", "exits", "report",
              "claims", "study"}
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


def test_the_graph_reads_imports_inside_functions_and_type_checking_blocks():
    edges = graph()
    assert "layerwise.train.methods" in edges["layerwise.study.config"]  # inside a function
    assert "layerwise.models.base" in edges["layerwise.train.methods"]   # under TYPE_CHECKING


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# Which package may import which. The stages, top to bottom: the study (config, plan); what a
# reader sees (report, claims); the analyses (exits, similarity, hidden); training; the models,
# the data and the models without hidden layers fitted on it (baselines). Hidden's token
# analysis streams a language model's exits and similarities, the one import sideways. Every
# package may import the utilities, which import only each other.
MAY_IMPORT = {
    "study": {"report", "claims", "exits", "similarity", "hidden", "train", "models", "data",
              "baselines"},
    "report": {"exits", "similarity", "hidden", "train", "models", "data", "baselines"},
    "claims": {"exits", "similarity", "hidden", "train", "models", "data", "baselines"},
    "hidden": {"exits", "similarity", "train", "models", "data"},
    "exits": {"train", "models", "data"},
    "similarity": {"train", "models", "data"},
    "train": {"models", "data"},
    "models": set(),
    "baselines": {"data"},
    "data": set(),
}
UTILITIES = {"cli", "devices", "errors", "io", "provenance", "reference", "seeding", "usage"}


def part(module: str) -> str:
    """The package (or utility module) a module of the library belongs to."""
    return module.split(".")[1] if "." in module else module


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Every import of `edges` (module -> modules) that the table does not allow."""
    found = []
    for source, targets in sorted(edges.items()):
        if source == "layerwise":
            continue
        mine = part(source)
        allowed = UTILITIES if mine in UTILITIES else MAY_IMPORT[mine] | UTILITIES | {mine}
        found += [f"{source} imports {t}" for t in sorted(targets)
                  if t != "layerwise" and part(t) not in allowed]
    return found


def test_the_table_places_every_package_and_points_one_way():
    parts = {part(m) for m in MODULES if m != "layerwise"}
    assert parts == set(MAY_IMPORT) | UTILITIES
    assert find_cycle(MAY_IMPORT) is None
    assert upward_imports({"layerwise.models.base": {"layerwise.train.methods"}})
    assert upward_imports({"layerwise.io": {"layerwise.data.prepared"}})
    assert not upward_imports({"layerwise.train.loop": {"layerwise.models.base",
                                                        "layerwise.io"}})


def test_imports_point_down():
    offenders = upward_imports(graph())
    assert not offenders, "imports against the table in test_layout.py: " + "; ".join(offenders)


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
