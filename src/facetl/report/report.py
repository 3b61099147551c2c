"""One comparison of every run: the workspace and each DVC experiment, side by side.

A run's figures are read from the files the pipeline wrote (metrics JSON, per-image
predictions, params), from disk for the workspace and from git for experiments
(`refs/exps/...`), so the report needs no DVC lock and works inside `dvc repro`. Which files,
and the columns they fill, each registered task says (its `Comparison`).
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from facetl.core.atomic import atomic_path
from facetl.core.comparison import PLACES, Column, Comparison, Run
from facetl.core.schema import renamed
from facetl.core.tasks import tasks


def comparisons() -> list[Comparison]:
    return [task.comparison for task in tasks()]


def read_params(text: str | None) -> dict:
    """A run's params.yaml, whatever its age: old names read as their new ones (RENAMES),
    and YAML that does not parse as a mapping reads as no params. Nothing is validated:
    the report only labels runs with a few params, and an old run may lack them."""
    try:
        params = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return {}
    return renamed(params) if isinstance(params, dict) else {}


def read_run(name: str, read_text) -> Run | None:
    """A run from a `read_text(path) -> str | None` reader; None if it has no metrics."""
    metrics = {key: json.loads(text) for part in comparisons()
               for key, path in part.metrics.items() if (text := read_text(path))}
    if not metrics:
        return None
    tables = {key: pd.read_csv(io.StringIO(text)) for part in comparisons()
              for key, path in part.tables.items() if (text := read_text(path))}
    return Run(name, read_params(read_text("params.yaml")), metrics, tables)


def workspace_run(root: Path) -> Run | None:
    def read(path: str) -> str | None:
        file = root / path
        return file.read_text() if file.is_file() else None

    return read_run("workspace", read)


def experiment_commits(root: Path) -> list[tuple[str, str]]:
    """(name, commit) of every DVC experiment of the repository, from its git ref."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)",
                           "refs/exps"], cwd=root, capture_output=True, text=True)
    return [(ref.rsplit("/", 1)[-1], sha)
            for ref, sha in (line.split() for line in refs.stdout.splitlines())
            if not any(f"/{kind}/" in ref for kind in ("exec", "runs", "temp"))]  # DVC's own


def experiment_runs(root: Path) -> list[Run]:
    """Every DVC experiment of the repository, read from its commit."""
    runs = []
    for name, sha in experiment_commits(root):

        def read(path: str, sha: str = sha) -> str | None:
            shown = subprocess.run(["git", "show", f"{sha}:{path}"], cwd=root,
                                   capture_output=True, text=True)
            return shown.stdout if shown.returncode == 0 else None

        if (run := read_run(name, read)) is not None:
            runs.append(run)
    return runs


def unique_runs(runs: list[Run]) -> list[Run]:
    """Drop repeats: the workspace usually holds the last experiment's results too."""
    seen, kept = set(), []
    for run in runs:
        key = json.dumps(run.metrics, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(run)
    return kept


def columns(parts: list[Comparison]) -> list[Column]:
    """Every task's columns, place by place (`PLACES`), task by task within a place."""
    return [column for place in PLACES for part in parts
            for column in part.columns.get(place, ())]


def comparison_table(runs: list[Run], root: Path) -> pd.DataFrame:
    """A row per run, with every task's fields, then the rows of the workspace's other
    models."""
    parts = comparisons()
    rows = [{"run": run.name} for run in runs]
    for part in parts:
        for row, fields in zip(rows, part.rows(runs), strict=True):
            row.update(fields)
    names = ["run", *(name for column in columns(parts) for name in column.fields)]
    return pd.DataFrame(rows + [row for part in parts for row in part.more_rows(root)],
                        columns=names, dtype=object)  # object: keeps ints as ints


def markdown(table: pd.DataFrame) -> str:
    parts = comparisons()
    shown = columns(parts)
    lines = ["# Backbone comparison", ""]
    for part in parts:
        for note in part.notes:
            lines += [note, ""]
    lines += ["| run | " + " | ".join(column.header for column in shown) + " |",
              "|---|" + "---|" * len(shown)]
    for row in table.astype(object).where(table.notna(), None).to_dict("records"):
        lines.append("| " + " | ".join([row["run"], *(column.text(row) for column in shown)])
                     + " |")
    return "\n".join(lines) + "\n"


def build_report(root: Path = Path("."), out_dir: Path = Path("reports")) -> pd.DataFrame:
    """Write `comparison.md`, `comparison.csv` and each task's figures under out_dir."""
    # Experiments first: where the workspace repeats one, the row keeps the experiment's name.
    runs = unique_runs(experiment_runs(root) + [r for r in [workspace_run(root)] if r])
    table = comparison_table(runs, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "comparison.md") as tmp:
        tmp.write_text(markdown(table))
    with atomic_path(out_dir / "comparison.csv") as tmp:
        table.to_csv(tmp, index=False)
    for part in comparisons():
        if part.draw:
            part.draw(table, out_dir)
    return table
