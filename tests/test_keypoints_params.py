"""The keypoint stages never list the gender task's `backbone` (both recipes read
`keypoints.backbone`): `dvc exp run -S backbone=vgg19` leaves the keypoint branch, about half an
hour of CPU, up to date. DVC's own `dvc status` on the real pipeline file, its lock written by
`dvc commit` over placeholder outputs as after a run."""

from __future__ import annotations

import pytest
from dvc.repo import Repo

from benchmarks.workspace import set_params
from tests.dvc_project import placeholder_project

KEYPOINTS = "pipelines/keypoints/dvc.yaml"
LISTING_THE_BACKBONE = {"features_keypoints", "train_keypoints", "evaluate_keypoints"}


def changed_stages(root, overrides: dict[str, object]) -> set[str]:
    """The keypoint stages `dvc status` reports once `overrides` are in params.yaml."""
    set_params(root, overrides)
    with Repo(root) as repo:
        return {name.split(":")[-1] for name in repo.status(targets=[KEYPOINTS])}


@pytest.mark.parametrize("recipe", ["finetune", "chapter"])
def test_the_gender_backbone_leaves_the_keypoint_pipeline_up_to_date(tmp_path, monkeypatch,
                                                                    recipe):
    monkeypatch.chdir(tmp_path)  # DVC resolves targets from the working folder
    with placeholder_project(tmp_path, (KEYPOINTS,)) as repo:
        set_params(tmp_path, {"keypoints.recipe": recipe})
        repo.commit(KEYPOINTS, force=True)
    assert changed_stages(tmp_path, {}) == set()
    assert changed_stages(tmp_path, {"backbone": "vgg19"}) == set()
    # The control: the keypoint task's own backbone reruns every stage that uses it.
    assert changed_stages(tmp_path, {"keypoints.backbone": "vgg19"}) == LISTING_THE_BACKBONE
