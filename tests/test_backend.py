"""The model code on whichever Keras backend runs the tests (KERAS_BACKEND), and features that
agree across backends: the same saved weights, the same images, TensorFlow against JAX."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

from facetl.cli import main as cli
from facetl.data.images import resize_square
from facetl.models import backend
from facetl.models.backbones import build_extractor
from facetl.models.extraction import extract_to_npy
from facetl.models.heads import chapter_head
from facetl.models.saving import end_to_end, save_task_model
from facetl.models.training import feature_max, fit

SIZE = 32
AGREEMENT = 0.9999  # cosine between two backends' float32 features of one image

pytestmark = pytest.mark.backend


def separable_features(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(count, 2, 2, 8) features whose first channel says the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    features = rng.normal(0, 1, (count, 2, 2, 8)).astype("float32")
    features[..., 0] += 3.0 * labels[:, None, None]
    return np.abs(features), labels.astype("float32")[:, None]


def test_chapter_head_trains_on_cached_features():
    keras.utils.set_random_seed(0)
    features, labels = separable_features(96)
    train, val = np.arange(64), np.arange(64, 96)
    head = chapter_head(features.shape[1:], 1, 1, "sigmoid", feature_max(features, train))
    cfg = {"learning_rate": 1e-3, "epochs": 4, "batch_size": 16,
           "loss": "binary_crossentropy", "metrics": ["accuracy"]}
    history = fit(head, features, labels, train, val, cfg, seed=0, live_dir=None).history
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.9


def test_a_saved_model_predicts_the_same_from_files(tmp_path, monkeypatch, capsys):
    """`facetl predict` on a saved end-to-end model: loaded back on this backend, fed from
    image files, it gives what the model in memory gives."""
    keras.utils.set_random_seed(0)
    extractor = build_extractor("vgg16", "none", SIZE)
    head = chapter_head(extractor.output_shape[1:], 1, 1, "sigmoid", 10.0)
    model = end_to_end(extractor, head, "gender_vgg16")
    monkeypatch.chdir(tmp_path)
    save_task_model("gender", model, head, {"task": "gender", "backbone": "vgg16",
                                            "classes": ["female", "male"]})
    photos = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    files = []
    for number, photo in enumerate(photos):
        Image.fromarray(photo).save(tmp_path / f"{number}.png")
        files.append(str(tmp_path / f"{number}.png"))
    capsys.readouterr()
    cli(["predict", *files, "--models", "models", "--json"])
    results = json.loads(capsys.readouterr().out)
    expected = model.predict(np.stack([resize_square(p, SIZE) for p in photos]), verbose=0)
    np.testing.assert_allclose([r["p_male"] for r in results], expected[:, 0], atol=1e-5)
    assert [r["face"] for r in results] == ["off"] * 3


# --- across backends ----------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from facetl.models.backbones import load_model
    from facetl.models.extraction import extract_to_npy
    for model_file in sys.argv[2:]:
        extract_to_npy(load_model(model_file), np.load(sys.argv[1]),
                       model_file.replace(".keras", ".npy"), batch_size=3)
""")


def run_child(code: str, backend_name: str, *args: str, **env: str) -> None:
    """`code` in a fresh Python under another Keras backend (a process has only one)."""
    environment = os.environ | {"KERAS_BACKEND": backend_name} | env
    done = subprocess.run([sys.executable, "-c", code, *args], env=environment,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype("float64"), b.reshape(len(b), -1).astype("float64")
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_features_agree_across_backends(tmp_path):
    """Saved here, extracted here and under the other backend (TensorFlow <-> JAX)."""
    other = "jax" if backend.NAME != "jax" else "tensorflow"
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"{other} is not installed (requirements-jax.txt adds JAX)")
    images = np.random.default_rng(2).integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    mine, files = {}, []
    for name in ("vgg16", "mobilenet_v2"):
        keras.utils.set_random_seed(3)
        model = build_extractor(name, "none", 64)
        files.append(str(tmp_path / f"{name}.keras"))
        model.save(files[-1])
        extract_to_npy(model, images, tmp_path / f"{name}_here.npy", batch_size=4)
        mine[name] = np.load(tmp_path / f"{name}_here.npy")
    run_child(CHILD, other, str(tmp_path / "images.npy"), *files)
    for name, here in mine.items():
        there = np.load(tmp_path / f"{name}.npy")
        assert there.shape == here.shape and np.abs(here).max() > 0
        agreement = cosines(here, there)
        assert agreement.min() >= AGREEMENT, (name, agreement)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None,
                    reason="TensorFlow is installed: Keras' own default (TensorFlow) applies")
def test_without_tensorflow_facetl_runs_on_the_installed_backend():
    """`pip install '.[jax]'` or '.[torch]' alone, KERAS_BACKEND unset: no TensorFlow error."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    chosen = subprocess.run([sys.executable, "-c",
                             "import facetl, keras; print(keras.backend.backend())"],
                            env=env, capture_output=True, text=True, check=True).stdout.strip()
    installed = [name for name in ("jax", "torch") if importlib.util.find_spec(name)]
    assert chosen == installed[0]
