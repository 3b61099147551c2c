"""The task registry: what the layers that serve every task (report, ship, predict, serve, cli)
ask of one. A task is a facetl package with a task.py whose `TASK` is a `Task`, and a schema.py
with its settings (a core.schema.TaskSchema): a third task adds a package and touches nothing
else. Nothing here imports a task until asked for it by name, and a task.py imports no model
code until its functions run (`lazy`), so `facetl --help` and `facetl report` start at once."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facetl.core.comparison import Comparison

ROOT = Path(__file__).resolve().parents[1]  # src/facetl


@dataclass(frozen=True)
class Option:
    """An option of `facetl predict` that one task takes: `--<name>` (dashes for underscores)
    on the command line, `<name>` in `facetl serve`'s query, `name=` to the task's `predict`."""

    name: str
    help: str
    value_type: type = bool  # bool: a flag that takes no value
    metavar: str | None = None
    expects: str = ""  # what a wrong value is told it should be
    valid: Callable[[Any], bool] = lambda value: True
    served: bool = True  # False: the command line's only (it writes files where facetl runs)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def given(self, value: Any) -> bool:
        """Whether `value` asks for something (not None, not an unset flag)."""
        return value is not None and value is not False


@dataclass(frozen=True)
class Task:
    """One task, as the layers above it meet it. Functions take the model's model.json (`meta`)."""

    name: str
    made_by: str  # the command that trains its model (errors say it)
    load: Callable[..., Any]  # (models_root, loader) -> what `predict` needs
    predict: Callable[..., Any]  # facetl predict's per-task call, with its `options`
    manifest: Callable[[dict, Any], dict[str, Any]]  # (meta, Keras model) -> its manifest keys
    caller_feeds: Callable[[dict], str]  # what the exported network is fed, before the resize
    output_meaning: Callable[[dict], str]
    use: str  # the model card's intended use
    data_terms: str  # the terms of the data it learns from
    source_param: tuple[str, str]  # (param group, key): where its training source is named
    measured: Callable[[Path], list[str]]  # the card's lines, read from its metrics files
    limits: Callable[[dict], list[str]]  # the card's lines on what the manifest says of it
    comparison: Comparison  # its columns in `facetl report`, and the files they read
    options: tuple[Option, ...] = ()  # facetl predict's options its `predict` takes
    default: bool = False  # the task `facetl predict` and `serve` answer when none is named


def lazy(target: str) -> Callable[..., Any]:
    """The function "module:name", imported at its first call: a task.py names its model code
    without loading Keras (the command line reads the registry for its options)."""
    module, name = target.split(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call


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


def task_options() -> list[tuple[str, Option]]:
    """(task, option) for every option a registered task takes, task by task."""
    return [(kind.name, option) for kind in tasks() for option in kind.options]


def default_task() -> str:
    """The task answered when none is named: the one registered as the default."""
    [found] = [kind.name for kind in tasks() if kind.default]
    return found
