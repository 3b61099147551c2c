"""Each task owns its settings: its sections of params.yaml are checked by its own schema.py, a
stage checks only the shared settings and its task's, so editing one task's schema leaves the
other task's stages up to date. DVC's own `dvc status` on the real pipeline files, their locks
written by `dvc commit` over placeholder files, as after a run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from benchmarks.workspace import REPO, set_params
from facetl.core.errors import FacetlError
from facetl.core.schema import task_schema, validate_params
from facetl.core.tasks import task_names
from tests.dvc_project import PIPELINES, placeholder_project

REAL = yaml.safe_load((REPO / "params.yaml").read_text())
KEYPOINTS = "pipelines/keypoints/dvc.yaml"
LOCAL_SOURCE = "data/external/gender.csv"


def changed_stages(root: Path) -> set[str]:
    """'<pipeline file>:<stage>' for every stage `dvc status` reports, across the pipelines."""
    with Repo(root) as repo:
        found = set()
        for pipeline in PIPELINES:
            found |= {name if ":" in name else f"{pipeline}:{name}"
                      for name in repo.status(targets=[pipeline])}
        return found


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every pipeline committed over placeholders: `dvc status` clean. The gender source is a
    local file here (the real one is a URL: an http dependency this machine cannot reach)."""
    monkeypatch.chdir(tmp_path)  # DVC resolves targets from the working folder
    placeholder_project(tmp_path).close()
    set_params(tmp_path, {"data.gender.source": LOCAL_SOURCE})
    (tmp_path / LOCAL_SOURCE).write_text("path,label\n")
    with Repo(tmp_path) as repo:
        for pipeline in PIPELINES:
            repo.commit(pipeline, force=True)
    assert changed_stages(tmp_path) == set()
    return tmp_path


@pytest.mark.parametrize("edited", ["gender", "keypoints"])
def test_editing_one_tasks_schema_reruns_only_that_tasks_stages(project: Path,
                                                                edited: str) -> None:
    with (project / f"src/facetl/{edited}/schema.py").open("a") as schema:
        schema.write("# an edited setting\n")
    changed = changed_stages(project)
    in_keypoint_pipeline = {name.startswith(f"{KEYPOINTS}:") for name in changed}
    assert changed, "the edited task's own stages rerun (they import its schema)"
    assert in_keypoint_pipeline == {edited == "keypoints"}


def with_setting(dotted: str, value: object) -> dict:
    params = copy.deepcopy(REAL)
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    return params


@pytest.mark.parametrize(("key", "owner"), [("keypoints.crop.margin", "keypoints"),
                                            ("train.keypoints.loss", "keypoints"),
                                            ("finetune.gender.unfreeze", "gender"),
                                            ("data.gender.classes", "gender")])
def test_a_tasks_setting_is_checked_by_its_own_schema_only(key: str, owner: str) -> None:
    params = with_setting(key, "wrong")
    for name in task_names():
        if name == owner:
            with pytest.raises(FacetlError, match=f"^params.yaml: {key} = 'wrong'"):
                validate_params(params, tasks=[task_schema(name)])
        else:
            validate_params(params, tasks=[task_schema(name)])
    with pytest.raises(FacetlError, match=key):
        validate_params(params)  # every task: the whole file


def test_a_stage_still_names_a_misspelt_key_of_its_own_and_of_the_shared_settings() -> None:
    params = with_setting("prepare.gender", REAL["prepare"]["gender"])
    params["prepare"]["gendr"] = params["prepare"].pop("gender")
    params["sed"] = params.pop("seed")
    with pytest.raises(FacetlError) as caught:
        validate_params(params, tasks=[task_schema("gender")])
    assert "params.yaml: prepare.gendr = " in str(caught.value)
    assert "did you mean prepare.gender?" in str(caught.value)
    assert "params.yaml: sed = 42: not a setting; did you mean seed?" in str(caught.value)


def test_each_registered_task_has_its_schema_and_its_task_object() -> None:
    from facetl.core.tasks import task

    assert task_names() == ["gender", "keypoints"]  # found on disk: a package with a task.py
    for name in task_names():
        assert task_schema(name).name == task(name).name == name
        assert all(place.rpartition(".")[2] == name for place in task_schema(name).sections)
