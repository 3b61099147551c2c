"""Temperature scaling: a model's probabilities made to mean what they say.

A network trained to low loss on its own photos is overconfident on others (p >= 0.999 for
photos it gets wrong). One number fixes most of it: the logit divided by a temperature T,
fitted by likelihood on validation photos the model never trained on (Guo et al., 2017). It
keeps every decision (the sign of the logit) and so the accuracy; it changes how sure the model
says it is. T lives in the model's graph (a `Temperature` layer at the end), so `model.keras`,
and every file exported from it, carries its calibration.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from scipy.optimize import minimize_scalar

EPSILON = 1e-6  # probabilities are clipped this far from 0 and 1 before taking the logit
LOG_T_RANGE = (-4.0, 4.0)  # T between e^-4 and e^4: wider is never a calibration, it is a bug


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(z, dtype="float64")))


def rescaled(p: np.ndarray, factor: float | np.ndarray) -> np.ndarray:
    """sigmoid(logit(p) * factor): a probability under another temperature (factor = the
    temperature it was made with over the one wanted)."""
    return sigmoid(logit(p) * factor)


def fit_temperature(p_positive: np.ndarray, labels: np.ndarray,
                    weights: np.ndarray | None = None) -> float:
    """The T that minimises the log loss of sigmoid(logit(p) / T) on these photos (`labels`
    may be soft targets; `weights`: each photo's weight in the mean)."""
    z, y = logit(p_positive), np.asarray(labels, dtype="float64")

    def log_loss(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        # log(1 + e^s) - y s: the binary cross-entropy of sigmoid(s), stable for large |s|
        return float(np.average(np.logaddexp(0.0, scaled) - y * scaled, weights=weights))

    return float(np.exp(minimize_scalar(log_loss, bounds=LOG_T_RANGE, method="bounded").x))


@keras.saving.register_keras_serializable(package="facetl")
class Temperature(keras.layers.Layer):
    """logit -> sigmoid(logit / temperature): the model's last layer, after its output Dense
    (whose own activation is then linear). On the logit, not on the probability: a round trip
    through the sigmoid loses the tail of the logit in float32, and runtimes lose it
    differently (ONNX Runtime's answers drifted from Keras' by more than 1e-4).

    `outputs_logit` (not saved) is for Grad-CAM, which wants the score before the sigmoid:
    while it is set, the layer passes logit / temperature on."""

    def __init__(self, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.outputs_logit = False

    def call(self, logit: Any) -> Any:
        scaled = ops.cast(logit, "float32") / self.temperature
        return scaled if self.outputs_logit else ops.sigmoid(scaled)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"temperature": self.temperature}


def temperature_layers(model: keras.Model) -> list[Temperature]:
    """Every Temperature layer in `model`, nested models' included."""
    found: list[Temperature] = []
    for layer in model.layers:
        if isinstance(layer, Temperature):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += temperature_layers(layer)
    return found


def temperature_of(model: keras.Model) -> float:
    """The model's temperature (a nested head's): 1 for a model never calibrated."""
    layers = temperature_layers(model)
    return layers[0].temperature if layers else 1.0


def uncalibrated(model: keras.Model) -> keras.Model:
    """`model` with its temperature set to 1, before it trains again: the loss then sees the
    raw probabilities, as the head's training did. (Set before the model is compiled or
    called: a traced graph keeps the value it was traced with.)"""
    for layer in temperature_layers(model):
        layer.temperature = 1.0
    return model


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """`model` calibrated with this T. A model with a Temperature layer (a nested head's
    too) gets the new value; one without gets the layer: its output Dense (sigmoid) turns
    linear and the Temperature after it applies sigmoid(logit / T)."""
    layers = temperature_layers(model)
    for layer in layers:
        layer.temperature = float(temperature)
    if layers:
        return model
    output = model.layers[-1]
    if getattr(output, "activation", None) is not keras.activations.sigmoid:
        raise ValueError(f"{model.name}: calibration needs a sigmoid output layer, "
                         f"found {output.name!r}")
    output.activation = keras.activations.linear
    return keras.Model(model.inputs, Temperature(temperature, name="temperature")(
        model.outputs[0]), name=model.name)


def calibrate(model: keras.Model, p_val: np.ndarray, labels_val: np.ndarray) -> keras.Model:
    """Refit the temperature on validation predictions `p_val` of `model` as it is now."""
    raw_p = rescaled(p_val, temperature_of(model))  # undo the current T
    return with_temperature(model, fit_temperature(raw_p, labels_val))
