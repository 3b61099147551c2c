"""Inference from the pipeline's saved models: image files in, JSON-ready dicts out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from facetl.backbones import load_model
from facetl.errors import FacetlError
from facetl.images import ImageDecodeError, read_image, resize_square

MODELS_ROOT = Path("models")


def load_task_model(task: str, models_root: Path = MODELS_ROOT) -> tuple[Any, dict]:
    folder = models_root / task
    model_file, meta_file = folder / "model.keras", folder / "model.json"
    if not model_file.is_file() or not meta_file.is_file():
        raise FacetlError(
            f"no trained {task} model in {folder} (need model.keras and model.json); "
            f"run `dvc repro` first, or pass --models DIR"
        )
    return load_model(model_file), json.loads(meta_file.read_text())


def load_images(files: list[str], size: int) -> np.ndarray:
    batch = []
    for file in files:
        try:
            batch.append(resize_square(read_image(file), size))
        except FileNotFoundError as exc:
            raise FacetlError(f"{file}: no such image file") from exc
        except (ImageDecodeError, OSError) as exc:
            raise FacetlError(f"{file}: cannot read as an image ({exc})") from exc
    return np.stack(batch)


def predict_gender(files: list[str], models_root: Path = MODELS_ROOT) -> list[dict]:
    model, meta = load_task_model("gender", models_root)
    p_positive = model.predict(load_images(files, meta["input_size"]), verbose=0)[:, 0]
    negative, positive = meta["classes"]
    return [{"image": file, "gender": positive if p >= 0.5 else negative,
             f"p_{positive}": round(float(p), 5)} for file, p in zip(files, p_positive,
                                                                      strict=True)]
