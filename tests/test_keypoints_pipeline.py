"""The chapter's keypoint recipe (`keypoints.recipe: chapter`) end to end on synthetic faces
(32 px, random-weight VGG16, 2 epochs), then `facetl predict --task keypoints` on the model
they saved. The finetune recipe: test_keypoints_finetune.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from facetl.cli import main
from facetl.core.errors import FacetlError
from facetl.data.images import read_image
from facetl.keypoints import evaluate, train
from facetl.keypoints.losses import WingLoss
from facetl.keypoints.metrics import REGIONS, nme_per_image
from facetl.keypoints.prepare import pixel_points
from facetl.models.backbones import load_model
from tests.tiny_pipeline import keypoint_stages_run, overridden

REPO = Path(__file__).resolve().parents[1]


def tiny_params(source: Path) -> dict:
    """The real params.yaml, shrunk, written to the working folder."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["keypoints"] = {"csv": str(source / "keypoints.csv"),
                                   "images": str(source / "images")}
    params["prepare"]["keypoints"].update(input_size=32, test_size=0.2, flip=True)
    params["keypoints"]["backbone"] = "vgg16"
    params["backbone"] = "resnet50"  # the gender task's (ImageNet weights): never read here
    params["backbones"]["vgg16"]["weights"] = "none"
    params["train"]["keypoints"]["epochs"] = 2
    params["keypoints"]["recipe"] = "chapter"  # one param away from the default
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A working directory in which all five keypoint stages have run; yields (dir, params)."""
    work = tmp_path_factory.mktemp("keypoints")
    with keypoint_stages_run(work, tiny_params) as params:
        yield work, params


def test_metrics_file_has_the_promised_figures(run):
    work, _ = run
    metrics = json.loads((work / "metrics/keypoints.json").read_text())
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    assert metrics["n_test"] == (index["split"] == "test").sum() > 0
    for key in ("nme", "pixel_error", "failure_rate", "baseline_nme", "val_mae_normalised",
                "test_mae_normalised", "ced_auc"):
        assert np.isfinite(metrics[key]) and metrics[key] >= 0, key
    assert 0 <= metrics["failure_rate"] <= 1
    assert set(metrics["nme_regions"]) == set(REGIONS)
    per_image = pd.read_csv(work / "plots/keypoints/predictions.csv")
    assert len(per_image) == metrics["n_test"]
    assert per_image["nme"].mean() == pytest.approx(metrics["nme"], abs=1e-4)
    assert per_image["baseline_nme"].mean() == pytest.approx(metrics["baseline_nme"], abs=1e-4)
    assert metrics["recipe"] == "chapter" and metrics["misses"] == 0
    assert per_image["dlib_nme"].mean() == pytest.approx(metrics["dlib_nme"], abs=1e-4)


def test_the_head_reports_its_speed_and_is_saved_as_the_chapters_conv(run):
    work, _ = run
    speed = json.loads((work / "metrics/train_keypoints.json").read_text())["speed"]
    assert list(speed) == ["head"] and speed["head"]["gflop_per_s"] > 0
    head = load_model(work / "models/keypoints/head.keras")
    assert {type(layer).__name__ for layer in head.layers} >= {"Conv2D"}
    assert "PatchConv2D" not in {type(layer).__name__ for layer in head.layers}


def test_features_cover_the_mirrored_copies(run):
    work, _ = run
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    features = np.load(work / "data/features/keypoints/vgg16.npy", mmap_mode="r")
    assert index["mirrored"].any() and len(features) == len(index)


def test_plots_and_models_are_written(run):
    work, _ = run
    plots = work / "plots/keypoints"
    for png in ("training.png", "ced.png", "gallery.png"):
        assert read_image(plots / png).shape[0] > 100
    curve = pd.read_csv(plots / "ced.csv")
    assert curve.columns.tolist() == ["nme", "model", "baseline", "dlib"]
    assert (np.diff(curve["model"]) >= 0).all() and curve["model"].between(0, 1).all()
    assert (plots / "training/plots/metrics/eval/mae.tsv").is_file()
    meta = json.loads((work / "models/keypoints/model.json").read_text())
    assert meta["task"] == "keypoints" and meta["input_size"] == 32 and meta["points"] == 68
    assert meta["recipe"] == "chapter"


def predict_json(capsys, *args: str) -> list[dict]:
    main(["predict", "--task", "keypoints", "--json", *args])
    return json.loads(capsys.readouterr().out)


def test_predict_prints_68_points_in_pixels_of_each_input(run, capsys, tmp_path):
    work, _ = run
    face = work / "source/images/Person_A_03.jpg"
    image = read_image(face)
    bigger = tmp_path / "bigger.png"  # the same face at twice the size
    Image.fromarray(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)).save(bigger)
    results = predict_json(capsys, "--models", str(work / "models"), str(face), str(bigger))
    assert [r["image"] for r in results] == [str(face), str(bigger)]
    small, large = (np.array(r["keypoints"]) for r in results)
    assert small.shape == large.shape == (68, 2)
    height, width = image.shape[:2]
    assert (np.abs(small) < 3 * max(height, width)).all()
    # The model sees (nearly) the same 32 px input, so pixel points scale with the input.
    np.testing.assert_allclose(large, 2 * small, atol=0.05 * width)


def test_predict_agrees_with_the_evaluation(run, capsys):
    """One model file (preprocessing, backbone, head) gives the evaluated points back."""
    work, _ = run
    evaluated = pd.read_csv(work / "plots/keypoints/predictions.csv").iloc[0]
    index = pd.read_csv(work / "data/prepared/keypoints/index.csv")
    row = index[(index["source"] == evaluated["source"]) & ~index["mirrored"]]
    true = pixel_points(row)
    [result] = predict_json(capsys, "--models", str(work / "models"), evaluated["source"])
    nme = nme_per_image(np.array(result["keypoints"])[None], true)[0]
    assert nme == pytest.approx(evaluated["nme"], abs=2e-3)


def test_predict_overlay_draws_each_image(run, capsys, tmp_path):
    work, _ = run
    faces = [work / "source/images/Person_B_00.jpg", work / "source/images/Person_C_01.jpg"]
    results = predict_json(capsys, "--models", str(work / "models"), "--overlay",
                           str(tmp_path / "overlays"), *map(str, faces))
    for face, result in zip(faces, results, strict=True):
        drawn = read_image(result["overlay"])
        original = read_image(face)
        assert drawn.shape == original.shape and (drawn != original).any()
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == [
        "Person_B_00_keypoints.png", "Person_C_01_keypoints.png"]


def test_predict_errors_are_clear(run, capsys, tmp_path):
    work, _ = run
    face = str(work / "source/images/Person_A_00.jpg")
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--task", "keypoints", "--models", str(tmp_path), face])
    assert exit_.value.code == 2 and "no trained keypoints model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "--task", "gender", "--overlay", str(tmp_path), face])
    assert "--overlay applies to keypoints" in capsys.readouterr().err


def test_one_unreadable_file_loses_no_other_prediction(run, capsys, tmp_path, monkeypatch):
    """Streamed in batches of 2: the bad files are error entries in input order, the rest are
    predicted, and the exit status says something failed."""
    work, _ = run
    monkeypatch.setattr("facetl.models.inference.BATCH", 2)
    faces = sorted(str(f) for f in (work / "source/images").glob("Person_A_*.jpg"))[:3]
    broken = tmp_path / "broken.jpg"
    broken.write_text("<html></html>")
    inputs = [faces[0], str(broken), faces[1], str(tmp_path / "absent.jpg"), faces[2]]
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--task", "keypoints", "--json", "--models", str(work / "models"),
              *inputs])
    assert exit_.value.code == 1
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == inputs
    assert "cannot read as an image" in results[1]["error"]
    assert "no such image file" in results[3]["error"]
    assert all(len(results[i]["keypoints"]) == 68 for i in (0, 2, 4))


def test_predict_takes_folders_and_patterns(run, capsys):
    work, _ = run
    folder = work / "source/images"
    main(["predict", "--task", "keypoints", "--json", "--models", str(work / "models"),
          str(folder), str(folder / "Person_A_0*.jpg")])
    images = [r["image"] for r in json.loads(capsys.readouterr().out)]
    everything = sorted(str(f) for f in folder.glob("*.jpg"))
    assert images == everything + sorted(str(f) for f in folder.glob("Person_A_0*.jpg"))


def test_wing_loss_and_linear_output_train_too(run, monkeypatch):
    work, _ = run
    monkeypatch.chdir(work)
    with overridden(work, {"train.keypoints.loss": "wing", "train.keypoints.activation": "linear",
                           "train.keypoints.epochs": 1}):
        train.main()
        evaluate.main()  # reloads a head compiled with wing loss
    # The saved head was compiled with the configured loss: ignoring `loss` would leave MAE.
    assert isinstance(load_model(work / "models/keypoints/head.keras").loss, WingLoss)
    meta = json.loads((work / "models/keypoints/model.json").read_text())
    assert meta["val_mae_normalised"] >= 0
    assert np.isfinite(json.loads((work / "metrics/keypoints.json").read_text())["nme"])


@pytest.mark.parametrize(("key", "value"), [("activation", "tanh"), ("loss", "huber")])
def test_bad_head_choices_are_clear_errors(run, monkeypatch, key, value):
    work, _ = run
    monkeypatch.chdir(work)
    with (overridden(work, {f"train.keypoints.{key}": value}),
          pytest.raises(FacetlError, match=f"train.keypoints.{key} must be one of")):
        train.main()
