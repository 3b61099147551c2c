"""The real params.yaml, shrunk, in a test's own folder: stage bodies run there as in `dvc repro`.

Stages read and write paths relative to the working folder, so a test changes into the folder
this prepares (monkeypatch.chdir) and calls the stage bodies directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from facetl.params import load_params
from tests.e2e import REPO, set_params
from tests.synthetic import write_labels_csv

TINY = {
    "data.gender.path_column": "filename",
    "data.gender.label_column": "gender",
    "data.gender.group_column": "identity",
    "prepare.gender.input_size": 32,
    "backbones.vgg16.weights": "none",
    "train.epochs": 2,
}


def tiny_params(folder: Path, overrides: dict[str, Any] | None = None, per_class: int = 24,
                people: int = 24) -> dict[str, Any]:
    """Synthetic photos and a params.yaml pointing at them, in `folder`; return the params."""
    csv = write_labels_csv(folder / "source", per_class=per_class, people=people)
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    set_params(folder, TINY | {"data.gender.source": str(csv),
                               "data.gender.images": str(csv.parent / "images")}
               | (overrides or {}))
    return load_params(folder / "params.yaml")
