"""dlib's ResNet face descriptor (128-D) as a backbone of the registry.

dlib's network is not a Keras model, so a small Keras layer calls it on the host from inside
the forward pass (`backend.host_call`: `tf.numpy_function`, `jax.pure_callback`, or a plain
call on PyTorch): the features stage, the end-to-end model file and `facetl predict` then need
nothing special, on any Keras backend. The layer's config names the model file (by default the
one the `face_recognition_models` package installs, resolved on the machine that loads it),
never dlib's weights, so `model.keras` stays small and free of machine paths.

The network expects dlib's aligned 150x150 face chips (5-point alignment, padding 0.25): the
`faces` stage's defaults give that framing; other inputs are resized to 150x150.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.dlib_models import PACKAGED, recognition_model
from facetl.models.backend import host_call

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128


def describe(weights: str, images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) RGB pixels -> (N, 128) float32 descriptors."""
    if len(images) == 0:
        return np.zeros((0, DESCRIPTOR_SIZE), dtype="float32")
    pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    chips = [np.ascontiguousarray(resize_square(image, CHIP_SIZE)) for image in pixels]
    vectors = recognition_model(weights).compute_face_descriptor(chips)
    return np.array(vectors, dtype="float32").reshape(len(images), DESCRIPTOR_SIZE)


@keras.saving.register_keras_serializable(package="facetl")
class DlibFaceDescriptor(keras.layers.Layer):
    """Face images -> dlib's 128-D descriptors; no trainable weights, float32 whatever policy."""

    def __init__(self, weights: str = PACKAGED, **kwargs) -> None:
        kwargs |= {"dtype": "float32", "trainable": False}
        super().__init__(**kwargs)
        self.model_file = weights
        recognition_model(weights)  # a bad weights value fails here, not mid-extraction

    def call(self, images):
        return host_call(functools.partial(describe, self.model_file), images,
                         (DESCRIPTOR_SIZE,), "float32")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], DESCRIPTOR_SIZE)

    def get_config(self) -> dict:
        return super().get_config() | {"weights": self.model_file}


def dlib_face_network(include_top: bool = False, weights: str | None = PACKAGED,
                      input_shape: tuple[int, int, int] = (CHIP_SIZE, CHIP_SIZE, 3)
                      ) -> keras.Model:
    """The registry's constructor, with keras.applications' signature (there is no top)."""
    if weights is None:
        raise FacetlError(f"dlib_face has no random initialisation: set "
                          f"backbones.dlib_face.weights to `{PACKAGED}` or a dlib .dat file")
    inputs = keras.Input(input_shape, name="faces")
    return keras.Model(inputs, DlibFaceDescriptor(weights, name="descriptor")(inputs),
                       name="dlib_face")
