"""The real pipelines, shrunk: tiny synthetic data, random-weight backbones at 32 px, 2 epochs.

What a user is promised: `dvc repro` finishes with local gender data alone; with nothing
changed nothing runs; a changed param, label or photo reruns exactly what depends on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.workspace import commit_all, copy_repository, run, set_params, stages_run
from tests.synthetic import write_keypoints_source, write_labels_csv

pytestmark = pytest.mark.e2e

TINY = {
    "data.gender.path_column": "filename",
    "data.gender.label_column": "gender",
    "data.gender.group_column": "identity",
    "prepare.gender.input_size": 32,
    "backbones.vgg16.weights": "none",
    "backbones.mobilenet_v2.weights": "none",
    "train.gender.epochs": 2,
    "prepare.keypoints.input_size": 32,
    "train.keypoints.epochs": 2,
    "keypoints.crop.input_size": 32,
    "keypoints.crop.calibration_images": 10,
    "keypoints.head.epochs": 1,
    "keypoints.finetune.epochs": 1,
    "keypoints.finetune.unfreeze": 3,
    "keypoints.batch_size": 8,
    "scratch.common.filters": [8, 8, 8, 8],
    "scratch.common.dense": 8,
    **{f"scratch.scenarios.{name}.{key}": value for name in ("large", "small", "aggressive")
       for key, value in (("input_size", 32), ("epochs", 2), ("max_train_images", None))},
    "faces.align": False,
}
GENDER_AFTER_DOWNLOAD = {"faces_gender", "prepare_gender", "features_gender", "train_gender",
                         "finetune_gender", "evaluate_gender", "repeats_gender", "activations",
                         "scratch@large", "scratch@small", "scratch@aggressive"}


def ran(output: str) -> set[str]:
    """Stages DVC really ran (not skipped, not restored from the run-cache)."""
    return set(stages_run(output))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A local gender source (CSV of paths + photos) and a keypoint source, outside the repo."""
    folder = tmp_path_factory.mktemp("data")
    write_labels_csv(folder, per_class=24, people=24)
    write_keypoints_source(folder / "keypoints")
    return folder


@pytest.fixture(scope="module")
def repo(tmp_path_factory, data):
    """A fresh copy of the repository whose default `dvc repro` has run on local data only."""
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    set_params(repo, TINY | {"data.gender.source": str(data / "labels.csv"),
                             "data.gender.images": str(data / "images"),
                             "data.keypoints.csv": str(data / "keypoints/keypoints.csv"),
                             "data.keypoints.images": str(data / "keypoints/images")})
    commit_all(repo, "tiny params")
    result = run(["dvc", "repro"], repo)  # no keypoint stage: they are a pipeline of their own
    assert ran(result.stdout) == {"download_gender"} | GENDER_AFTER_DOWNLOAD
    commit_all(repo, "first run")
    return repo


def test_nothing_changed_nothing_runs(repo):
    result = run(["dvc", "repro"], repo)
    assert not ran(result.stdout) and "Data and pipelines are up to date" in result.stdout
    # (`dvc status` alone also lists the keypoint pipeline, which this repo never ran)
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], repo).stdout


def test_an_edited_label_or_a_replaced_photo_reruns_from_the_download(repo, data):
    labels = data / "labels.csv"
    original = labels.read_text()
    first = original.splitlines()[1]
    flipped = first.replace(",male", ",female") if ",male" in first else first.replace(
        ",female", ",male")
    labels.write_text(original.replace(first, flipped, 1))
    try:
        assert "download_gender" in run(["dvc", "status"], repo).stdout
    finally:
        labels.write_text(original)
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], repo).stdout  # back as it was

    photo = sorted((data / "images").iterdir())[0]
    kept = photo.read_bytes()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(photo, format="JPEG")
    try:
        assert "download_gender" in run(["dvc", "status"], repo).stdout
        result = run(["dvc", "repro"], repo)
        assert {"download_gender", "faces_gender", "prepare_gender"} <= ran(result.stdout)
    finally:  # the photo back, and the workspace as the committed run left it
        photo.write_bytes(kept)
        run(["git", "checkout", "."], repo)
        run(["dvc", "checkout"], repo, check=False)
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], repo).stdout


