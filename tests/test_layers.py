"""The rules that keep the layout honest, read from the source with `ast`: benchmarks measure
facetl's public API and never run on test code (tests may import benchmarks, not the reverse)."""

from __future__ import annotations

import ast
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
