"""Every DVC stage's deps cover the code it runs: the facetl modules its command imports,
followed transitively. An edit to any of them must rerun the stage, and only a dep can."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from benchmarks.workspace import REPO

SRC = REPO / "src"
PIPELINES = [REPO / "dvc.yaml", *sorted((REPO / "pipelines").glob("*/dvc.yaml"))]


def imported_modules(file: Path) -> set[str]:
    """Dotted facetl modules a file imports, anywhere in it (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from facetl.core import paths` imports the module facetl.core.paths
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in found if name.split(".")[0] == "facetl"}


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (a function), not a module


def import_closure(script: Path) -> set[Path]:
    """The script and every facetl file it reaches, packages' __init__ files included."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        for name in imported_modules(file):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                found = module_file(".".join(parts[:depth]))
                if found:
                    todo.append(found)
    return seen


def stages() -> list[tuple[str, dict, Path]]:
    """(name, stage, wdir) for every stage of every pipeline file, foreach items expanded."""
    listed = []
    for pipeline in PIPELINES:
        for name, stage in yaml.safe_load(pipeline.read_text())["stages"].items():
            wdir = (pipeline.parent / stage.get("wdir", ".")).resolve()
            if "foreach" in stage:
                for item in stage["foreach"]:
                    text = yaml.safe_dump(stage["do"]).replace("${item}", str(item))
                    listed.append((f"{name}@{item}", yaml.safe_load(text), wdir))
            else:
                listed.append((name, stage, wdir))
    return listed


def script_of(stage: dict) -> str:
    match = re.match(r"python (\S+\.py)", stage["cmd"])
    assert match, f"a stage runs `python stages/<file>.py`: {stage['cmd']}"
    return match.group(1)


def uncovered(stage: dict, wdir: Path) -> list[str]:
    deps = [(wdir / str(dep)).resolve() for dep in stage.get("deps", [])]
    needed = import_closure((wdir / script_of(stage)).resolve())
    return sorted(str(file.relative_to(REPO)) for file in needed
                  if not any(file == dep or dep in file.parents for dep in deps))


@pytest.mark.parametrize("name,stage,wdir", stages(), ids=[s[0] for s in stages()])
def test_stage_deps_cover_the_code_it_imports(name: str, stage: dict, wdir: Path) -> None:
    missing = uncovered(stage, wdir)
    assert not missing, f"stage {name} imports code that is not among its deps: {missing}"


def test_the_check_sees_an_import_behind_a_package(tmp_path: Path) -> None:
    """The closure follows `from facetl.x import module` into that module's own imports."""
    closure = import_closure(REPO / "stages" / "train_gender.py")
    names = {str(f.relative_to(SRC)) for f in closure if SRC in f.parents}
    assert "facetl/core/paths.py" in names  # imported as `from facetl.core import paths`
    assert "facetl/models/heads.py" in names  # two hops: train -> head -> heads


def test_stage_scripts_are_one_entry_each() -> None:
    """One thin entry per stage: each script in stages/ is run by some stage."""
    scripts = {script_of(stage) for _, stage, _ in stages()}
    on_disk = {f"stages/{f.name}" for f in (REPO / "stages").glob("*.py")}
    assert on_disk == scripts