def test_a_source_where_no_row_succeeds_fails_at_the_download(repo, tmp_path):
    (tmp_path / "images").mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,gender,identity\nabsent1.jpg,male,1\nabsent2.jpg,female,2\n")
    set_params(repo, {"data.gender.source": str(labels),
                      "data.gender.images": str(tmp_path / "images")})
    result = run([sys.executable, "stages/download_gender.py"], repo, check=False)
    # The workspace back as the committed run left it (the failed run wrote its manifest).
    run(["git", "checkout", "."], repo)
    run(["dvc", "checkout", "--force", "download_gender"], repo)
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], repo).stdout
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "none of the 2 rows gave an image" in result.stderr and "missing" in result.stderr


def test_repro_writes_metrics_plots_and_models(repo):
    metrics = json.loads((repo / "metrics/gender.json").read_text())
    assert {"accuracy", "accuracy_ci95", "auc", "n_test"} <= metrics.keys()
    low, high = metrics["accuracy_ci95"]
    assert 0 <= low <= metrics["accuracy"] <= high <= 1
    assert metrics["n_test"] > 0
    for png in ("training.png", "roc.png", "confusion.png", "misclassified.png"):
        assert (repo / "plots/gender" / png).stat().st_size > 1000
    assert (repo / "plots/gender/training/plots/metrics/eval/loss.tsv").is_file()
    assert (repo / "models/gender/model.keras").is_file()
    shown = run(["dvc", "metrics", "show", "--json"], repo).stdout
    assert "accuracy" in shown and "share_of_peak" in shown
    head = json.loads((repo / "metrics/train_gender.json").read_text())["speed"]
    assert head["gflop_per_s"] > 0 and head["epochs"] >= 1
    assert head["precision"] in ("float32", "bfloat16")
    # fine-tuning off: the head's model file passed on as it is, byte for byte
    assert ((repo / "models/gender/model.keras").read_bytes()
            == (repo / "models/gender_head/model.keras").read_bytes())
    assert json.loads((repo / "metrics/finetune_gender.json").read_text()) == {
        "finetuned": False, "speed": None}


def test_predict_cli_gives_what_the_evaluation_gave_on_the_same_photos(repo):
    """`facetl predict` (photo file -> face front end -> model) against evaluate_gender's
    per-photo predictions (the prepared arrays -> the same model) on the test photos."""
    evaluated = pd.read_csv(repo / "plots/gender/predictions.csv")
    photos = evaluated["source"].tolist()
    result = run([sys.executable, "-m", "facetl", "predict", "--task", "gender", "--json",
                  *photos], repo)
    predicted = json.loads(result.stdout)
    assert [p["image"] for p in predicted] == photos and len(photos) > 1
    assert [p["gender"] for p in predicted] == evaluated["predicted"].tolist()
    np.testing.assert_allclose([p["p_male"] for p in predicted], evaluated["p_positive"],
                               atol=1e-4)


def test_predict_cli_errors_are_clear(repo, tmp_path):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("<html></html>")
    result = run([sys.executable, "-m", "facetl", "predict", "--json", str(bad)], repo,
                 check=False)
    assert result.returncode == 1 and "cannot read as an image" in result.stderr
    result = run([sys.executable, "-m", "facetl", "predict", "--models", str(tmp_path),
                  str(bad)], repo, check=False)
    assert result.returncode == 2 and "no trained gender model" in result.stderr


def test_backbone_switch_reruns_only_what_depends_on_it(repo):
    result = run(["dvc", "exp", "run", "-S", "backbone=mobilenet_v2"], repo)
    assert ran(result.stdout) >= {"features_gender", "train_gender", "evaluate_gender"}
    assert not ran(result.stdout) & {"download_gender", "prepare_gender"}
    assert json.loads((repo / "metrics/gender.json").read_text())["backbone"] == "mobilenet_v2"

    result = run(["dvc", "exp", "run", "-S", "train.gender.epochs=1"], repo)
    assert ran(result.stdout) == {"train_gender", "finetune_gender", "evaluate_gender",
                                  "repeats_gender", "activations"}

    result = run(["dvc", "exp", "run", "-S", "backbone=vgg16", "-S", "train.gender.epochs=2"],
                 repo)
    assert "features_gender" not in ran(result.stdout)  # restored from DVC's run-cache
    assert (repo / "data/features/gender/vgg16.npy").is_file()


