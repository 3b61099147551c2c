"""The finetune recipe end to end, in-process, on synthetic faces (32 px crops, random-weight
MobileNetV2, 2 + 1 epochs): crops, head on cached features, fine-tuning with augmentation,
two-pass inference on the whole photos, the dlib reference, and `facetl predict`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from facetl.cli import main as cli
from facetl.keypoints import train
from facetl.keypoints.losses import WingLoss
from facetl.keypoints.metrics import REGIONS
from facetl.keypoints.prepare import crop_targets, pixel_points
from facetl.keypoints.source import COORDINATE_COLUMNS
from facetl.models.backbones import load_model
from tests.tiny_pipeline import keypoint_stages_run, overridden

REPO = Path(__file__).resolve().parents[1]


def tiny_params(source: Path) -> dict:
    """The real params.yaml (its default recipe: finetune), shrunk, in the working folder."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["keypoints"] = {"csv": str(source / "keypoints.csv"),
                                   "images": str(source / "images")}
    params["prepare"]["keypoints"]["test_size"] = 0.2
    params["backbones"]["mobilenet_v2"]["weights"] = "none"
    kp = params["keypoints"]
    assert kp["recipe"] == "finetune"  # the default users get
    kp["crop"].update(input_size=32, calibration_images=10)
    kp["head"]["epochs"] = 2
    kp["finetune"].update(epochs=1, unfreeze=3)
    kp["batch_size"] = 8
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("keypoints_finetune")
    with keypoint_stages_run(work, tiny_params) as params:
        yield work, params


def test_prepared_crops_hold_the_points(run):
    work, _ = run
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    images = np.load(work / "data/prepared/keypoints/images.npy")
    assert images.shape == (len(index), 32, 32, 3) and not index["mirrored"].any()
    targets = crop_targets(index, 32).reshape(len(index), 68, 2)
    # margin 1.25: the points fill the middle 80% of each crop's longer side
    spread = targets.max(axis=1) - targets.min(axis=1)
    np.testing.assert_allclose(spread.max(axis=1), 1 / 1.25, rtol=1e-5)
    boxes = json.loads((work / "data/prepared/keypoints/boxes.json").read_text())
    assert {"calibration", "prior", "margin"} <= set(boxes)
    assert 0 < boxes["prior"]["side"] < 2


def test_metrics_have_the_promised_figures(run):
    work, _ = run
    metrics = json.loads((work / "metrics/keypoints.json").read_text())
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    n_test = int((index["split"] == "test").sum())
    assert metrics["recipe"] == "finetune" and metrics["backbone"] == "mobilenet_v2"
    assert metrics["n_test"] == n_test > 0 and metrics["misses"] == 0
    assert metrics["boxes_from_detector"] + metrics["boxes_from_prior"] == n_test
    for key in ("nme", "pixel_error", "failure_rate", "baseline_nme", "dlib_nme", "ced_auc",
                "val_mae_crop"):
        assert np.isfinite(metrics[key]) and metrics[key] >= 0, key
    assert set(metrics["nme_regions"]) == set(REGIONS)
    assert "dlib" in metrics["dlib_reference"]["source"]
    ablation = metrics["inference_ablation"]
    assert "passes=1,flip_tta=false" in ablation and "passes=2,flip_tta=true" in ablation
    assert ablation["passes=3,flip_tta=false"] == pytest.approx(metrics["nme"], abs=1e-4)
    per_image = pd.read_csv(work / "plots/keypoints/predictions.csv")
    assert len(per_image) == n_test and set(per_image["box"]) <= {"dlib", "prior"}
    assert per_image["nme"].mean() == pytest.approx(metrics["nme"], abs=1e-4)
    assert per_image["dlib_nme"].mean() == pytest.approx(metrics["dlib_nme"], abs=1e-4)
    curve = pd.read_csv(work / "plots/keypoints/ced.csv")
    assert curve.columns.tolist() == ["nme", "model", "baseline", "dlib"]


def test_both_phases_report_their_speed_against_the_machine(run):
    work, _ = run
    speed = json.loads((work / "metrics/train_keypoints.json").read_text())["speed"]
    assert set(speed) == {"head", "finetune"}
    for phase in speed.values():
        assert phase["gflop_per_s"] > 0 and 0 < phase["share_of_peak"] < 1.5
        assert phase["precision"] == "float32" and phase["epochs"] >= 1
    assert speed["finetune"]["gflop_per_example_step"] > speed["head"]["gflop_per_example_step"]


def test_model_json_carries_what_inference_needs(run):
    work, _ = run
    meta = json.loads((work / "models/keypoints/model.json").read_text())
    assert meta["recipe"] == "finetune" and meta["input_size"] == 32
    assert meta["passes"] == 3 and meta["flip_tta"] is False and meta["margin"] == 1.25
    assert {"dx", "dy", "ratio"} <= set(meta["calibration"]) and "cx" in meta["prior"]
    assert meta["unfrozen_layers"] == 3 and meta["finetune_epochs"] == 1
    for phase in ("training", "training_head"):
        assert (work / f"plots/keypoints/{phase}/plots/metrics/eval/mae.tsv").is_file()


