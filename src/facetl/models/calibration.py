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


def fit_temperature(p_positive: np.ndarray, labels: np.ndarray) -> float:
    """The T that minimises the log loss of sigmoid(logit(p) / T) on these photos."""
    z, y = logit(p_positive), np.asarray(labels, dtype="float64")

    def log_loss(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        # log(1 + e^s) - y s: the binary cross-entropy of sigmoid(s), stable for large |s|
        return float(np.mean(np.logaddexp(0.0, scaled) - y * scaled))

    return float(np.exp(minimize_scalar(log_loss, bounds=LOG_T_RANGE, method="bounded").x))


@keras.saving.register_keras_serializable(package="facetl")
class Temperature(keras.layers.Layer):
    """p -> sigmoid(logit(p) / temperature), on a probability output.

    `on_logits` (not saved) is for Grad-CAM, which needs the score before the sigmoid: while
    the layer before gives logits, this layer passes logit / temperature on."""

    def __init__(self, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.on_logits = False

    def call(self, p: Any) -> Any:
        if self.on_logits:
            return ops.cast(p, "float32") / self.temperature
        p = ops.clip(ops.cast(p, "float32"), EPSILON, 1 - EPSILON)
        # log(1 - p), not log1p(-p): ONNX has no Log1p (tf2onnx writes a model ONNX Runtime
        # refuses); 1 - p is exact for p >= 0.5 (Sterbenz), within float32 rounding below
        return ops.sigmoid((ops.log(p) - ops.log(1.0 - p)) / self.temperature)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"temperature": self.temperature}


def temperature_of(model: keras.Model) -> float:
    """The model's temperature: 1 for a model never calibrated."""
    last = model.layers[-1]
    return last.temperature if isinstance(last, Temperature) else 1.0


def temperature_layers(model: keras.Model) -> list[Temperature]:
    """Every Temperature layer in `model`, nested models' included."""
    found: list[Temperature] = []
    for layer in model.layers:
        if isinstance(layer, Temperature):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += temperature_layers(layer)
    return found


def uncalibrated(model: keras.Model) -> keras.Model:
    """`model` with every Temperature inside it (a nested head's too) set to 1, before it
    trains again: the loss then sees the raw probabilities, as the head's training did."""
    for layer in temperature_layers(model):
        layer.temperature = 1.0
    return model


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """`model` ending in a Temperature layer with this T (the uncalibrated output kept
    underneath, so recalibrating replaces the old T instead of stacking on it)."""
    last = model.layers[-1]
    raw = last.input if isinstance(last, Temperature) else model.outputs[0]
    return keras.Model(model.inputs, Temperature(temperature, name="temperature")(raw),
                       name=model.name)


def calibrate(model: keras.Model, p_val: np.ndarray, labels_val: np.ndarray) -> keras.Model:
    """Refit the temperature on validation predictions `p_val` of `model` as it is now."""
    raw_p = 1 / (1 + np.exp(-logit(p_val) * temperature_of(model)))  # undo the current T
    return with_temperature(model, fit_temperature(raw_p, labels_val))
