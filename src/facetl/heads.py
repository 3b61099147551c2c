"""The small heads trained on frozen features."""

from __future__ import annotations

import keras
from keras import layers


def chapter_head(feature_shape: tuple[int, ...], conv_blocks: int, outputs: int,
                 activation: str, feature_scale: float, dropout: float = 0.5) -> keras.Model:
    """Rescale -> (Conv512 + MaxPool) x blocks -> Flatten -> Dense512 -> Dropout -> Dense.

    The chapter divides features by their maximum over the training set; that constant lives
    in the first layer so the saved head needs nothing else at inference. The chapter's
    unpadded 3x3 convolutions need a 3x3 map; smaller maps (tiny inputs) are padded instead,
    and a 1x1 map is not pooled.
    """
    inputs = keras.Input(feature_shape, name="features")
    x = layers.Rescaling(1.0 / feature_scale, name="feature_scale")(inputs)
    for block in range(conv_blocks):
        side = min(x.shape[1], x.shape[2])
        padding = "valid" if side >= 3 else "same"
        x = layers.Conv2D(512, 3, activation="relu", padding=padding, name=f"conv{block}")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs_ = layers.Dense(outputs, activation=activation, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs_, name="head")
