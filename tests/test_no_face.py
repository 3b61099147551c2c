"""Where the front end finds no face: faceless pictures, the no-face group's own temperature,
and the answers evaluation and `facetl predict` give that group."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from benchmarks.workspace import REPO
from facetl import cli
from facetl.data.images import resize_square
from facetl.faces.detect import face_crop
from facetl.faces.faceless import KINDS, SIZES, faceless_pictures
from facetl.gender.no_face import NONE, no_face_calibration
from facetl.models.calibration import with_temperature
from tests.tiny_pipeline import trained_gender

BFLOAT16_GAP = 2e-3
FACES = yaml.safe_load((REPO / "params.yaml").read_text())["faces"] | {"align": True}


def test_the_front_end_finds_no_face_in_faceless_pictures():
    pictures = faceless_pictures(2 * len(KINDS), seed=3)
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in pictures)
    assert all(SIZES[0] <= side < SIZES[1] for p in pictures for side in p.shape[:2])
    assert [face_crop(p, FACES).status for p in pictures] == [NONE] * len(pictures)
    again = faceless_pictures(2 * len(KINDS), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(pictures, again, strict=True))
    assert not np.array_equal(pictures[0], faceless_pictures(1, seed=4)[0])


def sure_model(size: int) -> keras.Model:
    """Mean brightness -> a very sure answer: the kind of model that called noise male."""
    image = keras.Input((size, size, 3))
    mean = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image))
    output = keras.layers.Dense(1, activation="sigmoid")(mean)
    model = keras.Model(image, output)
    model.layers[-1].set_weights([np.full((3, 1), 10.0), np.array([-15.0])])
    return with_temperature(model, 1.5)


def weighted_log_loss(z_raw, targets, weights, temperature):
    p = np.clip(1 / (1 + np.exp(-z_raw / temperature)), 1e-12, 1 - 1e-12)
    return np.average(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)), weights=weights)


def test_the_no_face_temperature_minimises_the_weighted_log_loss_and_calms_faceless_answers():
    size, rng = 16, np.random.default_rng(0)
    model = sure_model(size)
    labels = rng.integers(0, 2, 40).astype(float)
    # validation answers: right, and sure (calibrated at the model's T of 1.5)
    p_validation = np.where(labels == 1, 0.97, 0.03)
    fitted = no_face_calibration(model, FACES, size, p_validation, labels, seed=0)
    n_faceless = fitted["fitted_on"]["faceless_pictures"]
    assert fitted["fitted_on"]["validation_photos"] == 40 and n_faceless == 40
    assert fitted["model_temperature"] == pytest.approx(1.5)

    # the oracle: the same loss, by brute force over a grid of temperatures
    pictures = faceless_pictures(n_faceless, seed=0)
    inputs = np.stack([resize_square(face_crop(p, FACES).image, size) for p in pictures])
    z_faceless = (inputs.mean(axis=(1, 2)) / 255) @ np.full(3, 10.0) - 15.0
    z_validation = np.log(p_validation / (1 - p_validation)) * 1.5
    z_raw = np.concatenate([z_validation, z_faceless])
    targets = np.concatenate([labels, np.full(n_faceless, 0.5)])
    weights = np.ones(len(z_raw))
    grid = np.exp(np.linspace(-4, 4, 4001))
    best = grid[np.argmin([weighted_log_loss(z_raw, targets, weights, t) for t in grid])]
    assert fitted["temperature"] == pytest.approx(best, rel=0.02)
    assert fitted["temperature"] > 1.5  # surer on noise than on people: the group is calmed


def test_with_the_front_end_off_there_is_no_group_to_calibrate():
    assert no_face_calibration(sure_model(16), {"align": False}, 16, np.array([0.9]),
                               np.array([1.0]), seed=0) is None


@pytest.fixture(scope="module")
def aligned(tmp_path_factory) -> Path:
    """The tiny pipeline behind the face front end: synthetic photos hold no face, so every
    photo is in the `none` group."""
    return trained_gender(tmp_path_factory.mktemp("no_face"), {"faces.align": True})


def predicted(folder: Path, monkeypatch, capsys) -> dict[str, float]:
    monkeypatch.chdir(folder)
    cli.main(["predict", "--task", "gender", "--json", str(folder / "source/images")])
    return {Path(r["image"]).name: r["p_male"] for r in json.loads(capsys.readouterr().out)}


def test_predict_and_evaluate_answer_the_none_group_with_its_own_temperature(
        aligned, monkeypatch, capsys):
    meta_file = aligned / "models/gender/model.json"
    meta = json.loads(meta_file.read_text())
    no_face = meta["no_face"]
    assert no_face["fitted_on"]["faceless_pictures"] > 0
    answers = predicted(aligned, monkeypatch, capsys)
    # evaluation scores what predict prints, the none group's temperature included
    evaluated = pd.read_csv(aligned / "plots/gender/predictions.csv")
    assert set(pd.read_csv(aligned / "data/prepared/gender/index.csv")["face"]) == {NONE}
    for row in evaluated.itertuples():
        assert answers[Path(row.source).name] == pytest.approx(row.p_positive, abs=2e-5)
    try:
        # the group's temperature equal to the model's: the model's own answers
        meta_file.write_text(json.dumps(meta | {"no_face": no_face | {
            "temperature": no_face["model_temperature"]}}))
        same = predicted(aligned, monkeypatch, capsys)
        meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "no_face"}))
        plain = predicted(aligned, monkeypatch, capsys)
        assert same == pytest.approx(plain, abs=2e-5)
        # a huge one: every answer of the group at 1/2
        meta_file.write_text(json.dumps(meta | {"no_face": no_face | {
            "temperature": 1e6 * no_face["model_temperature"]}}))
        calm = predicted(aligned, monkeypatch, capsys)
        assert max(abs(p - 0.5) for p in calm.values()) < 1e-3
        assert max(abs(p - 0.5) for p in plain.values()) > 1e-2
    finally:
        meta_file.write_text(json.dumps(meta))


def test_an_onnx_export_answers_the_none_group_with_its_own_temperature(
        aligned, monkeypatch, capsys):
    for module in ("tf2onnx", "onnxruntime"):
        pytest.importorskip(module)
    from facetl.ship.export import export
    from tests.test_export import git

    if not (aligned / ".git").is_dir():  # the export records the commit it came from
        git(aligned, "init", "-q")
        git(aligned, "commit", "-q", "--allow-empty", "-m", "workspace")
    folder = export("gender", "onnx", aligned / "exported/onnx", aligned / "models")
    by_keras = predicted(aligned, monkeypatch, capsys)

    def by_onnx() -> dict[str, float]:
        cli.main(["predict", "--task", "gender", "--json", "--runtime", "onnx", "--models",
                  str(folder.parent), str(aligned / "source/images")])
        return {Path(r["image"]).name: r["p_male"]
                for r in json.loads(capsys.readouterr().out)}

    carried = by_onnx()
    # the Keras model's backbone computes in bfloat16 (`auto` on a CPU with it), the export in
    # float32: a few 1e-4 apart
    assert carried == pytest.approx(by_keras, abs=BFLOAT16_GAP)
    # without the entry the manifest carries, the onnx answers are the model's plain ones
    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["model_json"].pop("no_face")
    manifest_file.write_text(json.dumps(manifest))
    plain = by_onnx()
    assert max(abs(carried[name] - plain[name]) for name in plain) > 10 * BFLOAT16_GAP
