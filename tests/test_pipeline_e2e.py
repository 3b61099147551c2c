"""The real dvc.yaml, shrunk: tiny synthetic data, random-weight backbones at 32 px, 2 epochs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from tests.e2e import commit_all, copy_repository, run, set_params
from tests.synthetic import write_keypoints_source, write_labels_csv

pytestmark = pytest.mark.e2e

TINY = {
    "data.gender.path_column": "filename",
    "data.gender.label_column": "gender",
    "data.gender.group_column": "identity",
    "prepare.gender.input_size": 32,
    "backbones.vgg16.weights": "none",
    "backbones.mobilenet_v2.weights": "none",
    "train.epochs": 2,
    "prepare.keypoints.input_size": 32,
    "train_keypoints.epochs": 2,
    "scratch.common.epochs": 2,
    "scratch.common.filters": [8, 8, 8, 8],
    "scratch.common.dense": 8,
    "scratch.scenarios.large.input_size": 32,
    "scratch.scenarios.small.input_size": 32,
    "scratch.scenarios.aggressive.input_size": 32,
    "faces.align": False,
}


def ran(output: str) -> set[str]:
    """Stages DVC really ran (not skipped, not restored from the run-cache)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    csv = write_labels_csv(data, per_class=24, people=24)
    keypoints = write_keypoints_source(data / "keypoints")
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    set_params(repo, TINY | {"data.gender.source": str(csv),
                             "data.gender.images": str(data / "images"),
                             "data.keypoints.csv": str(keypoints),
                             "data.keypoints.images": str(keypoints.parent / "images")})
    commit_all(repo, "tiny params")
    result = run(["dvc", "repro"], repo)
    assert {"download_gender", "prepare_gender", "features_gender", "train_gender",
            "evaluate_gender"} <= ran(result.stdout)
    commit_all(repo, "first run")
    return repo


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
    assert "accuracy" in shown


def test_predict_cli_uses_trained_model(repo):
    image = next((repo / "data/raw/gender/images").iterdir())
    result = run([sys.executable, "-m", "facetl", "predict", "--task", "gender", "--json",
                  str(image)], repo)
    [prediction] = json.loads(result.stdout)
    assert prediction["image"] == str(image)
    assert prediction["gender"] in ("male", "female")
    assert 0 <= prediction["p_male"] <= 1


def test_predict_cli_errors_are_clear(repo, tmp_path):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("<html></html>")
    result = run([sys.executable, "-m", "facetl", "predict", "--json", str(bad)], repo,
                 check=False)
    assert result.returncode == 2 and "cannot read as an image" in result.stderr
    result = run([sys.executable, "-m", "facetl", "predict", "--models", str(tmp_path),
                  str(bad)], repo, check=False)
    assert result.returncode == 2 and "no trained gender model" in result.stderr


def test_backbone_switch_reruns_only_what_depends_on_it(repo):
    result = run(["dvc", "exp", "run", "-S", "backbone=mobilenet_v2"], repo)
    assert ran(result.stdout) >= {"features_gender", "train_gender", "evaluate_gender"}
    assert not ran(result.stdout) & {"download_gender", "prepare_gender"}
    assert json.loads((repo / "metrics/gender.json").read_text())["backbone"] == "mobilenet_v2"

    result = run(["dvc", "exp", "run", "-S", "train.epochs=1"], repo)
    assert ran(result.stdout) == {"train_gender", "evaluate_gender", "repeats_gender",
                                  "activations", "report"}

    result = run(["dvc", "exp", "run", "-S", "backbone=vgg16", "-S", "train.epochs=2"], repo)
    assert "features_gender" not in ran(result.stdout)  # restored from DVC's run-cache
    assert (repo / "data/features/gender/vgg16.npy").is_file()


def test_offline_default_source_fails_fast_with_a_hint(repo):
    set_params(repo, {"data.gender.source": "http://127.0.0.1:9/a943287.csv",
                      "download.retries": 0})
    result = run([sys.executable, "stages/download.py", "gender"], repo, check=False)
    assert result.returncode == 2
    assert "data.gender.source" in result.stderr and "Traceback" not in result.stderr
    run(["git", "checkout", "params.yaml"], repo)


def test_killed_stage_leaves_no_partial_output_and_rerun_completes(repo):
    features = repo / "data/features/gender/vgg16.npy"
    before = features.read_bytes()
    set_params(repo, {"features.batch_size": 1})
    process = subprocess.Popen([sys.executable, "stages/features.py", "gender"], cwd=repo,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(features.parent.glob(".vgg16.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert list(features.parent.glob(".vgg16.tmp-*")), "the stage never started writing"
    assert features.read_bytes() == before  # the old output is whole, not half-overwritten

    run(["git", "checkout", "params.yaml"], repo)
    run([sys.executable, "stages/features.py", "gender"], repo)
    assert not list(features.parent.glob(".vgg16.tmp-*"))  # the stale temp file is gone
    assert features.read_bytes() == before  # same params, same seed: the same features
