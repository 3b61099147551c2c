"""The backend-free training curves write what dvclive's own Keras callback writes."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from benchmarks.workspace import REPO
from facetl.models.curves import LiveCurves


def train(callback: keras.callbacks.Callback) -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, validation_split=0.25, epochs=3, verbose=0, callbacks=[callback])


def curves(folder) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text()
            for path in sorted(folder.rglob("*.tsv"))}


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the oracle needs TF")
def test_the_same_files_as_dvclives_keras_callback(tmp_path):
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    train(LiveCurves(tmp_path / "ours"))
    train(DVCLiveCallback(live=Live(dir=str(tmp_path / "theirs"), dvcyaml=False,
                                    save_dvc_exp=False, report=None)))
    ours, theirs = curves(tmp_path / "ours"), curves(tmp_path / "theirs")
    assert "plots/metrics/train/loss.tsv" in ours and "plots/metrics/eval/accuracy.tsv" in ours
    strip = lambda text: [line.split("\t")[1:] for line in text.splitlines()]  # noqa: E731
    assert ours.keys() == theirs.keys()
    for name in ours:  # same steps and values; the timestamp column differs
        assert strip(ours[name]) == strip(theirs[name]), name


@pytest.mark.backend
def test_training_with_curves_never_imports_tensorflow(tmp_path):
    """On JAX the trainer and its curves must run where TensorFlow is not installed."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"  # any import of it now fails
            "from tests.test_curves import train; from facetl.models.curves import LiveCurves\n"
            f"train(LiveCurves({str(tmp_path)!r}))\n")
    env = os.environ | {"KERAS_BACKEND": "jax", "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    if subprocess.run([sys.executable, "-c", "import jax"], env=env).returncode:
        pytest.skip("JAX is not installed (the JAX tier installs it)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "plots/metrics/eval/loss.tsv").read_text().count("\n") == 4  # header + 3
