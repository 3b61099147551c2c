"""Grad-CAM: where in the photo the trained model's decision looked.

The gradient of the predicted class's score with respect to a convolution's feature map says
how much each position of each channel moved the decision. Two ways to turn it into a map:

- `gradcam` (Selvaraju et al. 2017): weigh each channel by its gradient averaged over the map.
  Exact for heads that average the map globally; blind to *where* for Flatten-Dense heads,
  whose weights differ per position (it can come out all zero).
- `hirescam` (Draelos & Carin 2020): gradient times activation at each position, summed over
  channels. The same map for global-average heads, and faithful for the chapter's
  Flatten-Dense heads, so it is the default.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from matplotlib import colormaps

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.inspect.taps import LayerPath, intermediate_model
from facetl.models.backend import layer_gradients
from facetl.models.calibration import Temperature, temperature_layers

METHODS = ("hirescam", "gradcam")


def output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer that makes the prediction, inside the last nested model if need be (before
    the calibration's Temperature, which only rescales its logit)."""
    layers = [layer for layer in model.layers if not isinstance(layer, Temperature)]
    return output_layer(layers[-1]) if isinstance(layers[-1], keras.Model) else layers[-1]


def gradcam(model: keras.Model, path: LayerPath, images: np.ndarray,
            method: str = "hirescam") -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N, h, w) in [0, 1] at the layer at `path`, and the model's p(positive).

    Gradients are taken of the logit, not of the sigmoid (as Grad-CAM takes pre-softmax
    scores): a confident p rounds to 1.0 and its gradient to zero. The score is the logit
    when the model says positive, minus the logit when it says negative.
    """
    if method not in METHODS:
        raise FacetlError(f"activations.gradcam_method must be one of {METHODS}, got {method!r}")
    # The score is the logit: a calibrated model's Temperature passes logit / T on while
    # `outputs_logit` is set; an uncalibrated one's sigmoid output layer turns linear.
    temperatures = temperature_layers(model)
    layer = output_layer(model)
    if not temperatures and getattr(layer, "activation", None) is not keras.activations.sigmoid:
        raise FacetlError(f"Grad-CAM here explains one-unit sigmoid models; {model.name}'s "
                          f"output layer {layer.name!r} is not one")
    tap = intermediate_model(model, path, with_output=True)
    target = model
    for name in path:
        target = target.get_layer(name)

    def score(output):  # the logit of whichever class the model predicts
        return ops.abs(ops.cast(output[:, 0], "float32"))

    activation = layer.activation
    if not temperatures:
        layer.activation = keras.activations.linear
    for temperature in temperatures:
        temperature.outputs_logit = True
    try:
        feature_map, output, gradients = layer_gradients(tap, target, images, score)
    finally:
        layer.activation = activation
        for temperature in temperatures:
            temperature.outputs_logit = False
    logit = ops.cast(output[:, 0], "float32")
    gradients = ops.cast(gradients, "float32")
    if method == "gradcam":
        gradients = ops.mean(gradients, axis=(1, 2), keepdims=True)
    cams = ops.relu(ops.sum(ops.cast(feature_map, "float32") * gradients, axis=-1))
    peak = ops.max(cams, axis=(1, 2), keepdims=True)
    heatmaps = ops.divide_no_nan(cams, peak)
    return ops.convert_to_numpy(heatmaps), ops.convert_to_numpy(ops.sigmoid(logit))


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The photo with the heatmap, upsampled to its size, blended on top in the jet colours."""
    colours = colormaps["jet"](resize_square(heatmap.astype("float32"), image.shape[0]))
    blended = (1 - alpha) * image.astype("float32") + alpha * 255 * colours[..., :3]
    return np.clip(blended, 0, 255).astype(np.uint8)