def test_finetuning_leaves_batchnorm_statistics_untouched(run):
    """BatchNorm stays frozen and in inference mode: its moving statistics are the ones of the
    extractor that made the cached features."""
    work, _ = run
    before = load_model(work / "data/features/keypoints/mobilenet_v2.keras")
    after = load_model(work / "models/keypoints/model.keras")
    stats = {}
    for model, key in ((before, "before"), (after, "after")):
        for layer in model._flatten_layers():  # noqa: SLF001 - every nested layer
            if isinstance(layer, keras.layers.BatchNormalization):
                stats.setdefault(layer.name, {})[key] = layer.moving_mean.numpy()
    assert stats and all(len(pair) == 2 for pair in stats.values())
    for pair in stats.values():
        np.testing.assert_array_equal(pair["before"], pair["after"])


def predict_json(capsys, *args: str) -> list[dict]:
    cli(["predict", "--task", "keypoints", "--json", *args])
    return json.loads(capsys.readouterr().out)


def test_predict_agrees_with_the_evaluation_and_says_where_the_box_came_from(run, capsys):
    work, _ = run
    evaluated = pd.read_csv(work / "plots/keypoints/predictions.csv")
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    files = evaluated["source"].tolist()[:3]
    results = predict_json(capsys, "--models", str(work / "models"), *files)
    for result, (_, row) in zip(results, evaluated.head(3).iterrows(), strict=True):
        assert result["box"] == row["box"] and len(result["keypoints"]) == 68
        true = pixel_points(index[index["source"] == row["source"]])
        error = np.linalg.norm(np.array(result["keypoints"]) - true[0], axis=1).mean()
        assert error == pytest.approx(row["pixel_error"], abs=0.01)


def test_predict_keeps_going_past_an_unreadable_file(run, capsys, tmp_path):
    work, _ = run
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    face = str(work / "source/images/Person_A_00.jpg")
    with pytest.raises(SystemExit) as exit_:
        predict_json(capsys, "--models", str(work / "models"), str(broken), face)
    assert exit_.value.code == 1
    results = json.loads(capsys.readouterr().out)
    assert "error" in results[0] and len(results[1]["keypoints"]) == 68


def test_crop_targets_are_the_points_in_units_of_the_crop_side():
    """Hand-computed: box (x0, y0, side) = (10, 20, 50) puts (35, 45) at the middle, (10, 20)
    at the top left corner and (60, 70) at the bottom right; (0, 0, 100) puts (25, 75) at
    (0.25, 0.75)."""
    points = np.full((2, 68, 2), [35.0, 45.0])
    points[0, :2] = [[10, 20], [60, 70]]
    points[1] = [25, 75]
    index = pd.DataFrame(points.reshape(2, -1), columns=COORDINATE_COLUMNS).assign(
        crop_x0=[10.0, 0.0], crop_y0=[20.0, 0.0], crop_side=[50.0, 100.0])
    expected = np.full((2, 68, 2), [0.5, 0.5])
    expected[0, :2] = [[0, 0], [1, 1]]
    expected[1] = [0.25, 0.75]
    np.testing.assert_allclose(crop_targets(index, 32), expected.reshape(2, -1), atol=1e-7)


def test_gallery_true_points_sit_on_the_face_drawn_in_the_stored_crop(run):
    """The gallery draws `crop_targets` on the stored crops. Oracle: the synthetic face, filled
    around its landmarks in the original photo (face tone >= 120 on a background < 50), found
    again in each stored crop's pixels, against the points' own outline."""
    work, _ = run
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    test = np.flatnonzero(index["split"] == "test")
    images = np.load(work / "data/prepared/keypoints/images.npy")[test]
    shown = crop_targets(index.iloc[test], 32).reshape(len(test), 68, 2) * 32
    offsets = []
    for crop, points in zip(images, shown, strict=True):
        found = crop.mean(axis=-1) > 85  # the face's pixels (its drawn features excepted)
        outline = np.zeros((32, 32), np.uint8)
        hull = cv2.convexHull(points.astype(np.float32))
        cv2.fillConvexPoly(outline, np.round(hull * 16).astype(np.int32), 1, shift=4)
        outline = outline.astype(bool)
        assert (found & outline).sum() / (found | outline).sum() > 0.7  # measured >= 0.78
        offsets.append(np.abs(np.argwhere(found).mean(0) - np.argwhere(outline).mean(0)).max())
    # Measured: 0.19 px on average, 0.41 at most; points half a pixel off give 0.57 on average.
    assert np.mean(offsets) < 0.35 and max(offsets) < 0.75, offsets


@pytest.mark.parametrize("module", ["facetl.keypoints.evaluate", "facetl.keypoints.predict"])
def test_the_loading_modules_register_the_wing_loss_themselves(module):
    """A stage or `facetl predict` runs in a fresh interpreter: a model compiled with wing loss
    must load there, not only where a test happened to import the loss first."""
    import subprocess
    import sys

    code = (f"import {module}, keras; "
            "assert 'facetl>WingLoss' in keras.saving.get_custom_objects()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_saved_model_was_trained_with_the_configured_loss(run, monkeypatch):
    """Ignoring `keypoints.loss` would compile something else: wing (default), then l1.
    Last of the tests on the fixture: it leaves an l1 model behind."""
    work, _ = run
    monkeypatch.chdir(work)
    assert isinstance(load_model(work / "models/keypoints/model.keras").loss, WingLoss)
    with overridden(work, {"keypoints.loss": "l1", "keypoints.head.epochs": 1,
                           "keypoints.finetune.epochs": 1}):
        train.main()
        loss = load_model(work / "models/keypoints/model.keras").loss
    assert loss == "mean_absolute_error"
