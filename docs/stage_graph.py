"""The stages of the three pipeline files and what feeds what, read from the files themselves:
the README's stage map (`stage_graph`) and the docs' claims of what a param change reruns
(tests/test_docs_claims.py) are drawn from here, never typed by hand."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from facetl.core.params import load_params, lookup

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("dvc.yaml", "pipelines/gender_ood/dvc.yaml", "pipelines/keypoints/dvc.yaml")


def resolve(text: str, params: dict[str, Any], item: str | None = None) -> str:
    """A dvc.yaml string with its `${a.b}` (and a foreach's `${item}`) filled in."""
    return re.sub(r"\$\{([^}]+)\}",
                  lambda m: item if m.group(1) == "item" else str(lookup(params, m.group(1))),
                  text)


def names(entries: list[Any]) -> list[str]:
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]


@cache
def stages() -> dict[str, dict[str, Any]]:
    """Every stage of the three pipeline files: its file, params, deps and outputs (metrics
    and plots included), paths from the repository root, `${...}` resolved with params.yaml.
    A foreach stage is one entry, `scratch@large / ...`, its params those of its first item."""
    params = load_params(ROOT / "params.yaml")
    found = {}
    for file in PIPELINES:
        for name, stage in yaml.safe_load((ROOT / file).read_text())["stages"].items():
            items = stage.get("foreach", [None])
            body = stage.get("do", stage)
            label = name if items == [None] else f"{name}@{' / '.join(items)}"
            found[label] = {
                "file": file,
                "params": [resolve(str(key), params, items[0]) for key in body.get("params", [])],
                "deps": [resolve(dep, params, item) for item in items
                         for dep in body.get("deps", [])],
                "outs": [resolve(out, params, item) for item in items
                         for kind in ("outs", "metrics", "plots")
                         for out in names(body.get(kind, []))]}
    return found


def feeds(out: str, dep: str) -> bool:
    """Whether a stage that depends on `dep` reads what `out` holds (one inside the other)."""
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


@cache
def stage_edges() -> frozenset[tuple[str, str]]:
    """(A, B) where B reads what A writes, reduced to the direct links: an edge A -> C that a
    path A -> B -> C already implies is left out."""
    found = stages()
    edges = {(a, b) for a in found for b in found if a != b
             and any(feeds(out, dep) for out in found[a]["outs"] for dep in found[b]["deps"])}

    def reaches(start: str, goal: str, skip: tuple[str, str]) -> bool:
        todo, seen = [start], set()
        while todo:
            node = todo.pop()
            for a, b in edges:
                if a == node and (a, b) != skip and b not in seen:
                    if b == goal:
                        return True
                    seen.add(b)
                    todo.append(b)
        return False

    return frozenset(edge for edge in edges if not reaches(*edge, skip=edge))


def downstream(stage_names: set[str]) -> set[str]:
    """These stages and every stage that reads, directly or not, what they write."""
    found, todo = set(stage_names), list(stage_names)
    while todo:
        node = todo.pop()
        for a, b in stage_edges():
            if a == node and b not in found:
                found.add(b)
                todo.append(b)
    return found


def reruns(key: str, file: str = "dvc.yaml") -> set[str]:
    """The stages of pipeline `file` that a `-S key=...` change reruns there: those that list
    the param (or a section holding it), then everything downstream of them."""
    direct = {name for name, stage in stages().items()
              if any(key == p or key.startswith(p + ".") for p in stage["params"])}
    return {name for name in downstream(direct) if stages()[name]["file"] == file}


def stage_graph(_: object) -> str:
    """The README's stage map, as a mermaid chart of every pipeline file's stages (a table
    renderer like the benchmarks', though it reads no results file)."""
    def node(name: str) -> str:
        return f'{name.split("@")[0]}["{name}"]' if "@" in name else name

    order = list(stages())
    lines = [f"  {node(a)} --> {node(b)}" for a, b in
             sorted(stage_edges(), key=lambda edge: (order.index(edge[0]), order.index(edge[1])))]
    return "```mermaid\nflowchart LR\n" + "\n".join(lines) + "\n```\n"
