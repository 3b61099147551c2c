"""`facetl export`: every format, loaded back by its own runtime, agrees with the Keras model
(float32: the same label on every photo, p within 1e-4); the manifest says what to feed it and
where it came from; `facetl predict --runtime onnx` answers as `--runtime keras` does.

The tiny models' temperatures are set to 20 first: calibrated on a handful of photos they say
0 or 1 for everything, and p within 1e-4 of 0 or 1 proves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from benchmarks.workspace import REPO
from facetl import cli
from facetl.core.params import load_params
from facetl.core.paths import model_dir
from facetl.data.images import read_image, resize_square
from facetl.faces.dlib_models import PACKAGED
from facetl.models.backbones import build_extractor, load_model
from facetl.models.calibration import temperature_layers, with_temperature
from facetl.models.linear_head import linear_head
from facetl.models.saving import end_to_end, save_task_model
from facetl.ship.card import model_card
from facetl.ship.export import export, recorded_params
from tests.test_keypoints_finetune import tiny_params as finetune_params
from tests.tiny_pipeline import keypoint_stages_run, trained_gender

FORMATS = ("onnx", "saved_model", "litert")
NEEDS = {"onnx": ("tf2onnx", "onnxruntime"), "saved_model": (),
         "litert": ("ai_edge_litert.interpreter",)}
TEMPERATURE = 20.0
TOLERANCE = 1e-4


def run_file(fmt: str, folder: Path, x: np.ndarray) -> np.ndarray:
    """The exported file run by its format's own runtime, as a user without facetl would."""
    x = np.asarray(x, dtype="float32")
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(folder / "saved_model"))
        return loaded.serve(x).numpy()
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    source = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(source, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def retemper(model_file: Path, temperature: float) -> None:
    model = load_model(model_file)
    for layer in temperature_layers(model):
        layer.temperature = temperature
    model.save(model_file)


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A trained tiny gender model (float32 backbone) in a git checkout of one commit."""
    folder = trained_gender(tmp_path_factory.mktemp("export"), {"features.precision": "float32"})
    retemper(folder / "models/gender/model.keras", TEMPERATURE)
    git(folder, "init", "-q")
    git(folder, "commit", "-q", "--allow-empty", "-m", "workspace")
    return folder


def exporter(task: str, workspace: Path):
    """fmt -> the exported folder, each format exported once per module."""
    made: dict[str, Path] = {}

    def get(fmt: str) -> Path:
        for module in NEEDS[fmt]:
            pytest.importorskip(module)
        if fmt not in made:
            made[fmt] = export(task, fmt, workspace / "exported" / fmt, workspace / "models")
        return made[fmt]

    return get


@pytest.fixture(scope="module")
def exported(workspace):
    return exporter("gender", workspace)


def photos(workspace: Path) -> list[str]:
    return sorted(str(p) for p in (workspace / "source/images").iterdir())


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_keras_label_and_probability(workspace, exported, fmt):
    folder = exported(fmt)
    x = np.stack([resize_square(read_image(f), 32) for f in photos(workspace)]).astype("float32")
    keras_p = load_model(workspace / "models/gender/model.keras").predict(x, verbose=0)[:, 0]
    file_p = run_file(fmt, folder, x)[:, 0]
    assert np.ptp(keras_p) > 1e-3  # the check below can see a difference
    assert ((file_p >= 0.5) == (keras_p >= 0.5)).all()
    assert np.abs(file_p - keras_p).max() < TOLERANCE


def test_the_manifest_says_what_to_feed_and_where_the_model_came_from(workspace, exported):
    folder = exported("onnx")
    manifest = json.loads((folder / "manifest.json").read_text())
    model_json = json.loads((workspace / "models/gender/model.json").read_text())
    assert manifest["task"] == "gender" and manifest["format"] == "onnx"
    assert (folder / manifest["file"]).is_file()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    assert manifest["input"]["name"] == session.get_inputs()[0].name
    assert manifest["input"]["shape"] == [None, 32, 32, 3]
    assert manifest["input"]["dtype"] == "float32" and manifest["input"]["layout"] == "NHWC"
    assert manifest["input_size"] == 32 and manifest["preprocessing"]["in_graph"] == "caffe"
    assert manifest["classes"] == ["female", "male"] and manifest["positive_class"] == "male"
    assert manifest["calibration"]["temperature"] == pytest.approx(TEMPERATURE)
    assert manifest["faces"] == model_json["faces"] and manifest["model_json"] == model_json
    assert manifest["made_by"]["git_revision"] == git(workspace, "rev-parse", "HEAD")
    assert manifest["made_by"]["git_dirty"] is False
    assert manifest["params"] is None  # no dvc.lock: nothing recorded, nothing made up
    assert manifest["check"]["max_abs_difference"] < TOLERANCE


def test_the_model_card_reads_the_measured_accuracy_or_says_not_measured(workspace, exported,
                                                                         tmp_path):
    folder = exported("onnx")
    card = (folder / "MODEL_CARD.md").read_text()
    metrics = json.loads((workspace / "metrics/gender.json").read_text())
    assert f"| test split | all | {metrics['n_test']} | {100 * metrics['accuracy']:.1f}%" in card
    assert git(workspace, "rev-parse", "HEAD") in card and "facetl export" in card
    assert "research use only" in card
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "Not measured" in model_card(manifest, tmp_path)


def predict_json(capsys, *args: str) -> list[dict]:
    cli.main(["predict", "--json", *args])
    return json.loads(capsys.readouterr().out)


def test_predict_with_onnx_runtime_answers_as_keras(workspace, exported, monkeypatch, capsys):
    folder = exported("onnx")
    monkeypatch.chdir(workspace)
    files = photos(workspace)
    by_keras = predict_json(capsys, *files)
    by_onnx = predict_json(capsys, "--runtime", "onnx", "--models", str(folder.parent), *files)
    assert [r["gender"] for r in by_onnx] == [r["gender"] for r in by_keras]
    assert np.abs(np.array([r["p_male"] for r in by_onnx])
                  - [r["p_male"] for r in by_keras]).max() < TOLERANCE
    assert [{k: v for k, v in r.items() if k != "p_male"} for r in by_onnx] == [
        {k: v for k, v in r.items() if k != "p_male"} for r in by_keras]


def one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_without_a_model_or_a_runtime_each_route_says_so_in_one_line(
        workspace, exported, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, ["export", "--task", "gender", "--format", "saved_model"])
    assert err.startswith("error: no trained gender model in models/gender") and "dvc repro" in err
    assert not (tmp_path / "exported").exists()
    err = one_line_error(capsys, ["predict", "--runtime", "onnx", "x.jpg"])
    assert err.startswith("error: no exported gender model in exported/onnx/gender")
    folder = exported("onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    err = one_line_error(capsys, ["predict", "--runtime", "onnx", "--models", str(folder.parent),
                                  photos(workspace)[0]])
    assert "ONNX Runtime is not installed" in err and "facetl[export]" in err


def test_params_come_from_the_stages_upstream_of_the_model_in_dvc_lock(tmp_path):
    stages = {
        "prepare": {"deps": [{"path": "data/raw"}], "outs": [{"path": "data/prepared/gender"}],
                    "params": {"params.yaml": {"seed": 1}}},
        "train": {"deps": [{"path": "data/prepared/gender/index.csv"}],
                  "outs": [{"path": "models/gender_head"}],
                  "params": {"params.yaml": {"train.gender": {"epochs": 2}}}},
        "finetune": {"deps": [{"path": "models/gender_head"}], "outs": [{"path": "models/gender"}],
                     "params": {"params.yaml": {"finetune.gender": {"enabled": False}}}},
        "evaluate": {"deps": [{"path": "models/gender"}], "outs": [{"path": "metrics/x.json"}],
                     "params": {"params.yaml": {"evaluate": 1}}},  # downstream: not its params
    }
    (tmp_path / "dvc.lock").write_text(json.dumps({"schema": "2.0", "stages": stages}))
    assert recorded_params(tmp_path, "gender") == {
        "stages": ["finetune", "prepare", "train"],
        "values": {"seed": 1, "train.gender": {"epochs": 2}, "finetune.gender": {"enabled": False}}}
    assert recorded_params(tmp_path, "keypoints") is None


@pytest.fixture(scope="module")
def keypoint_workspace(tmp_path_factory):
    """The finetune recipe (the default) trained on synthetic faces, exported as ONNX."""
    work = tmp_path_factory.mktemp("export_keypoints")
    with keypoint_stages_run(work, finetune_params):
        pass
    return work


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_keypoint_network_exports_in_every_format(keypoint_workspace, fmt):
    folder = exporter("keypoints", keypoint_workspace)(fmt)
    crops = np.load(keypoint_workspace / "data/prepared/keypoints/images.npy")[:8]
    expected = load_model(keypoint_workspace / "models/keypoints/model.keras").predict(
        crops.astype("float32"), verbose=0)
    assert np.abs(run_file(fmt, folder, crops) - expected).max() < TOLERANCE
    manifest = json.loads((folder / "manifest.json").read_text())
    model_json = json.loads((keypoint_workspace / "models/keypoints/model.json").read_text())
    for key in ("recipe", "margin", "detector", "upsample", "passes", "flip_tta", "calibration",
                "prior", "units"):
        assert manifest["keypoints"][key] == model_json[key], key
    assert "classes" not in manifest  # points, not a probability


def test_predict_keypoints_with_onnx_runtime_finds_the_keras_points(keypoint_workspace, capsys):
    folder = exporter("keypoints", keypoint_workspace)("onnx")
    files = sorted(str(p) for p in (keypoint_workspace / "source/images").iterdir())[:6]
    models = ["--task", "keypoints", "--models"]
    by_keras = predict_json(capsys, *models, str(keypoint_workspace / "models"), *files)
    by_onnx = predict_json(capsys, "--runtime", "onnx", *models, str(folder.parent), *files)
    assert [r["box"] for r in by_onnx] == [r["box"] for r in by_keras]
    # two passes, each cropping around the last points: a 1e-6 difference stays far below 0.05 px
    assert np.abs(np.array([r["keypoints"] for r in by_onnx])
                  - [r["keypoints"] for r in by_keras]).max() <= 0.05


def test_a_dlib_face_model_exports_whole_and_runs_without_dlibs_descriptor(
        tmp_path, monkeypatch, capsys):
    """The face ResNet is in the file: raw pixels in, the calibrated probability out; `predict
    --runtime onnx` then uses dlib for finding and aligning faces only."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    import dlib

    monkeypatch.chdir(tmp_path)
    extractor = build_extractor("dlib_face", PACKAGED, 150)
    # The route's own head: a fitted logistic regression (standardisation and all).
    rng = np.random.default_rng(0)
    linear = linear_head((128,), rng.normal(0, 0.1, 128), rng.uniform(0.05, 0.2, 128),
                         rng.normal(0, 0.3, 128), 0.1)
    head = with_temperature(linear, 2.0)
    model = end_to_end(extractor, head, "gender_dlib_face")
    save_task_model("gender", model, head,
                    {"task": "gender", "backbone": "dlib_face", "classes": ["female", "male"],
                     "faces": load_params(REPO / "params.yaml")["faces"] | {"align": False}})
    folder = export("gender", "onnx", Path("exported/onnx"), model_dir("gender").parent)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["input"]["shape"] == [None, 150, 150, 3] and "descriptor" not in manifest
    photos = rng.integers(0, 256, (5, 150, 150, 3)).astype("float32")
    np.testing.assert_allclose(run_file("onnx", folder, photos), model.predict(photos, verbose=0),
                               atol=TOLERANCE)
    files = []
    for number in range(3):
        files.append(str(tmp_path / f"photo{number}.png"))
        keras.utils.save_img(files[-1], rng.integers(0, 256, (160, 150, 3)).astype("uint8"))
    by_keras = predict_json(capsys, *files)

    def no_descriptor(*args):
        raise AssertionError("dlib's descriptor was called")

    monkeypatch.setattr(dlib, "face_recognition_model_v1", no_descriptor)
    by_onnx = predict_json(capsys, "--runtime", "onnx", *files)
    assert [r["gender"] for r in by_onnx] == [r["gender"] for r in by_keras]
    assert np.abs(np.array([r["p_male"] for r in by_onnx])
                  - [r["p_male"] for r in by_keras]).max() < TOLERANCE
