"""The comparison report, McNemar's exact test, built from fake runs in a throwaway git repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from facetl.core.metrics import discordant_counts, mcnemar_exact
from facetl.report.report import build_report, read_run

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def test_mcnemar_against_hand_computed_tables():
    # 6 photos only A got right, 1 only B: p = 2 * P(X <= 1 | n=7, 1/2) = 2 * 8/128.
    assert mcnemar_exact(6, 1) == pytest.approx(16 / 128)
    assert mcnemar_exact(1, 6) == pytest.approx(16 / 128)
    # 10 vs 0: p = 2 / 2**10.
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0


def test_discordant_counts_ignore_photos_both_got_right_or_wrong():
    a = [True, True, False, False, True]
    b = [True, False, True, False, False]
    assert discordant_counts(a, b) == (2, 1)


def write_run(root: Path, backbone: str, correct: list[bool], nme: float,
              crop_prefix: str = "", finetuned: bool = False) -> None:
    n = len(correct)
    accuracy = sum(correct) / n
    (root / "metrics").mkdir(exist_ok=True)
    (root / "plots/gender").mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump({
        "backbone": backbone, "backbones": {backbone: {"weights": "imagenet"}},
        "prepare": {"gender": {"input_size": 224}},
        "keypoints": {"backbone": "mobilenet_v2"}}))
    (root / "metrics/gender.json").write_text(json.dumps({
        "backbone": backbone, "accuracy": accuracy, "accuracy_ci95": [accuracy - 0.1, 1.0],
        "auc": 0.9, "n_test": n, "finetuned": finetuned}))
    (root / "metrics/keypoints.json").write_text(json.dumps(
        {"nme": nme, "failure_rate": 0.1, "backbone": "mobilenet_v2"}))
    pd.DataFrame({"file": [f"{crop_prefix}{i}.jpg" for i in range(n)],
                  "source": [f"photos/{i}.jpg" for i in range(n)], "correct": correct}).to_csv(
        root / "plots/gender/predictions.csv", index=False)


def commit_as_experiment(root: Path, name: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", name], cwd=root, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                         text=True, check=True).stdout.strip()
    subprocess.run(["git", "update-ref", f"refs/exps/ab/cdef/{name}", sha], cwd=root, check=True)


def test_report_from_two_experiments_pairs_the_same_photos(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    best = [True] * 18 + [False] * 2
    worse = [True] * 12 + [False] * 6 + [True, False]  # 6 only-best, 1 only-worse
    write_run(tmp_path, "resnet50", best, 0.05)
    commit_as_experiment(tmp_path, "exp-resnet")
    write_run(tmp_path, "vgg16", worse, 0.07)
    commit_as_experiment(tmp_path, "exp-vgg")
    (tmp_path / "metrics/scratch_small.json").write_text(json.dumps(
        {"accuracy": 0.7, "accuracy_ci95": [0.6, 0.8], "auc": 0.75, "n_test": 20}))

    table = build_report(tmp_path, tmp_path / "reports")

    by_model = table.set_index("model")
    # the workspace holds exp-vgg's files: it is listed once, by the experiment's name
    assert sorted(table["run"][:2]) == ["exp-resnet", "exp-vgg"]
    assert sorted(table["model"]) == ["resnet50 (imagenet)", "scratch CNN (small)",
                                      "vgg16 (imagenet)"]
    assert by_model.loc["resnet50 (imagenet)", "mcnemar_vs_best"] == "best"
    assert by_model.loc["vgg16 (imagenet)", "mcnemar_vs_best"] == "0.125 (6 vs 1)"
    assert by_model.loc["vgg16 (imagenet)", "nme"] == 0.07
    text = (tmp_path / "reports/comparison.md").read_text()
    assert "| exp-resnet | resnet50 (imagenet) | 224 | 0.900 [0.800, 1.000]" in text
    assert "scratch CNN (small)" in text
    assert (tmp_path / "reports/accuracy.png").stat().st_size > 1000


def test_runs_on_different_test_photos_are_not_paired(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_run(tmp_path, "resnet50", [True] * 10, 0.05)
    commit_as_experiment(tmp_path, "ten")
    write_run(tmp_path, "vgg16", [True] * 8 + [False] * 4, 0.07)
    table = build_report(tmp_path, tmp_path / "reports").set_index("model")
    assert table.loc["vgg16 (imagenet)", "mcnemar_vs_best"] == "n/a (different test photos)"


def test_runs_on_aligned_crops_are_paired_by_their_source_photo(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_run(tmp_path, "resnet50", [True] * 10, 0.05)
    commit_as_experiment(tmp_path, "whole-photos")
    write_run(tmp_path, "vgg16", [True] * 8 + [False] * 2, 0.07, crop_prefix="crop-")
    table = build_report(tmp_path, tmp_path / "reports").set_index("model")
    assert table.loc["vgg16 (imagenet)", "mcnemar_vs_best"] == "0.5 (2 vs 0)"


def test_files_left_by_another_run_are_not_shown_as_this_runs(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_run(tmp_path, "vgg16", [True] * 9 + [False], 0.07)
    (tmp_path / "metrics/gender_repeats.json").write_text(json.dumps({
        "repeats": 3, "accuracy_mean": 0.5, "accuracy_std": 0.1,
        "accuracy_values": [0.4, 0.5, 0.6]}))  # split 0 is not this run's 0.9
    keypoints = json.loads((tmp_path / "metrics/keypoints.json").read_text())
    (tmp_path / "metrics/keypoints.json").write_text(json.dumps(keypoints | {
        "backbone": "resnet50"}))
    row = build_report(tmp_path, tmp_path / "reports").iloc[0]
    assert row["repeats"] == "" and row["nme"] is None


def test_a_fine_tuned_runs_repeats_are_labelled_as_the_frozen_heads(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_run(tmp_path, "vgg16", [True] * 9 + [False], 0.07, finetuned=True)
    (tmp_path / "metrics/gender_repeats.json").write_text(json.dumps({
        "repeats": 3, "accuracy_mean": 0.8, "accuracy_std": 0.1, "backbone": "vgg16",
        "accuracy_values": [0.7, 0.8, 0.9]}))  # frozen heads: split 0 is not the 0.9 scored
    row = build_report(tmp_path, tmp_path / "reports").iloc[0]
    assert row["repeats"] == "frozen head: 0.800 ± 0.100 (K=3)" and row["nme"] == 0.07
    write_run(tmp_path, "vgg16", [True] * 9 + [False], 0.07, finetuned=False)
    row = build_report(tmp_path, tmp_path / "reports").iloc[0]
    assert row["repeats"] == ""  # not fine-tuned: split 0 must be the model scored (0.9)


def test_old_experiments_params_read_through_renames_and_odd_shapes(tmp_path):
    """An experiment from before a rename, or with params in a shape since changed, still
    gets its row: old names read as the new ones, unknown and odd keys are passed over."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_run(tmp_path, "resnet50", [True] * 9 + [False], 0.05)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "backbone": "resnet50", "backbones": {"resnet50": {"weights": "imagenet"}},
        "faces": {"size": 300, "fallback": "lbp"}, "prepare": {"gender": {"input_size": 224}},
        "retired_group": {"knob": 1}}))
    commit_as_experiment(tmp_path, "old-names")
    write_run(tmp_path, "vgg16", [True] * 8 + [False] * 2, 0.07)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"backbone": "vgg16", "backbones": None,
                                                          "prepare": ["not", "a", "mapping"]}))
    commit_as_experiment(tmp_path, "odd-shapes")
    write_run(tmp_path, "mobilenet_v2", [True] * 7 + [False] * 3, 0.08)
    (tmp_path / "params.yaml").write_text("backbone: [unclosed\n")
    commit_as_experiment(tmp_path, "bad-yaml")

    table = build_report(tmp_path, tmp_path / "reports").set_index("run")
    assert table.loc["old-names", "model"] == "resnet50 (imagenet)"
    assert table.loc["old-names", "input"] == 224
    assert table.loc["odd-shapes", "model"] == "vgg16 (?)"
    assert table.loc["odd-shapes", "input"] is None
    assert table.loc["bad-yaml", "model"] == "mobilenet_v2 (?)"
    files = {"metrics/gender.json": json.dumps({"accuracy": 0.9}),
             "params.yaml": yaml.safe_dump({"faces": {"size": 300}})}
    old = read_run("old-names", files.get)
    assert old.params == {"faces": {"crop_size": 300}}
