"""The small heads trained on frozen features."""

from __future__ import annotations

import keras
from keras import layers


def conv_block(x: keras.KerasTensor, filters: int, pool_size: int | None, conv_name: str,
               pool_name: str) -> keras.KerasTensor:
    """The chapter's 3x3 ReLU convolution, then max pooling (none when `pool_size` is None).

    Unpadded like the chapter while the map is at least 3x3, padded below that; a map smaller
    than the pool is not pooled. So the chapter's sizes get its exact network, and tiny test
    inputs still build.
    """
    padding = "valid" if min(x.shape[1], x.shape[2]) >= 3 else "same"
    x = layers.Conv2D(filters, 3, activation="relu", padding=padding, name=conv_name)(x)
    if pool_size and min(x.shape[1], x.shape[2]) >= pool_size:
        x = layers.MaxPooling2D(pool_size, name=pool_name)(x)
    return x


def chapter_head(feature_shape: tuple[int, ...], conv_blocks: int, outputs: int,
                 activation: str, feature_scale: float, dropout: float = 0.5) -> keras.Model:
    """Rescale -> (Conv512 + MaxPool) x blocks -> Flatten -> Dense512 -> Dropout -> Dense.

    The chapter divides features by their maximum over the training set; that constant lives
    in the first layer so the saved head needs nothing else at inference.
    """
    inputs = keras.Input(feature_shape, name="features")
    x = layers.Rescaling(1.0 / feature_scale, name="feature_scale")(inputs)
    for block in range(conv_blocks):
        x = conv_block(x, 512, 2, f"conv{block}", f"pool{block}")
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs_ = layers.Dense(outputs, activation=activation, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs_, name="head")
