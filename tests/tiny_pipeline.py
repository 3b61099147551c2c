"""The real params.yaml, shrunk, in a test's own folder: stage bodies run there as in `dvc repro`.

Stages read and write paths relative to the working folder, so a test changes into the folder
this prepares (monkeypatch.chdir) and calls the stage bodies directly, in dvc.yaml's order.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from facetl.params import load_params
from facetl.pipeline import (
    download_stage,
    evaluate_stage,
    faces_stage,
    features_stage,
    prepare_stage,
    train_stage,
)
from tests.e2e import REPO, set_params
from tests.synthetic import write_labels_csv

TINY = {
    "data.gender.path_column": "filename",
    "data.gender.label_column": "gender",
    "data.gender.group_column": "identity",
    "faces.align": False,  # synthetic photos have no faces
    "prepare.gender.input_size": 32,
    "backbones.vgg16.weights": "none",
    "train.epochs": 2,
}
UP_TO_PREPARE = (download_stage, faces_stage, prepare_stage)
UP_TO_EVALUATE = (*UP_TO_PREPARE, features_stage, train_stage, evaluate_stage)


def tiny_params(folder: Path, overrides: dict[str, Any] | None = None, per_class: int = 24,
                people: int = 24) -> dict[str, Any]:
    """Synthetic photos and a params.yaml pointing at them, in `folder`; return the params."""
    csv = write_labels_csv(folder / "source", per_class=per_class, people=people)
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    set_params(folder, TINY | {"data.gender.source": str(csv),
                               "data.gender.images": str(csv.parent / "images")}
               | (overrides or {}))
    return load_params(folder / "params.yaml")


def run_gender_stages(params: dict[str, Any], stages: tuple) -> None:
    for stage in stages:
        stage("gender", params)
