"""dlib's ResNet face descriptor (128-D), rebuilt as a Keras network with dlib's weights.

The network of dlib's `dnn_face_recognition_ex` (`anet_type`): a 7x7/2 convolution, a 3x3/2
max pool, residual levels of 32, 64, 128 and 256 filters, a global average pool and a 128-unit
fully connected layer without bias. Being a plain Keras network, it runs on every backend and
on a GPU, fine-tunes, and exports whole (ONNX, SavedModel, LiteRT) with no dlib at inference.

How dlib's layers map to Keras:
- `input_rgb_image`: (pixel - dlib's mean per channel) / 256, the `DlibInput` layer, in
  float32, so the model takes 0-255 pixels (`preprocess: raw`) and an export needs no step.
- `con` with `affine` after it: dlib's affine is batch norm frozen into a per-channel scale and
  shift, so it is folded into the convolution's kernel and bias when the weights load. The
  network is then plain Conv2D layers; fine-tuning trains the folded kernel and bias.
- dlib's default padding: k//2 for stride 1 ("same"), none for stride 2 ("valid").
- `add_prev` adds two tensors of different shapes by zero-padding the smaller one at the end
  of each axis (channels 32 -> 64, and 3x3 -> 4x4 at the 256-filter level): `AddPrev`.

The weights come from dlib's `.dat` file (by default the one `face_recognition_models`
installs), read by `dlib_serial`, a reader of dlib's format in Python: no C++ in the set-up.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from facetl.core.errors import FacetlError
from facetl.faces.dlib_models import PACKAGED, recognition_model_file
from facetl.models.dlib_serial import DlibLayer, read_network

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
INPUT_SCALE = 256.0  # dlib's input_rgb_image divides by 256 after subtracting the mean
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)  # input_rgb_image's defaults; the file has its own


@dataclass(frozen=True)
class Node:
    """One level of dlib's `anet_type`, input first: a layer, or a tag/skip of the residuals."""

    kind: str  # con | affine | relu | max_pool | avg_pool | tag | skip | add_prev | mean | fc
    filters: int = 0
    size: int = 0
    stride: int = 1
    tag: int = 0

    @property
    def padding(self) -> int:
        """dlib's default for convolutions and pools: k//2 at stride 1, none otherwise."""
        return self.size // 2 if self.stride == 1 else 0


def residual(filters: int, down: bool) -> list[Node]:
    """dlib's `ares` (down=False) and `ares_down`: two affine-normalised 3x3 convolutions added
    to the input, which ares_down average-pools to the convolutions' stride of 2."""
    block = [Node("tag", tag=1), Node("con", filters, 3, 2 if down else 1), Node("affine"),
             Node("relu"), Node("con", filters, 3, 1), Node("affine")]
    if down:
        block += [Node("tag", tag=2), Node("skip", tag=1), Node("avg_pool", size=2, stride=2),
                  Node("add_prev", tag=2)]
    else:
        block += [Node("add_prev", tag=1)]
    return block + [Node("relu")]


def level(filters: int, plain: int, down: bool = True) -> list[Node]:
    return (residual(filters, True) if down else []) + residual(filters, False) * plain


FACE_RESNET: list[Node] = [
    Node("con", 32, 7, 2), Node("affine"), Node("relu"), Node("max_pool", size=3, stride=2),
    *level(32, 3, down=False), *level(64, 3), *level(128, 2), *level(256, 2), *level(256, 0),
    Node("mean"), Node("fc", DESCRIPTOR_SIZE),
]


def wrappers(nodes: list[Node]) -> list[str]:
    """The template's levels as dlib's file nests them, output first: `layer`, `tag`, `skip`."""
    return [node.kind if node.kind in ("tag", "skip") else "layer" for node in reversed(nodes)]


@keras.saving.register_keras_serializable(package="facetl")
class DlibInput(layers.Layer):
    """dlib's input_rgb_image: (RGB pixel - dlib's mean) / 256, in float32 whatever the policy.
    Constants, not weights: exporters then fold them into the graph."""

    def __init__(self, **kwargs) -> None:
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def call(self, images):
        # keras.ops with numpy constants: a torch tensor would hand `-` to numpy (host copy)
        return ops.divide(ops.subtract(ops.cast(images, "float32"),
                                       np.array(DLIB_MEAN_RGB, dtype="float32")), INPUT_SCALE)


@keras.saving.register_keras_serializable(package="facetl")
class AddPrev(layers.Layer):
    """dlib's add_prev: the sum of two maps, each zero-padded at the end to the larger size."""

    def call(self, inputs):
        x, prev = inputs
        target = [max(a, b) for a, b in zip(x.shape[1:], prev.shape[1:], strict=True)]

        def padded(t):
            widths = [[0, 0]] + [[0, want - have] for want, have in zip(target, t.shape[1:],
                                                                        strict=True)]
            return ops.pad(t, widths) if any(w[1] for w in widths) else t

        return ops.add(padded(x), padded(prev))

    def compute_output_shape(self, input_shapes):
        x, prev = input_shapes
        return (x[0], *[max(a, b) for a, b in zip(x[1:], prev[1:], strict=True)])


