"""The real params.yaml, shrunk, in a test's own folder: stage modules run there as in
`dvc repro`.

Stages read `params.yaml` and write paths relative to the working folder, so a test changes
into the folder this prepares (monkeypatch.chdir) and calls the stages' `main()` directly, in
dvc.yaml's order.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.workspace import REPO, set_params
from facetl.core.params import load_params
from facetl.gender import download, evaluate, faces, finetune, prepare, train
from facetl.keypoints import download as keypoint_download
from facetl.keypoints import evaluate as keypoint_evaluate
from facetl.keypoints import features as keypoint_features
from facetl.keypoints import prepare as keypoint_prepare
from facetl.keypoints import train as keypoint_train
from facetl.models import features
from tests.synthetic import write_keypoints_source, write_labels_csv

TINY = {
    "data.gender.path_column": "filename",
    "data.gender.label_column": "gender",
    "data.gender.group_column": "identity",
    "faces.align": False,  # synthetic photos have no faces
    "prepare.gender.input_size": 32,
    "backbones.vgg16.weights": "none",
    "train.gender.epochs": 2,
}
UP_TO_PREPARE = (download.main, faces.main, prepare.main)
UP_TO_EVALUATE = (*UP_TO_PREPARE, partial(features.main, "gender"), train.main, finetune.main,
                  evaluate.main)


def tiny_params(folder: Path, overrides: dict[str, Any] | None = None, per_class: int = 24,
                people: int = 24) -> dict[str, Any]:
    """Synthetic photos and a params.yaml pointing at them, in `folder`; return the params."""
    csv = write_labels_csv(folder / "source", per_class=per_class, people=people)
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    set_params(folder, TINY | {"data.gender.source": str(csv),
                               "data.gender.images": str(csv.parent / "images")}
               | (overrides or {}))
    return load_params(folder / "params.yaml")


def run_gender_stages(stages: tuple[Callable[[], None], ...]) -> None:
    for stage in stages:
        stage()


def trained_gender(folder: Path, overrides: dict[str, Any] | None = None) -> Path:
    """`folder` with the tiny gender pipeline run in it up to evaluation (a trained model);
    `overrides`: params on top of TINY."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        tiny_params(folder, overrides)
        run_gender_stages(UP_TO_EVALUATE)
    finally:
        os.chdir(previous)
    return folder


@contextmanager
def overridden(folder: Path, overrides: dict[str, Any]) -> Iterator[None]:
    """params.yaml with `overrides` while the block runs, then as it was."""
    saved = (folder / "params.yaml").read_text()
    set_params(folder, overrides)
    try:
        yield
    finally:
        (folder / "params.yaml").write_text(saved)


KEYPOINT_STAGES = (keypoint_download.main, keypoint_prepare.main, keypoint_features.main,
                   keypoint_train.main, keypoint_evaluate.main)


@contextmanager
def keypoint_stages_run(work: Path, write_params: Callable[[Path], dict[str, Any]]
                        ) -> Iterator[dict[str, Any]]:
    """Synthetic keypoint frames in `work/source`, the params `write_params(source)` writes in
    `work`, and the five keypoint stages run there in dvc.yaml's order; yields the params."""
    write_keypoints_source(work / "source", people=6, frames=6)
    before = Path.cwd()
    os.chdir(work)
    try:
        params = write_params(work / "source")
        for stage in KEYPOINT_STAGES:
            stage()
        yield params
    finally:
        os.chdir(before)
