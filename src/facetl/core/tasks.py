"""The task registry: what the layers that serve every task (ship, predict, serve, cli) ask of
one. A task is a facetl package with a task.py whose `TASK` is a `Task`, and a schema.py with
its settings (a core.schema.TaskSchema): a third task adds a package and touches nothing
else. Nothing here imports a task until asked for it by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # src/facetl



@dataclass(frozen=True)
class Task:
    """One task, as the layers above it meet it. Functions take the model's model.json (`meta`)."""

    name: str
    made_by: str  # the command that trains its model (errors say it)
    load: Callable[..., Any]  # (models_root) -> what `predict` needs
    predict: Callable[..., Any]  # facetl predict's per-task call
    manifest: Callable[[dict, Any], dict[str, Any]]  # (meta, Keras model) -> its manifest keys
    caller_feeds: Callable[[dict], str]  # what the exported network is fed, before the resize
    output_meaning: Callable[[dict], str]
    use: str  # the model card's intended use
    data_terms: str  # the terms of the data it learns from
    source_param: tuple[str, str]  # (param group, key): where its training source is named
    measured: Callable[[Path], list[str]]  # the card's lines, read from its metrics files
    limits: Callable[[dict], list[str]]  # the card's lines on what the manifest says of it
    options: tuple[str, ...] = ()  # facetl predict's options its `predict` takes


def task_names() -> list[str]:
    """The registered tasks: the facetl packages that hold a task.py (found on disk, not
    imported, so a stage's check imports only its own task's schema)."""
    return sorted(folder.name for folder in ROOT.iterdir() if (folder / "task.py").is_file())


def task(name: str) -> Task:
    """The registered task `name` (facetl.<name>.task's TASK)."""
    if name not in task_names():
        raise KeyError(name)
    return importlib.import_module(f"facetl.{name}.task").TASK


def tasks() -> list[Task]:
    """Every registered task, by name."""
    return [task(name) for name in task_names()]
