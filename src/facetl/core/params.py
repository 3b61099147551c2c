"""Reading `params.yaml`: the one place every stage takes its knobs from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from facetl.core.errors import FacetlError


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FacetlError(f"{path}: no such file; run the stage from the repository root")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise FacetlError(f"{path}: not valid YAML: {one_line(exc)}") from exc
    if not isinstance(params, dict):
        raise FacetlError(f"{path}: expected a mapping of parameter groups")
    return params


def one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: what is wrong, and at which line and column."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}".replace("\n", " ")


def lookup(params: dict[str, Any], dotted: str) -> Any:
    """Return `params[a][b][c]` for "a.b.c", with an error naming the missing key."""
    node: Any = params
    for depth, key in enumerate(dotted.split(".")):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(dotted.split(".")[:depth]) or "the top level"
            raise FacetlError(f"params.yaml: missing `{dotted}` (no `{key}` under {where})")
        node = node[key]
    return node


def find(params: dict[str, Any], dotted: str) -> Any:
    """`params[a][b][c]` for "a.b.c", or None where the params lack it or have another shape
    (an old run's, read by `facetl report`)."""
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
