"""The face front end through the stage bodies: faces -> prepare -> dlib_face -> linear -> predict,
and the face network fine-tuned end to end by the finetune stage.

Runs in a test folder as `dvc repro` would (tests/tiny_pipeline.py), on synthetic photos with
no face in them (they must reach the end through the fallbacks) plus one real face.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from facetl.core import paths
from facetl.gender import activations, download, evaluate, faces, finetune, prepare, train
from facetl.gender.predict import predict_gender
from facetl.models import features
from facetl.models.backbones import load_model
from tests.tiny_pipeline import tiny_params

OVERRIDES = {"faces.align": True, "backbone": "dlib_face", "head.type": "linear", "head.folds": 3,
             "faces.crop_size": 150, "prepare.gender.input_size": 150}


@pytest.mark.backend
def test_aligned_dlib_face_with_a_linear_head_end_to_end(tmp_path, monkeypatch):
    tiny_params(tmp_path, OVERRIDES)
    astronaut = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(astronaut)
    monkeypatch.chdir(tmp_path)
    download.main()
    faces.main()

    manifest = pd.read_csv(paths.faces_dir("gender") / "manifest.csv", keep_default_na=False)
    assert len(manifest) == 48 and set(manifest["face"]) <= {"found", "fallback", "none"}
    counts = json.loads(paths.metrics_path("faces_gender").read_text())
    assert counts["photos"] == 48 and counts["align"] is True
    assert (tmp_path / "plots/gender/faces.png").stat().st_size > 1000

    prepare.main()
    images = np.load(paths.prepared_dir("gender") / "images.npy")
    assert images.shape == (48, 150, 150, 3)
    features.main("gender")
    assert np.load(paths.features_path("gender", "dlib_face")).shape == (48, 128)
    train.main()
    finetune.main()  # off by default: passes the model on
    meta = json.loads((paths.model_dir("gender") / "model.json").read_text())
    assert meta["head"] == "linear" and meta["faces"]["crop_size"] == 150
    assert (tmp_path / "plots/gender/training/plots/metrics/eval/loss.tsv").is_file()
    evaluate.main()
    metrics = json.loads(paths.metrics_path("gender").read_text())
    assert metrics["backbone"] == "dlib_face"
    # accuracy per front-end group of the test photos, the groups adding up to all of them
    assert set(metrics["by_face"]) <= {"found", "fallback", "none"}
    assert sum(group["n"] for group in metrics["by_face"].values()) == metrics["n_test"]
    activations.main()  # the face network's convolutions and Grad-CAM, as for any backbone
    assert any((tmp_path / "plots/activations").rglob("*.png"))

    synthetic = sorted((tmp_path / "source/images").iterdir())[0]
    [face, faceless] = predict_gender([str(astronaut), str(synthetic)])
    assert face["face"] == "found" and face["faces"] >= 1
    assert faceless["face"] in ("fallback", "none")
    assert 0 <= face["p_male"] <= 1 and face["gender"] in ("female", "male")

    # --all-faces: a photo of two people (the astronaut beside her mirror image) answers for
    # each, one box per half of the photo; the largest still gives the photo's answer.
    pair, head = tmp_path / "pair.png", data.astronaut()[:300, 80:380]  # her face, 300 px
    Image.fromarray(np.concatenate([head, head[:, ::-1]], axis=1)).save(pair)
    [both] = predict_gender([str(pair)], all_faces=True)
    width = head.shape[1]
    assert both["faces"] == 2 and len(both["all_faces"]) == 2
    centres = sorted((box[0] + box[2]) / 2 for box in (f["box"] for f in both["all_faces"]))
    assert centres[0] < width < centres[1]
    assert both["p_male"] == both["all_faces"][0]["p_male"]
    [alone] = predict_gender([str(astronaut)], all_faces=True)
    assert len(alone["all_faces"]) == 1 and alone["all_faces"][0]["p_male"] == face["p_male"]
    assert "all_faces" not in face


@pytest.mark.backend
def test_the_finetune_stage_trains_the_face_network_end_to_end(tmp_path, monkeypatch):
    """`-S backbone=dlib_face -S head.type=linear -S finetune.gender.enabled=true`: every
    convolution of the face network learns, and the model stays calibrated and usable."""
    tiny_params(tmp_path, OVERRIDES | {"finetune.gender.enabled": True,
                                       "finetune.gender.epochs": 1})
    monkeypatch.chdir(tmp_path)
    for stage in (download.main, faces.main, prepare.main):
        stage()
    features.main("gender")
    train.main()
    frozen = load_model(paths.model_dir("gender_head") / "model.keras")
    finetune.main()
    meta = json.loads((paths.model_dir("gender") / "model.json").read_text())
    assert meta["finetuned"] is True and meta["unfrozen_layers"] == 30
    tuned = load_model(paths.model_dir("gender") / "model.keras")

    def first_kernel(model):
        return next(w for w in model.weights if "con0" in w.path and "kernel" in w.path).numpy()

    assert not np.allclose(first_kernel(frozen), first_kernel(tuned))
    evaluate.main()
    assert 0 <= json.loads(paths.metrics_path("gender").read_text())["accuracy"] <= 1
