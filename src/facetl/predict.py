"""Inference from the pipeline's saved models: image files, folders or glob patterns in,
JSON-ready dicts out (one per file, in input order; unreadable files as error entries)."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from facetl.core.errors import FacetlError
from facetl.core.tasks import Option, task_names, task_options
from facetl.core.tasks import task as registered
from facetl.models.inference import Loader

TASKS = tuple(task_names())  # the registered tasks (facetl.core.tasks)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files as given; a folder -> its image files (sorted); a glob pattern -> its matches.

    A name that is none of these stays, so it gets its own "no such image file" entry.
    """
    files: list[str] = []
    for item in inputs:
        if Path(item).is_dir():
            files += sorted(str(f) for f in Path(item).iterdir()
                            if f.suffix.lower() in IMAGE_SUFFIXES)
        elif any(c in item for c in "*?[") and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise FacetlError(f"{item}: the pattern matches no file")
            files += matches
        else:
            files.append(item)
    return files


def naming(error: str, image: str) -> str:
    """An entry's error that names its file: a message from deeper down (the face front end)
    may not, and a line in a list of failures must say which photo it is about."""
    return error if image in error else f"{image}: {error}"


def runtime_loader(runtime: str) -> Loader | None:
    """None for Keras (each task's own loader); else the loader of that format's exports."""
    if runtime == "keras":
        return None
    from facetl.ship.runtime import exported_loader  # here: only this route needs it

    return exported_loader(runtime)


def load_models(tasks: list[str], models_root: Path,
                runtime: str = "keras") -> dict[str, tuple]:
    """Each task's (model, model.json), for callers that predict many times (`facetl serve`)."""
    load = runtime_loader(runtime)
    return {task: registered(task).load(models_root, load) for task in tasks}


def misplaced(tasks: list[str], options: dict[str, Any]) -> tuple[str, Option] | None:
    """The first option given that belongs to a task not asked for, with that task."""
    return next(((owner, option) for owner, option in task_options()
                 if owner not in tasks and option.given(options.get(option.name))), None)


def predict(tasks: list[str], inputs: list[str], models_root: Path,
            options: dict[str, Any] | None = None, loaded: dict[str, tuple] | None = None,
            runtime: str = "keras") -> list[dict]:
    """Every task's predictions merged per file; a file's error ends its entry.

    `options`: values of the tasks' own options by name (`task_options`; each task gets its
    own). `loaded`: models from `load_models` (the others load from `models_root`). `runtime`:
    onnx runs the networks `facetl export` wrote in `models_root/<task>/`, behind the same
    front end."""
    options = options or {}
    for _, option in task_options():
        value = options.get(option.name)
        if option.given(value) and not option.valid(value):
            raise FacetlError(f"{option.flag} {value}: expected {option.expects}")
    loaded = loaded or ({} if runtime == "keras" else load_models(tasks, models_root, runtime))
    files = expand_inputs(inputs)
    merged: list[dict] = [{} for _ in files]
    for task in tasks:
        kind = registered(task)
        results = kind.predict(files, models_root, loaded=loaded.get(task),
                               **{option.name: options[option.name] for option in kind.options
                                  if option.name in options})
        for entry, result in zip(merged, results, strict=True):
            entry.update(result)
    return merged
