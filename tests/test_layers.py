"""The rules that keep the layout honest, read from the source with `ast`: benchmarks measure
facetl's public API and never run on test code (tests may import benchmarks, not the reverse);
the layers below the task packages never name a task (they ask the registry)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from benchmarks.workspace import REPO

BENCHMARKS = sorted((REPO / "benchmarks").glob("*.py"))


def imports(file: Path) -> list[tuple[str, str | None]]:
    """(module, name imported from it or None) for every absolute import in `file`, anywhere."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def breaches(file: Path) -> list[str]:
    """What `file` imports that a benchmark must not: tests/ code, or a private facetl name
    (a `_name` function or module)."""
    wrong = []
    for module, name in imports(file):
        parts = module.split(".") + ([name] if name else [])
        if parts[0] == "tests" or (parts[0] == "facetl" and any(
                part.startswith("_") and not part.startswith("__") for part in parts)):
            wrong.append(f"{module}:{name}" if name else module)
    return wrong


@pytest.mark.parametrize("file", BENCHMARKS, ids=lambda file: file.name)
def test_benchmarks_import_no_tests_and_no_private_facetl(file: Path) -> None:
    assert breaches(file) == []


def test_the_check_sees_a_test_import_and_a_private_name(tmp_path: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text("import tests.synthetic\n"
                      "def late():\n    from tests.e2e import run\n"
                      "from facetl.models.finetune import _sublayers, find_backbone\n"
                      "from facetl.__main__ import main\n")
    assert sorted(breaches(script)) == ["facetl.models.finetune:_sublayers", "tests.e2e:run",
                                        "tests.synthetic"]


# --- lower layers never name a task ---------------------------------------------------------

SRC = REPO / "src/facetl"
BELOW_THE_TASKS = sorted([*(path for layer in ("core", "data", "faces", "models", "inspect",
                                               "report", "ship")
                            for path in (SRC / layer).glob("*.py")),
                          SRC / "predict.py", SRC / "serve.py", SRC / "cli.py"])
TASK_WORD = re.compile(r"gender|keypoint", re.IGNORECASE)


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def task_words(file: Path) -> list[str]:
    """The code of `file` (names, imports, strings; not comments or docstrings) that names a
    task."""
    tree = ast.parse(file.read_text())
    skip = docstrings(tree)
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            words.append(node.name)
        elif isinstance(node, ast.arg):
            words.append(node.arg)
        elif isinstance(node, ast.alias):
            words.append(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            words.append(node.module)
    return [word for word in words if TASK_WORD.search(word)]


@pytest.mark.parametrize("file", BELOW_THE_TASKS, ids=lambda file: str(file.relative_to(SRC)))
def test_no_module_below_the_tasks_names_one(file: Path) -> None:
    assert task_words(file) == [], (f"{file.relative_to(SRC)} names a task: ask the registry "
                                    "(facetl.core.tasks)")


def test_the_task_check_sees_code_and_skips_prose(tmp_path: Path) -> None:
    module = tmp_path / "lower.py"
    module.write_text('"""About the gender task."""\n'
                      "from facetl.keypoints.predict import load  # gender\n"
                      "def f(task):\n"
                      '    """keypoints."""\n'
                      '    return task == "gender" or MADE_BY.keypoints\n')
    assert sorted(task_words(module)) == ["facetl.keypoints.predict", "gender", "keypoints"]


def test_a_task_package_never_imports_another() -> None:
    from facetl.core.tasks import task_names

    for name in task_names():
        for file in sorted((SRC / name).glob("*.py")):
            others = [module for module, _ in imports(file)
                      if module.split(".")[:2] in ([["facetl", other] for other in task_names()
                                                    if other != name])]
            assert others == [], f"{file.relative_to(SRC)} imports another task: {others}"


ABOVE_THE_TASKS = ("ship", "report", "predict", "serve", "cli", "__main__")


def test_a_task_package_imports_nothing_above_the_tasks() -> None:
    from facetl.core.tasks import task_names

    for name in task_names():
        for file in sorted((SRC / name).glob("*.py")):
            above = [module for module, _ in imports(file)
                     if module.split(".")[:2] in [["facetl", layer] for layer in ABOVE_THE_TASKS]]
            assert above == [], f"{file.relative_to(SRC)} imports a layer above it: {above}"
