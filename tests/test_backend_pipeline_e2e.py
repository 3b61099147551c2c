"""`dvc repro` of the whole default gender pipeline under the active Keras backend, with
TensorFlow out of reach unless it is that backend: 60 local photos, tiny params.

Under JAX or PyTorch a stub `tensorflow` that refuses to import comes first on the stages'
path, so a stage that still needed TensorFlow would fail here as it would where TensorFlow is
not installed. Every backend extracts features with the same weights file (drawn with numpy,
so it is identical everywhere); when `FACETL_BACKEND_RUNS` names a folder, each run leaves its
features and metrics there and compares them with the other backends' runs already in it
(.ci/run: TensorFlow first, then JAX and PyTorch each in an environment without TensorFlow).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from benchmarks.workspace import commit_all, copy_repository, run, set_params, stages_run
from facetl.models import backend
from tests.synthetic import write_labels_csv

pytestmark = [pytest.mark.e2e, pytest.mark.backend]

PHOTOS_PER_CLASS = 30
SIZE = 32
STAGES = {"download_gender", "faces_gender", "prepare_gender", "features_gender",
          "train_gender", "finetune_gender", "evaluate_gender", "repeats_gender", "activations",
          "scratch@large", "scratch@small", "scratch@aggressive"}
FEATURE_COSINE = 0.9999  # the same weights and photos: float32 features agree across backends
# The heads start from each backend's own random numbers and train 3 epochs on 45 photos: where
# one sits just short of the 0.5 threshold its accuracy halves while its ranking stays perfect
# (seen: JAX 0.5 with AUC 1.0 against TensorFlow's 1.0). The ranking is what is compared.
AUC_GAP = 0.1


def shared_weights(path: Path) -> Path:
    """VGG16 (no top, SIZE px) with He-scaled normal weights from a fixed numpy stream."""
    model = keras.applications.VGG16(include_top=False, weights=None,
                                     input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    for variable in model.weights:
        shape = tuple(variable.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.0
        variable.assign((rng.standard_normal(shape) * scale).astype("float32"))
    model.save_weights(path)
    return path


def tensorflow_blocked(folder: Path) -> Path:
    """A folder whose `tensorflow` package refuses to import: first on a stage's path, it
    stands for an environment without TensorFlow."""
    package = folder / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise ImportError("tensorflow is not installed here (facetl test stub)")\n')
    return folder


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """A copy of the repository whose `dvc repro` ran under this backend; (repo, output)."""
    data = tmp_path_factory.mktemp("photos")
    write_labels_csv(data, per_class=PHOTOS_PER_CLASS, people=PHOTOS_PER_CLASS)
    weights = shared_weights(tmp_path_factory.mktemp("weights") / "vgg16.weights.h5")
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    set_params(repo, {
        "data.gender.source": str(data / "labels.csv"), "data.gender.images": str(data / "images"),
        "data.gender.path_column": "filename", "data.gender.label_column": "gender",
        "data.gender.group_column": "identity", "faces.align": False,
        "prepare.gender.input_size": SIZE, "prepare.gender.test_size": 0.25,
        "backbone": "vgg16", "backbones.vgg16.weights": str(weights),
        "features.precision": "float32",  # bf16 rounding would depend on each backend's kernels
        "train.gender.epochs": 3, "scratch.common.filters": [8, 8, 8, 8],
        "scratch.common.dense": 8,
        **{f"scratch.scenarios.{name}.{key}": value for name in ("large", "small", "aggressive")
           for key, value in (("input_size", SIZE), ("epochs", 1), ("max_train_images", None))},
    })
    commit_all(repo, "tiny params")
    env = {"KERAS_BACKEND": backend.NAME}
    if backend.NAME != "tensorflow":
        blocked = tensorflow_blocked(tmp_path_factory.mktemp("no-tensorflow"))
        env["PYTHONPATH"] = f"{blocked}{os.pathsep}{repo / 'src'}"
    result = run(["dvc", "repro"], repo, env=env)
    return repo, result.stdout + result.stderr


def test_every_stage_of_the_default_pipeline_runs(pipeline_run):
    repo, output = pipeline_run
    assert set(stages_run(output)) == STAGES
    metrics = json.loads((repo / "metrics/gender.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert (repo / "models/gender/model.keras").is_file()
    status = run(["dvc", "status", "dvc.yaml"], repo, env={"KERAS_BACKEND": backend.NAME})
    assert status.stdout.strip() in ("Data and pipelines are up to date.", "")


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_features_and_auc_agree_with_the_other_backends(pipeline_run):
    repo, _ = pipeline_run
    folder = os.environ.get("FACETL_BACKEND_RUNS")
    if not folder:
        pytest.skip("FACETL_BACKEND_RUNS names no folder of other backends' runs")
    runs = Path(folder)
    runs.mkdir(parents=True, exist_ok=True)
    features = np.load(repo / "data/features/gender/vgg16.npy")
    metrics = json.loads((repo / "metrics/gender.json").read_text())
    np.save(runs / f"{backend.NAME}.npy", features)
    (runs / f"{backend.NAME}.json").write_text(json.dumps(
        {key: metrics[key] for key in ("accuracy", "auc")}))
    others = [name for name in backend.BACKENDS
              if name != backend.NAME and (runs / f"{name}.json").is_file()]
    if not others:  # TensorFlow runs first; another backend alone has nothing to agree with
        assert backend.NAME == "tensorflow", f"no TensorFlow run in {runs} to compare with"
        pytest.skip(f"no other backend's run in {runs} yet (this one is saved there)")
    for other in others:
        cosine = cosine_rows(features, np.load(runs / f"{other}.npy"))
        theirs = json.loads((runs / f"{other}.json").read_text())
        print(f"{backend.NAME} vs {other}: feature cosine min {cosine.min():.6f}; AUC "
              f"{metrics['auc']:.3f} vs {theirs['auc']:.3f}; accuracy {metrics['accuracy']:.3f} "
              f"vs {theirs['accuracy']:.3f}")
        assert cosine.min() >= FEATURE_COSINE
        assert abs(metrics["auc"] - theirs["auc"]) <= AUC_GAP
