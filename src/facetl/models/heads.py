"""The small heads trained on frozen features."""

from __future__ import annotations

import keras
from keras import layers, ops


class PatchConv2D(layers.Conv2D):
    """A stride-1 Conv2D computed as one matrix product, (batch x positions, patch) times
    (patch, filters), over only the output positions the next layer reads (`used`: rows and
    columns from the top left; the rest, which a floor-rounding pool drops, stay zero).

    The same function as Conv2D on every position the network uses, gradients included, with
    the same weights: a head trains in this form and is saved as plain Conv2D (`plain_convs`).
    Why: on the chapter head's 7x7 feature map oneDNN's direct convolution ran at about half
    the speed of the same arithmetic as a matmul, and the pool after it reads 16 of its 25
    positions (benchmarks/training_speed.py).
    """

    def __init__(self, *args, used: tuple[int, int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.used = tuple(used) if used else None

    @property
    def computed_positions(self) -> int:
        """Output positions it computes per example (what the FLOP count counts)."""
        rows, cols = self.used or self.output.shape[1:3]
        return int(rows) * int(cols)

    def convolution_op(self, inputs, kernel):
        kh, kw, c_in, c_out = kernel.shape
        if self.padding == "same":
            inputs = ops.pad(inputs, [[0, 0], [(kh - 1) // 2, kh // 2], [(kw - 1) // 2, kw // 2],
                                      [0, 0]])
        rows, cols = inputs.shape[1] - kh + 1, inputs.shape[2] - kw + 1
        used_rows, used_cols = self.used or (rows, cols)
        patches = ops.concatenate([inputs[:, i:i + used_rows, j:j + used_cols, :]
                                   for i in range(kh) for j in range(kw)], axis=-1)
        out = ops.matmul(ops.reshape(patches, (-1, kh * kw * c_in)),
                         ops.reshape(kernel, (kh * kw * c_in, c_out)))
        out = ops.reshape(out, (-1, used_rows, used_cols, c_out))
        if (used_rows, used_cols) != (rows, cols):
            out = ops.pad(out, [[0, 0], [0, rows - used_rows], [0, cols - used_cols], [0, 0]])
        return out

    def get_config(self) -> dict:
        return super().get_config() | {"used": self.used}


def plain_convs(model: keras.Model) -> keras.Model:
    """`model` with every PatchConv2D as the plain Conv2D it computes, weights copied: the form
    that is saved, exported and served."""
    def plain(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, PatchConv2D):
            config = layer.get_config()
            config.pop("used")
            return layers.Conv2D.from_config(config)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=plain)
    copy.set_weights(model.get_weights())
    return copy


def conv_block(x: keras.KerasTensor, filters: int, pool_size: int | None, conv_name: str,
               pool_name: str, patches: bool = False) -> keras.KerasTensor:
    """The chapter's 3x3 ReLU convolution, then max pooling (none when `pool_size` is None).

    Unpadded like the chapter while the map is at least 3x3, padded below that; a map smaller
    than the pool is not pooled. So the chapter's sizes get its exact network, and tiny test
    inputs still build. `patches`: the convolution as a PatchConv2D (to train).
    """
    padding = "valid" if min(x.shape[1], x.shape[2]) >= 3 else "same"
    rows, cols = (x.shape[1] - 2, x.shape[2] - 2) if padding == "valid" else x.shape[1:3]
    pooled = bool(pool_size) and min(rows, cols) >= pool_size
    if patches:
        used = ((rows // pool_size * pool_size, cols // pool_size * pool_size) if pooled
                else None)
        conv = PatchConv2D(filters, 3, activation="relu", padding=padding, name=conv_name,
                           used=used)
    else:
        conv = layers.Conv2D(filters, 3, activation="relu", padding=padding, name=conv_name)
    x = conv(x)
    if pooled:
        x = layers.MaxPooling2D(pool_size, name=pool_name)(x)
    return x


def chapter_head(feature_shape: tuple[int, ...], conv_blocks: int, outputs: int,
                 activation: str, feature_scale: float, dropout: float = 0.5,
                 patches: bool = False) -> keras.Model:
    """Rescale -> (Conv512 + MaxPool) x blocks -> Flatten -> Dense512 -> Dropout -> Dense.

    The chapter divides features by their maximum over the training set; that constant lives
    in the first layer so the saved head needs nothing else at inference. `patches`: the
    training form (PatchConv2D); `plain_convs` turns it into the saved one.
    """
    inputs = keras.Input(feature_shape, name="features")
    x = layers.Rescaling(1.0 / feature_scale, name="feature_scale")(inputs)
    for block in range(conv_blocks):
        x = conv_block(x, 512, 2, f"conv{block}", f"pool{block}", patches)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs_ = layers.Dense(outputs, activation=activation, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs_, name="head")
