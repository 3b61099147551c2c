"""The models as DVC artifacts: declared in the pipeline files (type model, a description,
labels, the path of a stage's output), and fetched by name with `dvc artifacts get` from
another repository, as docs/team-remote-sweeps.md tells it.

The end-to-end test: an engineer runs the tiny gender pipeline, pushes its outputs to a local
DVC remote and its commit with a registered version (`gto register`, a git tag) to a bare git
repository; from a folder outside any repository, `dvc artifacts get` fetches models/gender/
through that remote, and the fetched model predicts as the engineer's does.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest
from skimage import data

from benchmarks.workspace import commit_all, copy_repository, run, set_params
from facetl.predict import predict
from tests.conftest import encode
from tests.dvc_project import placeholder_project
from tests.synthetic import write_labels_csv
from tests.test_pipeline_e2e import TINY

ARTIFACTS = {  # (pipeline file, name) -> the output it publishes, from the repository root
    ("dvc.yaml", "gender"): "models/gender",
    ("pipelines/keypoints/dvc.yaml", "keypoints"): "models/keypoints",
}
VERSION = "v1.0.0"


def test_each_model_is_an_artifact_of_type_model_published_from_a_stage_output(tmp_path):
    repo = placeholder_project(tmp_path)
    try:
        declared = repo.artifacts.read()
        outputs = {Path(out.fs_path).relative_to(tmp_path).as_posix()
                   for stage in repo.index.stages for out in stage.outs}
    finally:
        repo.close()
    for (dvcfile, name), output in ARTIFACTS.items():
        artifact = declared[dvcfile][name]
        folder = posixpath.dirname(dvcfile)
        assert posixpath.normpath(posixpath.join(folder, artifact.path)) == output
        assert output in outputs, f"{output} is no stage's output: dvc cannot fetch it"
        assert artifact.type == "model"
        assert len(artifact.desc) > 40 and len(artifact.labels) >= 3


@pytest.mark.e2e
def test_dvc_artifacts_get_fetches_the_gender_model_from_another_repository(tmp_path):
    data_folder = tmp_path / "data"
    write_labels_csv(data_folder, per_class=24, people=24)
    origin, storage, work = tmp_path / "origin.git", tmp_path / "remote", tmp_path / "work"
    run(["git", "init", "-q", "--bare", "--initial-branch=main", str(origin)], tmp_path)
    work.mkdir()
    copy_repository(work)
    set_params(work, TINY | {"data.gender.source": str(data_folder / "labels.csv"),
                             "data.gender.images": str(data_folder / "images")})
    run(["dvc", "remote", "add", "-d", "team", str(storage)], work)
    commit_all(work, "tiny params, the team's DVC remote")
    run(["dvc", "repro", "evaluate_gender"], work)
    commit_all(work, "a tiny run")
    run(["dvc", "push", "dvc.yaml"], work)
    run(["git", "config", "user.name", "t"], work)  # gto's annotated tag needs an author
    run(["git", "config", "user.email", "t@t"], work)
    run(["gto", "register", "gender", "--version", VERSION], work)  # the tag gender@v1.0.0
    run(["git", "remote", "add", "origin", str(origin)], work)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main", "--tags"], work)

    elsewhere = tmp_path / "elsewhere"  # no git, no DVC project
    (elsewhere / "models").mkdir(parents=True)
    run(["dvc", "artifacts", "get", str(origin), "gender", "--rev", VERSION,
         "-o", "models/gender"], elsewhere)

    for name in ("model.keras", "model.json"):
        assert ((elsewhere / "models/gender" / name).read_bytes()
                == (work / "models/gender" / name).read_bytes()), name
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(encode(data.astronaut(), "JPEG"))
    ours = predict(["gender"], [str(photo)], elsewhere / "models")
    theirs = predict(["gender"], [str(photo)], work / "models")
    assert ours == theirs and "error" not in ours[0] and 0 <= ours[0]["p_male"] <= 1