def conv_name(index: int) -> str:
    return f"con{index}"


def build_face_resnet(input_shape: tuple[int, int, int]) -> keras.Model:
    """The network with Keras' default initial weights; `load_dlib_weights` fills them."""
    inputs = keras.Input(input_shape, name="faces")
    x = inputs
    if tuple(input_shape[:2]) != (CHIP_SIZE, CHIP_SIZE):
        # dlib's chips are 150 px: other crops are resized inside the network (bilinear: an
        # exact 2x2 mean from 300 px, and every exporter has it; antialiasing has no ONNX op)
        x = layers.Resizing(CHIP_SIZE, CHIP_SIZE, name="to_chip_size")(x)
    x = DlibInput(name="dlib_input")(x)
    tags: dict[int, object] = {}
    convs = 0
    for node in FACE_RESNET:
        if node.kind == "con":
            x = layers.Conv2D(node.filters, node.size, node.stride,
                              padding="same" if node.padding else "valid",
                              name=conv_name(convs))(x)
            convs += 1
        elif node.kind == "relu":
            x = layers.ReLU()(x)
        elif node.kind == "max_pool":
            x = layers.MaxPooling2D(node.size, node.stride)(x)
        elif node.kind == "avg_pool":
            x = layers.AveragePooling2D(node.size, node.stride)(x)
        elif node.kind == "tag":
            tags[node.tag] = x
        elif node.kind == "skip":
            x = tags[node.tag]
        elif node.kind == "add_prev":
            x = AddPrev()([x, tags[node.tag]])
        elif node.kind == "mean":
            x = layers.GlobalAveragePooling2D()(x)
        elif node.kind == "fc":
            x = layers.Dense(node.filters, use_bias=False, name="descriptor")(x)
    outputs = layers.Activation("linear", dtype="float32", name="descriptor_float32")(x)
    return keras.Model(inputs, outputs, name="dlib_face")


@functools.cache
def read_face_resnet(file: str) -> tuple[np.ndarray, list[DlibLayer]]:
    """The input mean and the computational layers of a dlib face ResNet file, input first."""
    _, found = read_network(file, wrappers(FACE_RESNET))
    expected = [node for node in FACE_RESNET if node.kind not in ("tag", "skip")]
    for node, layer in zip(expected, found[1:], strict=True):
        name = "avg_pool" if node.kind == "mean" else node.kind
        if layer.name != name:
            raise FacetlError(f"{file}: found dlib layer {layer.name!r} where the face ResNet "
                              f"has {name!r}")
        if node.kind in ("con", "max_pool", "avg_pool"):
            shape = (layer.fields["size"], layer.fields["stride"], layer.fields["padding"])
            wanted = ((node.size,) * 2, (node.stride,) * 2, (node.padding,) * 2)
            if shape != wanted or layer.fields.get("filters", node.filters) != node.filters:
                raise FacetlError(f"{file}: a {name} layer has (size, stride, padding) {shape},"
                                  f" the face ResNet {wanted}")
    return found[0].fields["mean_rgb"], found[1:]


def folded_convolutions(dlib_layers: list[DlibLayer]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each (con, affine) pair as one Keras Conv2D's (kernel HWIO, bias): the affine's scale
    multiplies the kernel's output channels, and the bias becomes bias * scale + shift."""
    folded = []
    for con, affine in zip(dlib_layers, dlib_layers[1:], strict=False):
        if con.name != "con":
            continue
        if affine.name != "affine":
            raise FacetlError("every convolution of the face ResNet is followed by an affine")
        gamma, beta = affine.fields["gamma"], affine.fields["beta"]
        kernel = con.fields["kernel"].transpose(2, 3, 1, 0) * gamma  # OIHW -> HWIO
        bias = con.fields["bias"] if con.fields["bias"] is not None else np.zeros_like(gamma)
        folded.append((kernel.astype("float32"), (bias * gamma + beta).astype("float32")))
    return folded


def load_dlib_weights(model: keras.Model, file: str) -> None:
    """dlib's trained weights, folded, into a `build_face_resnet` network."""
    mean_rgb, dlib_layers = read_face_resnet(file)
    if not np.allclose(mean_rgb, DLIB_MEAN_RGB, atol=1e-3):
        raise FacetlError(f"{file}: input mean {mean_rgb.tolist()} differs from dlib's "
                          f"{list(DLIB_MEAN_RGB)}, which the network is built with")
    for index, (kernel, bias) in enumerate(folded_convolutions(dlib_layers)):
        model.get_layer(conv_name(index)).set_weights([kernel, bias])
    fc = dlib_layers[-1].fields
    model.get_layer("descriptor").set_weights([fc["kernel"]])


def dlib_face_network(include_top: bool = False, weights: str | None = PACKAGED,
                      input_shape: tuple[int, int, int] = (CHIP_SIZE, CHIP_SIZE, 3)
                      ) -> keras.Model:
    """The registry's constructor, with keras.applications' signature (there is no top):
    `weights` is `face_recognition_models`, a dlib `.dat` path, or None (random weights)."""
    model = build_face_resnet(tuple(input_shape))
    if weights is not None:
        load_dlib_weights(model, recognition_model_file(weights))
    return model
