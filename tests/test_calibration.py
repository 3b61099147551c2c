"""Temperature scaling: it recovers a known overconfidence, travels in the model file, and
never changes a decision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy.special import expit

from facetl.core.metrics import expected_calibration_error
from facetl.models.backbones import load_model
from facetl.models.calibration import (
    Temperature,
    calibrate,
    fit_temperature,
    temperature_layers,
    temperature_of,
    uncalibrated,
    with_temperature,
)


def overconfident(t_true: float, n: int = 20000, seed: int = 0):
    """Labels drawn from sigmoid(z), probabilities reported as sigmoid(t_true z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    labels = (rng.uniform(size=n) < expit(z)).astype(int)
    return expit(t_true * z), labels


@pytest.mark.parametrize("t_true", [0.5, 1.0, 3.0])
def test_the_fitted_temperature_is_the_overconfidence_the_data_was_made_with(t_true):
    p, labels = overconfident(t_true)
    assert fit_temperature(p, labels) == pytest.approx(t_true, rel=0.05)


def tiny_model() -> keras.Model:
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))


@pytest.mark.backend
def test_the_layer_divides_the_logit_and_survives_save_and_load(tmp_path):
    plain = tiny_model()
    x = np.random.default_rng(1).normal(0, 3, (64, 3)).astype("float32")
    kernel, bias = plain.layers[-1].get_weights()
    # the oracle in float64 from the weights: sigmoid(logit / T), logit = x.w + b
    expected = expit((x.astype("float64") @ kernel[:, 0] + bias[0]) / 2.5)
    model = with_temperature(plain, 2.5)
    np.testing.assert_allclose(model.predict(x, verbose=0)[:, 0], expected, atol=1e-5)

    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[-1], Temperature) and temperature_of(loaded) == 2.5
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


@pytest.mark.backend
def test_recalibrating_replaces_the_temperature_and_keeps_every_decision():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (4000, 3)).astype("float32")
    model = tiny_model()
    model.layers[-1].set_weights([np.array([[6.0], [0.0], [0.0]]), np.zeros(1)])
    labels = (rng.uniform(size=len(x)) < expit(2.0 * x[:, 0])).astype(int)  # truth: 3x softer
    # Read before calibrating: `calibrate` turns the model's output Dense linear (a backend
    # that runs eagerly, PyTorch, would then give logits; a traced one its old graph).
    before = model.predict(x, verbose=0)[:, 0]
    first = calibrate(model, before, labels)
    again = calibrate(first, first.predict(x, verbose=0)[:, 0], labels)
    assert temperature_of(first) == pytest.approx(3.0, rel=0.1)
    assert temperature_of(again) == pytest.approx(temperature_of(first), rel=1e-3)
    assert sum(isinstance(layer, Temperature) for layer in again.layers) == 1
    after = again.predict(x, verbose=0)[:, 0]
    np.testing.assert_array_equal(before >= 0.5, after >= 0.5)
    assert (expected_calibration_error(labels, after)
            < expected_calibration_error(labels, before) / 3)


def test_the_pipeline_calibrates_on_validation_people_and_again_after_fine_tuning(
        tmp_path, monkeypatch):
    """The head's temperature, then the fine-tuned model's, each fitted on the validation rows
    carved from the train split (never the test rows)."""
    from facetl.core.params import load_params
    from facetl.data.splits import carve_validation, load_split
    from facetl.gender import finetune
    from facetl.models.training import FeatureBatches
    from tests.tiny_pipeline import UP_TO_EVALUATE, run_gender_stages, tiny_params

    monkeypatch.chdir(tmp_path)
    tiny_params(tmp_path, {"finetune.gender.enabled": True, "finetune.gender.epochs": 2,
                           "finetune.gender.learning_rate": 0.01})
    run_gender_stages(UP_TO_EVALUATE[:-2])  # up to the head
    params = load_params()
    index, train, _ = load_split("gender")
    images = np.load("data/prepared/gender/images.npy")
    labels = index["label_index"].to_numpy()

    def raw_p(path, rows):  # the model's probability with its temperature set to 1
        model = uncalibrated(load_model(path))  # fresh: nothing traced with the old value yet
        rows = np.sort(rows)
        return model.predict(FeatureBatches(images, labels, rows, 16), verbose=0)[:, 0]

    head = load_model("models/gender_head/model.keras").layers[-1]  # the nested head
    assert isinstance(head.layers[-1], Temperature)
    _, val = carve_validation(index, train, params["train"]["gender"]["val_size"],
                              params["seed"])
    assert temperature_of(head) == pytest.approx(fit_temperature(
        raw_p("models/gender_head/model.keras", val), labels[np.sort(val)]), rel=1e-3)

    finetune.main()
    model = load_model("models/gender/model.keras")
    assert len(temperature_layers(model)) == 1  # recalibrated in place, not stacked
    _, val = carve_validation(index, train, params["finetune"]["gender"]["val_size"],
                              params["seed"])
    expected = fit_temperature(raw_p("models/gender/model.keras", val), labels[np.sort(val)])
    assert temperature_of(model) == pytest.approx(expected, rel=1e-3)
