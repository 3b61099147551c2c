"""A task's part of `facetl report`, the table of every run (the workspace and each DVC
experiment) side by side: the files it reads of each run, the fields it adds to each run's row,
and the columns that show them. The report lays the columns out place by place (`PLACES`) and,
within a place, task by task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PLACES = ("model", "score", "cost")  # what a run trained, how good it is, what it took


@dataclass(frozen=True)
class Run:
    """One run as the report read it: its params, and its files by the keys the tasks'
    comparisons give them (metrics JSON, tables)."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, dict]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A column: its header, the row fields it shows (comparison.csv's columns) and its text
    in comparison.md (from a row whose blank fields are None)."""

    header: str
    fields: tuple[str, ...]
    text: Callable[[dict[str, Any]], str]


def shown(value: Any, digits: int = 3) -> str:
    """A cell: a float to `digits` places, any other value as it is, None as blank."""
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def plain(header: str, name: str, digits: int = 3) -> Column:
    """The column of one field, `shown`."""
    return Column(header, (name,), lambda row: shown(row.get(name), digits))


@dataclass(frozen=True)
class Comparison:
    """A task's columns, and what they are computed from."""

    metrics: dict[str, str]  # key -> a metrics JSON of a run (path in the repository)
    rows: Callable[[list[Run]], list[dict[str, Any]]]  # each run's fields, in the runs' order
    columns: dict[str, tuple[Column, ...]]  # by place (PLACES)
    tables: dict[str, str] = field(default_factory=dict)  # key -> a CSV of a run
    notes: tuple[str, ...] = ()  # paragraphs above the table, on its columns
    # Rows of the workspace's other models (trained beside a run's own), and the figures drawn
    # from the whole table into the report's folder.
    more_rows: Callable[[Path], list[dict[str, Any]]] = lambda root: []
    draw: Callable[[pd.DataFrame, Path], None] | None = None