def test_finetuning_reruns_from_the_trained_head_not_the_features(repo):
    result = run(["dvc", "exp", "run", "-S", "finetune.gender.enabled=true",
                  "-S", "finetune.gender.epochs=1", "-S", "finetune.gender.unfreeze=2"], repo)
    assert {"finetune_gender", "evaluate_gender"} <= ran(result.stdout)
    assert not ran(result.stdout) & {"features_gender", "train_gender", "prepare_gender"}
    meta = json.loads((repo / "models/gender/model.json").read_text())
    assert meta["finetuned"] is True and meta["unfrozen_layers"] == 2
    tuned = json.loads((repo / "metrics/finetune_gender.json").read_text())["speed"]
    assert tuned["gflop_per_s"] > 0 and tuned["share_of_peak"] > 0
    assert json.loads((repo / "metrics/gender.json").read_text())["finetuned"] is True
    assert (repo / "plots/gender/finetune/training.png").stat().st_size > 1000
    run(["git", "checkout", "params.yaml"], repo)


def test_offline_default_source_fails_fast_with_a_hint(repo):
    set_params(repo, {"data.gender.source": "http://127.0.0.1:9/a943287.csv"})
    result = run([sys.executable, "stages/download_gender.py"], repo, check=False,
                 env={"FACETL_DOWNLOAD_RETRIES": "0"})
    assert result.returncode == 2
    assert "data.gender.source" in result.stderr and "Traceback" not in result.stderr
    run(["git", "checkout", "params.yaml"], repo)


def test_killed_stage_leaves_no_partial_output_and_rerun_completes(repo):
    features = repo / "data/features/gender/vgg16.npy"
    before = features.read_bytes()
    set_params(repo, {"features.batch_size": 1})
    process = subprocess.Popen([sys.executable, "stages/features_gender.py"], cwd=repo,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(features.parent.glob(".vgg16.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert list(features.parent.glob(".vgg16.tmp-*")), "the stage never started writing"
    assert features.read_bytes() == before  # the old output is whole, not half-overwritten

    run(["git", "checkout", "params.yaml"], repo)
    run([sys.executable, "stages/features_gender.py"], repo)
    assert not list(features.parent.glob(".vgg16.tmp-*"))  # the stale temp file is gone
    assert features.read_bytes() == before  # same params, same seed: the same features


def test_keypoint_pipeline_runs_on_its_own(repo):
    result = run(["dvc", "repro", "pipelines/keypoints/dvc.yaml"], repo)
    assert {"download_keypoints", "prepare_keypoints", "features_keypoints", "train_keypoints",
            "evaluate_keypoints"} <= {name.split(":")[-1] for name in ran(result.stdout)}
    metrics = json.loads((repo / "metrics/keypoints.json").read_text())
    assert metrics["recipe"] == "finetune" and metrics["misses"] == 0  # the default recipe
    assert not ran(run(["dvc", "repro", "pipelines/keypoints/dvc.yaml"], repo).stdout)

    # The chapter's recipe is one -S away, and every keypoint stage reads it.
    result = run(["dvc", "exp", "run", "pipelines/keypoints/dvc.yaml", "-S",
                  "keypoints.recipe=chapter"], repo)
    assert {"prepare_keypoints", "features_keypoints", "train_keypoints",
            "evaluate_keypoints"} <= {name.split(":")[-1] for name in ran(result.stdout)}
    assert json.loads((repo / "metrics/keypoints.json").read_text())["recipe"] == "chapter"


def test_the_gender_backbone_leaves_the_keypoint_branch_up_to_date(repo):
    run(["dvc", "repro", "pipelines/keypoints/dvc.yaml"], repo)  # run (or left as the test above)
    set_params(repo, {"backbone": "vgg19"})
    result = run(["dvc", "status", "pipelines/keypoints/dvc.yaml"], repo)
    assert "up to date" in result.stdout, result.stdout
    run(["git", "checkout", "params.yaml"], repo)


def test_a_changed_crop_size_reruns_the_faces_stage(repo):
    """faces.crop_size (once faces.size, a name DVC's run cache ignores: treeverse/dvc#10296):
    each new value runs faces_gender, never restored from an earlier size's run."""
    faces = repo / "data/faces/gender"
    for size in (40, 48):
        set_params(repo, {"faces.align": True, "faces.crop_size": size})
        result = run(["dvc", "repro", "faces_gender"], repo)
        assert ran(result.stdout) == {"faces_gender"}, result.stdout
        manifest = pd.read_csv(faces / "manifest.csv", keep_default_na=False)
        crops = manifest.loc[manifest["status"] == "ok", "file"]
        assert len(crops) > 0
        assert {Image.open(faces / name).size for name in crops} == {(size, size)}
    run(["git", "checkout", "params.yaml", "dvc.lock"], repo)
    run(["dvc", "checkout", "faces_gender"], repo)
