"""Heads that regress 68 points from a backbone's feature map, linear outputs in crop units
(x / S, y / S of the S x S face crop).

- `gdconv` (default): a depthwise "global" convolution (one kernel the size of the map per
  channel, as MobileFaceNet and PFLD use), then Dense(136): each position of the map has its
  own weight, so where a feature fires tells where a point is.
- `conv`: a 1x1 convolution to `channels` (BatchNorm, ReLU), then Flatten and Dense(136):
  position kept the same way, more weights.
- `gap`: global average pooling then Dense(136): the position-blind control.

The output starts at the mean training shape (bias) with near-zero weights, so training starts
from the mean face instead of from large random outputs (with those, a ReLU head on frozen
features died in its first epoch: measured).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from facetl.core.errors import FacetlError

HEADS = ("conv", "gdconv", "gap")  # keypoints.head.type
# The CPU flag from which bf16 trains these heads faster (models.precision): none, a depthwise
# conv and a Dense are too little work to gain (benchmarks/training_precision.py measured it).
HEAD_BF16_WINS_WITH: str | None = None


def keypoint_head(feature_shape: tuple[int, ...], kind: str, channels: int, dropout: float,
                  mean_shape: np.ndarray) -> keras.Model:
    inputs = keras.Input(feature_shape, name="features")
    if kind == "conv":
        x = layers.Conv2D(channels, 1, use_bias=False, name="reduce")(inputs)
        x = layers.BatchNormalization(name="reduce_bn")(x)
        x = layers.ReLU(name="reduce_relu")(x)
        x = layers.Flatten(name="flatten")(x)
    elif kind == "gdconv":
        x = layers.DepthwiseConv2D(feature_shape[:2], padding="valid", name="gdconv")(inputs)
        x = layers.Flatten(name="flatten")(x)
    elif kind == "gap":
        x = layers.GlobalAveragePooling2D(name="pool")(inputs)
    else:
        raise FacetlError(f"keypoints.head.type must be one of {HEADS}, got {kind!r}")
    if dropout:
        x = layers.Dropout(dropout)(x)
    mean_shape = np.asarray(mean_shape, dtype="float32").ravel()
    output = layers.Dense(len(mean_shape), activation="linear", dtype="float32",
                          kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                          name="output")
    model = keras.Model(inputs, output(x), name="head")
    output.bias.assign(mean_shape)
    return model
