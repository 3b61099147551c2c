"""The settings schema: every mistake in params.yaml is one line naming the key and what is
expected, before any work; model.json files are checked as they load, through the renames."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.workspace import REPO, commit_all, copy_repository, run, set_params
from facetl.core.errors import FacetlError
from facetl.core.params import load_params
from facetl.core.schema import RENAMES, renamed, validate_model_file, validate_params
from tests.synthetic import write_labels_csv

REAL = yaml.safe_load((REPO / "params.yaml").read_text())
MISSING = object()

# (dotted key, bad value, what the message must say is expected): written by hand, so a test
# fails when the schema's words drift from what the code accepts.
BAD = [
    ("seed", -1, "an integer >= 0"),
    ("seed", "42", "an integer >= 0"),
    ("backbone", "resnet", "a name under backbones; did you mean resnet50?"),
    ("backbones.vgg16.preprocess", "keras", "one of caffe, tf, torch, raw, or null"),
    ("backbones.vgg16.weights", "no/such/file.h5",
     "imagenet, none, or the path of a weights file (no such file)"),
    ("data.gender.classes", ["female", "male", "unsure"], "exactly two distinct class names"),
    ("data.gender.classes", ["Male", "male"], "exactly two distinct class names"),
    ("data.gender.classes", "female,male", "exactly two distinct class names"),
    ("data.gender.per_class", 0, "an integer >= 1 (the first N photos of each class), or null"),
    ("data.gender.per_class", "all", "an integer >= 1 (the first N photos of each class), or null"),
    ("data.gender.path_column", "", "a non-empty text"),
    ("faces.align", "yes", "true or false"),
    ("faces.upsample", 4, "an integer from 0 to 3"),
    ("faces.detect_long_side", 40, "an integer >= 80"),
    ("faces.pad", 1.5, "a number from 0 to 1"),
    ("faces.crop_size", 8, "an integer >= 16 (pixels)"),
    ("faces.margin", "wide", "a number from 0 to 2"),
    ("download.max_mb", 0, "a number > 0"),
    ("prepare.gender.input_size", 16, "an integer >= 32"),
    ("prepare.gender.test_size", 1.0, "a number > 0 and < 1"),
    ("features.precision", "fp16", "one of auto, float32, bfloat16, float16"),
    ("features.storage", "int8", "one of float32, float16"),
    ("head.type", "svm", "one of chapter, linear"),
    ("head.c_grid", [], "a list of numbers > 0"),
    ("head.c_grid", [0.1, -1], "a list of numbers > 0"),
    ("head.folds", 1, "an integer >= 2"),
    ("train.gender.learning_rate", "1e-3", "a number > 0 (YAML reads 1e-3 as text: write 1.0e-3)"),
    ("train.gender.epochs", "10", "an integer >= 1"),
    ("train.gender.dropout", 1.0, "a number >= 0 and < 1"),
    ("train.keypoints.loss", "huber", "one of mae, l1, mse, wing"),
    ("finetune.gender.unfreeze", -2, "an integer >= -1 (-1: all layers but BatchNorm)"),
    ("finetune.gender.unfreeze", True, "an integer >= -1"),
    ("finetune.gender.unfreeze", 2.5, "an integer >= -1"),
    ("finetune.gender.enabled", "no", "true or false"),
    ("finetune.gender.optimizer", "sgd", "one of adamw, adam"),
    ("finetune.gender.optimizer", MISSING, "one of adamw, adam"),
    ("finetune.gender.weight_decay", -0.1, "a number >= 0"),
    ("finetune.gender.augment", 5, "a mapping of flip, rotate_deg"),
    ("finetune.gender.augment.grayscale_p", 2, "a number from 0 to 1"),
    ("finetune.gender.augment.scale", 1.0, "a number >= 0 and < 1"),
    ("finetune.gender.augment.jpeg_quality_min", 0, "an integer from 1 to 100"),
    ("ood.gender.source", None, "a local CSV or a folder"),
    ("repeats.splits", 0, "an integer >= 1"),
    ("scratch.common.filters", [64, 0], "a list of integers >= 1"),
    ("scratch.scenarios.large.max_train_images", 0, "an integer >= 1, or null"),
    ("activations.images", -3, "a count of test photos"),
    ("activations.gradcam_method", "cam", "one of hirescam, gradcam"),
    ("activations.gradcam_alpha", 2, "a number from 0 to 1"),
    ("keypoints.recipe", "Chapter", "one of finetune, chapter"),
    ("keypoints.backbone", "mobilenet", "a name under backbones; did you mean mobilenet_v2?"),
    ("keypoints.crop.margin", 0.5, "a number from 1 to 3"),
    ("keypoints.head.type", "dense", "one of gdconv, conv, gap"),
    ("keypoints.finetune.epochs", -1, "an integer >= 0"),
    ("keypoints.finetune.optimizer", MISSING, "one of adamw, adam"),
    ("keypoints.inference.detector", "cnn", "one of dlib, none"),
    ("keypoints.inference.passes", 0, "an integer >= 1"),
]


def with_setting(dotted: str, value: object) -> dict:
    """A copy of the real params with one leaf set (or removed: MISSING)."""
    params = copy.deepcopy(REAL)
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    if value is MISSING:
        del node[leaf]
    else:
        node[leaf] = value
    return params


def message(params: dict) -> str:
    with pytest.raises(FacetlError) as caught:
        validate_params(params)
    return str(caught.value)


def test_the_real_params_yaml_is_valid() -> None:
    validate_params(REAL)


@pytest.mark.parametrize("key,value,expected", BAD, ids=[f"{k}={v!r}"[:60] for k, v, _ in BAD])
def test_a_bad_setting_is_one_line_naming_key_and_expectation(key: str, value: object,
                                                               expected: str) -> None:
    text = message(with_setting(key, value))
    assert "\n" not in text
    shown = "(missing)" if value is MISSING else ""
    assert text.startswith(f"params.yaml: {key} = {shown}")
    assert f": expected {expected}" in text


def test_the_issue_example_word_for_word() -> None:
    assert message(with_setting("finetune.gender.unfreeze", "abc")) == (
        "params.yaml: finetune.gender.unfreeze = 'abc': expected an integer >= -1 "
        "(-1: all layers but BatchNorm)")


def test_three_classes_fail() -> None:
    text = message(with_setting("data.gender.classes", ["female", "male", "other"]))
    assert text == ("params.yaml: data.gender.classes = ['female', 'male', 'other']: expected "
                    "exactly two distinct class names (the second is the positive class)")


def test_an_unknown_key_gets_the_closest_known_name() -> None:
    params = with_setting("finetune.gender.unfrezee", 3)
    assert message(params) == ("params.yaml: finetune.gender.unfrezee = 3: not a setting; "
                               "did you mean finetune.gender.unfreeze?")
    params = with_setting("finetune.gender.augment.blurp", 0.1)
    assert "did you mean finetune.gender.augment.blur_p?" in message(params)


def test_an_unknown_key_with_no_close_name_lists_the_known_ones() -> None:
    text = message(with_setting("qwerty", 1))
    assert text.startswith("params.yaml: qwerty = 1: not a setting; the top level has seed, ")


def test_old_names_say_what_they_became() -> None:
    old = with_setting("faces.size", 300)
    del old["faces"]["crop_size"]
    assert message(old) == "params.yaml: faces.size = 300: renamed to faces.crop_size"
    text = message(with_setting("keypoints.finetune.workers", 2))
    assert text.startswith("params.yaml: keypoints.finetune.workers = 2: removed (")
    assert "FACETL_WORKERS" in text


def test_every_mistake_is_reported_each_on_its_line() -> None:
    params = with_setting("faces.upsample", 9)
    params["head"]["type"] = "svm"
    params["keypoints"]["inference"]["passes"] = 0
    lines = message(params).splitlines()
    assert [line.split(" = ")[0] for line in lines] == [
        "params.yaml: faces.upsample", "params.yaml: head.type",
        "params.yaml: keypoints.inference.passes"]


def test_a_weights_file_that_exists_is_accepted(tmp_path: Path) -> None:
    weights = tmp_path / "vgg16.h5"
    weights.write_bytes(b"")
    validate_params(with_setting("backbones.vgg16.weights", str(weights)))
    validate_params(with_setting("backbones.vgg16.weights", "none"))


def test_free_form_leaves_take_every_form_the_code_reads() -> None:
    for key, value in (("data.gender.per_class", None), ("activations.images", ["a.jpg", 3]),
                       ("activations.image", "a.jpg"), ("data.keypoints.images", None),
                       ("backbones.vgg16.preprocess", "torch"), ("keypoints.finetune.epochs", 0),
                       ("finetune.gender.learning_rate", 1)):
        validate_params(with_setting(key, value))


def test_every_stage_entry_checks_the_params_before_its_task_imports() -> None:
    """The task's import loads TensorFlow (seconds, and log lines on stderr): a stage entry
    calls check_params() before it (importing only core's stage helpers and its task's light
    schema), so a bad setting fails at once and in one line."""
    for script in sorted((REPO / "stages").glob("*.py")):
        body = next(node for node in ast.parse(script.read_text()).body
                    if isinstance(node, ast.If)).body
        order = []
        for node in body:
            if isinstance(node, ast.ImportFrom) and not (
                    node.module == "facetl.core.stage" or node.module.endswith(".schema")):
                order.append("import")
            elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                  and getattr(node.value.func, "id", "") == "check_params"):
                order.append("check")
        assert order and order[0] == "check", f"{script.name}: check_params() first"


def test_a_stage_with_a_bad_setting_exits_2_in_one_line_at_once(tmp_path: Path) -> None:
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/train_gender.py").write_text((REPO / "stages/train_gender.py").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_setting("finetune.gender.unfreeze",
                                                                      "abc")))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "stages/train_gender.py"], cwd=tmp_path,
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - start
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: params.yaml: finetune.gender.unfreeze = 'abc': expected an integer >= -1 "
        "(-1: all layers but BatchNorm)"]
    assert "Traceback" not in result.stdout + result.stderr
    assert seconds < 5  # TensorFlow's import alone takes longer: the check came before it


def test_renamed_moves_old_names_and_keeps_new_ones() -> None:
    assert RENAMES["faces.size"] == "faces.crop_size"
    old = {"faces": {"size": 300, "align": True}, "seed": 1}
    assert renamed(old) == {"faces": {"crop_size": 300, "align": True}, "seed": 1}
    assert old == {"faces": {"size": 300, "align": True}, "seed": 1}  # a copy
    both = {"faces": {"size": 300, "crop_size": 200}}
    assert renamed(both) == {"faces": {"crop_size": 200}}
    assert renamed({"faces": None}) == {"faces": None}


def gender_meta() -> dict:
    faces = {k: v for k, v in REAL["faces"].items() if k != "crop_size"} | {"size": 300}
    return {"input_size": 300, "task": "gender", "backbone": "vgg16", "classes": ["female", "male"],
            "head": "chapter", "faces": faces, "finetuned": False}


def test_a_model_saved_before_the_rename_reads_with_the_new_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from facetl.models.saving import load_task_model, save_task_model

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((8, 8, 3))
    save_task_model("gender", keras.Model(inputs, keras.layers.Flatten()(inputs)), None, {})
    (tmp_path / "models/gender/model.json").write_text(json.dumps(gender_meta()))
    _, meta = load_task_model("gender", tmp_path / "models")
    assert meta["faces"]["crop_size"] == 300 and "size" not in meta["faces"]


@pytest.mark.parametrize("change,key,expected", [
    ({"classes": ["a", "b", "c"]}, "classes", "exactly two distinct class names"),
    ({"input_size": "300"}, "input_size", "an integer >= 1"),
    ({"task": "keypoints"}, "task", "one of gender"),
    ({"faces": {"align": True}}, "faces.upsample", "an integer from 0 to 3"),
])
def test_a_bad_gender_model_file_names_the_file_and_key(change: dict, key: str,
                                                        expected: str) -> None:
    with pytest.raises(FacetlError) as caught:
        validate_model_file(gender_meta() | change, "models/gender/model.json", "gender")
    line = str(caught.value).splitlines()[0]
    assert line.startswith(f"models/gender/model.json: {key} = ")
    assert f"expected {expected}" in line and line.endswith("retrain the model with `dvc repro`")


def test_a_keypoint_model_file_needs_what_inference_reads() -> None:
    meta = {"input_size": 32, "task": "keypoints", "backbone": "mobilenet_v2",
            "recipe": "finetune", "head": "gdconv", "loss": "wing", "val_mae_crop": 0.1,
            "margin": 1.25, "detector": "dlib", "upsample": 1, "passes": 2, "flip_tta": False,
            "calibration": {"dx": 0.0, "dy": 0.1, "ratio": 1.1, "fitted_on": 10},
            "prior": {"cx": 0.5, "cy": 0.5, "side": 0.4}, "points": 68}
    assert validate_model_file(meta, "m.json", "keypoints") == meta
    with pytest.raises(FacetlError, match=r"^m.json: calibration = \(missing\): expected"):
        validate_model_file({k: v for k, v in meta.items() if k != "calibration"}, "m.json",
                            "keypoints")
    with pytest.raises(FacetlError, match="m.json: expected a JSON object"):
        validate_model_file([1, 2], "m.json", "keypoints")


@pytest.fixture(scope="module")
def experiment_repo(tmp_path_factory):
    """A copy of the repository on a local gender source: nothing in it needs the network."""
    data = write_labels_csv(tmp_path_factory.mktemp("data"), per_class=4, people=4)
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    set_params(repo, {"data.gender.source": str(data),
                      "data.gender.images": str(data.parent / "images"),
                      "data.gender.path_column": "filename", "data.gender.label_column": "gender"})
    commit_all(repo, "local data")
    return repo


@pytest.mark.e2e
@pytest.mark.parametrize("override,line", [
    ("finetune.gender.unfreeze=abc", "error: params.yaml: finetune.gender.unfreeze = 'abc': "
                                     "expected an integer >= -1"),
    ("data.gender.classes=[female,male,other]",
     "error: params.yaml: data.gender.classes = ['female', 'male', 'other']: expected exactly"),
    ("activations.gradcam_method=cam",
     "error: params.yaml: activations.gradcam_method = 'cam': expected one of hirescam, gradcam"),
])
def test_dvc_exp_run_with_a_bad_setting_fails_at_the_first_stage(experiment_repo: Path,
                                                                 override: str,
                                                                 line: str) -> None:
    """Even a setting only the last stage reads fails the first one, before any work."""
    try:
        result = run(["dvc", "exp", "run", "-S", override], experiment_repo, check=False)
    finally:
        run(["git", "checkout", "--", "params.yaml"], experiment_repo)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert line in output and "Traceback" not in output
    assert "'download_gender'" in output
    assert not (experiment_repo / "data/raw/gender").exists()


def test_yaml_that_does_not_parse_is_one_line_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("seed: 1\nfaces:\n  align: [true\n  cnn: false\n")
    with pytest.raises(FacetlError) as caught:
        load_params(tmp_path / "params.yaml")
    text = str(caught.value)
    assert "\n" not in text and "not valid YAML" in text and "line 4" in text


def test_a_missing_keypoint_model_names_the_keypoint_pipeline(tmp_path):
    from facetl.keypoints.predict import predict_keypoints

    with pytest.raises(FacetlError) as error:
        predict_keypoints(["face.jpg"], tmp_path)
    assert "`dvc repro pipelines/keypoints/dvc.yaml`" in str(error.value)
