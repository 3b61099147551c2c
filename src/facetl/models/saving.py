"""Trained models on disk: the head alone, image -> prediction in one file, and what it means.

Every task saves the same three files under `models/<task>/`, so `facetl predict`, the
activations and fine-tuning stages load any of them the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras

from facetl.core import paths
from facetl.core.atomic import atomic_path
from facetl.core.errors import FacetlError
from facetl.core.schema import validate_model_file
from facetl.models.backbones import load_model


def end_to_end(extractor: keras.Model, head: keras.Model, name: str) -> keras.Model:
    """uint8 image -> extractor -> head, as one model."""
    image = keras.Input(extractor.input_shape[1:], name="image")
    return keras.Model(image, head(extractor(image)), name=name)


def save_task_model(folder: str, model: keras.Model, head: keras.Model | None,
                    meta: dict[str, Any]) -> None:
    """`models/<folder>/`: `model.keras` (image -> prediction), `head.keras` when the head runs
    on cached features, and `model.json` saying what the outputs mean (classes, units...)."""
    with atomic_path(paths.model_dir(folder)) as tmp:
        tmp.mkdir()
        model.save(tmp / "model.keras")
        if head is not None:
            head.save(tmp / "head.keras")
        (tmp / "model.json").write_text(json.dumps(
            {"input_size": model.input_shape[1]} | meta, indent=2) + "\n")


def save_head_model(task: str, backbone: str, head: keras.Model, meta: dict[str, Any],
                    folder: str | None = None) -> None:
    """A head trained on cached features, joined to the exact extractor that made them."""
    extractor = load_model(paths.extractor_path(task, backbone))
    save_task_model(folder or task, end_to_end(extractor, head, f"{task}_{backbone}"), head,
                    {"task": task, "backbone": backbone} | meta)


def load_task_model(task: str, models_root: Path = Path("models"),
                    made_by: str = "dvc repro") -> tuple[keras.Model, dict]:
    """The model in `models_root/<task>/` and its model.json, checked (one line per problem)
    and read through the params' renames, so a model saved before a rename still loads.
    `made_by`: the command that trains it, for the error when it is missing."""
    folder = models_root / task
    model_file, meta_file = folder / "model.keras", folder / "model.json"
    if not model_file.is_file() or not meta_file.is_file():
        raise FacetlError(
            f"no trained {task} model in {folder} (need model.keras and model.json); "
            f"run `{made_by}` first, or pass --models DIR"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise FacetlError(f"{meta_file}: not valid JSON ({exc}); retrain the model with "
                          f"`{made_by}`") from exc
    meta = validate_model_file(meta, str(meta_file), task.split("_")[0], made_by)
    return load_model(model_file), meta
