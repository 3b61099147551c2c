"""Inference from the pipeline's saved models: image files, folders or glob patterns in,
JSON-ready dicts out (one per file, in input order; unreadable files as error entries)."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from facetl.core.errors import FacetlError
from facetl.core.tasks import task as registered
from facetl.core.tasks import task_names
from facetl.models.inference import Loader, read_input

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


def predict(tasks: list[str], inputs: list[str], models_root: Path,
            min_confidence: float | None = None, all_faces: bool = False,
            loaded: dict[str, tuple] | None = None, runtime: str = "keras") -> list[dict]:
    """Every task's predictions merged per file; a file's error ends its entry.

    Gender only: below `min_confidence` the answer is "uncertain"; `all_faces` adds every face
    found, with its box. `loaded`: models from `load_models` (the others load from
    `models_root`). `runtime`: onnx runs the networks `facetl export` wrote in
    `models_root/<task>/`, behind the same front end."""
    if min_confidence is not None and not 0.5 <= min_confidence <= 1:
        raise FacetlError(f"--min-confidence {min_confidence}: expected a probability from 0.5 "
                          "(answer every photo) to 1 (answer none)")
    loaded = loaded or ({} if runtime == "keras" else load_models(tasks, models_root, runtime))
    options = {"min_confidence": min_confidence, "all_faces": all_faces}
    files = expand_inputs(inputs)
    merged: list[dict] = [{} for _ in files]
    for task in tasks:
        kind = registered(task)
        results = kind.predict(files, models_root, loaded=loaded.get(task),
                               **{name: options[name] for name in kind.options})
        for entry, result in zip(merged, results, strict=True):
            entry.update(result)
    return merged


def write_overlays(results: list[dict], out_dir: Path) -> None:
    """Each input image with its predicted points, as `out_dir/<name>_keypoints.png`.

    Adds the written path to each result as "overlay"; same-named inputs get numbered files.
    """
    from facetl.keypoints.plots import write_overlay  # here: it loads matplotlib

    used: set[str] = set()
    for number, result in enumerate(results):
        if "error" in result:
            continue
        name = f"{Path(result['image']).stem}_keypoints.png"
        if name in used:
            name = f"{Path(result['image']).stem}_{number}_keypoints.png"
        used.add(name)
        write_overlay(read_input(result["image"]), np.array(result["keypoints"]),
                      out_dir / name)
        result["overlay"] = str(out_dir / name)
