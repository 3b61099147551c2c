"""A reader of dlib's serialization format, enough to load a dlib DNN's weights into numpy.

dlib saves a network (`dlib::serialize(net)`) as its layers nested the way its C++ template
nests them: the loss, then one version number per wrapper from the output down (an `add_layer`,
a `tag`, a `skip`), then the input layer, then each layer's details from the input up. The
wrappers carry no data and the file does not name them, so the caller gives the network's
shape (its levels' kinds, output first) and this reader checks every version against it: a file of
another network fails at the first field that differs, not with wrong weights.

The encodings (dlib/serialize.h, dlib/cuda/tensor.h): an integer is a control byte (high bit:
negative; low 4 bits: how many bytes follow) and those bytes little-endian; a string is its
length then its bytes; a bool is the byte '1' or '0'; a float is an integer mantissa then an
integer exponent (m x 2^e); a tensor is version 2, its four dimensions, then little-endian
float32s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetl.core.errors import FacetlError

SPECIAL_EXPONENTS = {32000: np.inf, 32001: -np.inf, 32002: np.nan}  # dlib/float_details.h


@dataclass
class DlibLayer:
    """A computational layer as saved: its dlib name (`con`, `affine`, ...) and its fields."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


class DlibStream:
    """dlib's primitive encodings over the bytes of one file."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.pos = 0

    def fail(self, what: str) -> FacetlError:
        return FacetlError(f"{self.source}: byte {self.pos}: {what}; not the dlib network "
                           "expected (a dlib_face_recognition_resnet_model_v1.dat file)")

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise self.fail("the file ends early")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise self.fail(f"an integer of {size} bytes")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def string(self) -> str:
        return self.take(self.integer()).decode("latin-1")

    def boolean(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"a bool of {byte!r}")
        return byte == b"1"

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent in SPECIAL_EXPONENTS:
            return float(SPECIAL_EXPONENTS[exponent])
        return float(np.ldexp(np.float64(mantissa), exponent))

    def tensor(self) -> np.ndarray:
        """A (num_samples, k, nr, nc) float32 array."""
        self.expect(self.integer(), 2, "tensor version")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape).astype("float32")

    def alias(self) -> tuple[int, ...]:
        """An alias tensor: only a shape, its values live in the layer's params."""
        self.expect(self.integer(), 1, "alias tensor version")
        return tuple(self.integer() for _ in range(4))

    def expect(self, found: Any, wanted: Any, what: str) -> None:
        if found != wanted:
            raise self.fail(f"{what} is {found!r}, expected {wanted!r}")


def split_params(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """A layer's params tensor cut into the arrays its alias tensors describe, in order."""
    flat, parts, start = params.reshape(-1), [], 0
    for shape in shapes:
        count = int(np.prod(shape))
        parts.append(flat[start:start + count].reshape(shape))
        start += count
    return parts


def read_con(stream: DlibStream, version: str) -> dict:
    params = stream.tensor()
    filters_count, rows, cols, stride_y, stride_x, pad_y, pad_x = (
        stream.integer() for _ in range(7))
    filters, biases = stream.alias(), stream.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        stream.real()
    use_bias = stream.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6":
        stream.boolean()  # use_relu: a fused ReLU flag, never set in saved models
    kernel, bias = split_params(params, filters, biases)
    return {"kernel": kernel, "bias": bias.reshape(-1) if use_bias else None,
            "filters": filters_count, "size": (rows, cols), "stride": (stride_y, stride_x),
            "padding": (pad_y, pad_x)}


def read_affine(stream: DlibStream, version: str) -> dict:
    params = stream.tensor()
    gamma_shape, beta_shape = stream.alias(), stream.alias()
    stream.integer()  # mode: per channel (CONV_MODE) or per unit (FC_MODE)
    if version == "affine_2":
        stream.boolean()  # disabled
    gamma, beta = split_params(params, gamma_shape, beta_shape)
    return {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)}


def read_pool(stream: DlibStream, version: str) -> dict:
    rows, cols, stride_y, stride_x, pad_y, pad_x = (stream.integer() for _ in range(6))
    return {"size": (rows, cols), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)}


def read_relu(stream: DlibStream, version: str) -> dict:
    if version == "relu_2":
        stream.boolean()  # disabled
    return {}


def read_add_prev(stream: DlibStream, version: str) -> dict:
    return {}


def read_fc(stream: DlibStream, version: str) -> dict:
    outputs, inputs = stream.integer(), stream.integer()
    params = stream.tensor()
    weights, biases = stream.alias(), stream.alias()
    bias_mode = stream.integer()  # 0: with bias (FC_HAS_BIAS), 1: without
    for _ in range(4):
        stream.real()
    if version == "fc_3":
        stream.boolean()  # use_bias
    kernel, bias = split_params(params, weights, biases)
    return {"kernel": kernel.reshape(inputs, outputs),
            "bias": bias.reshape(-1) if bias_mode == 0 and bias.size else None}


LAYER_READERS = {  # dlib's version string -> (layer name, reader)
    **{v: ("con", read_con) for v in ("con_4", "con_5", "con_6")},
    **{v: ("affine", read_affine) for v in ("affine_", "affine_2")},
    **{v: ("relu", read_relu) for v in ("relu_", "relu_2")},
    "max_pool_2": ("max_pool", read_pool),
    "avg_pool_2": ("avg_pool", read_pool),
    "add_prev_": ("add_prev", read_add_prev),
    **{v: ("fc", read_fc) for v in ("fc_2", "fc_3")},
}


def read_layer(stream: DlibStream) -> DlibLayer:
    version = stream.string()
    if version not in LAYER_READERS:
        raise stream.fail(f"a layer of unknown kind {version!r}")
    name, reader = LAYER_READERS[version]
    return DlibLayer(name, reader(stream, version))


def read_input_rgb(stream: DlibStream) -> DlibLayer:
    version = stream.string()
    if version not in ("input_rgb_image_sized", "input_rgb_image"):
        raise stream.fail(f"an input layer {version!r}, expected an RGB image input")
    mean = [stream.real() for _ in range(3)]
    size = (stream.integer(), stream.integer()) if version == "input_rgb_image_sized" else None
    return DlibLayer("input", {"mean_rgb": np.array(mean, dtype="float32"), "size": size})


def read_layer_state(stream: DlibStream, is_input_level: bool, version: int) -> None:
    """What `add_layer` saves after its layer: flags and training buffers, unused here."""
    for _ in range(3):
        stream.boolean()
    stream.tensor()  # x_grad
    stream.tensor()  # cached_output
    stream.tensor()  # params_grad, or grad_final at the input level
    if is_input_level and version >= 3:
        stream.integer()  # sample expansion factor


def read_network(path: str | Path, wrappers: list[str]) -> tuple[dict, list[DlibLayer]]:
    """A metric-loss network's loss settings and layers (input first), checked against
    `wrappers` (the template's levels, output first: `layer` (add_layer), `tag` or `skip`)."""
    if wrappers[-1] != "layer":
        raise FacetlError("the innermost level must be a layer over the input")
    stream = DlibStream(Path(path).read_bytes(), str(path))
    stream.expect(stream.integer(), 1, "the loss layer's version")
    loss_version = stream.string()
    if not loss_version.startswith("loss_metric"):
        raise stream.fail(f"a loss {loss_version!r}, expected dlib's metric loss")
    loss = {"margin": stream.real(), "distance_threshold": stream.real()}
    layer_levels = [i for i, kind in enumerate(wrappers) if kind == "layer"]
    versions = []
    for index, kind in enumerate(wrappers):
        version = stream.integer()
        allowed = ((2, 3) if index == layer_levels[-1] else (1, 2)) if kind == "layer" else (1,)
        if version not in allowed:
            raise stream.fail(f"level {index} ({kind}) has version {version}, "
                              f"expected one of {allowed}")
        versions.append(version)
    layers = [read_input_rgb(stream)]
    for index in reversed(layer_levels):
        layers.append(read_layer(stream))
        read_layer_state(stream, index == layer_levels[-1], versions[index])
    if stream.pos != len(stream.data):
        raise stream.fail(f"{len(stream.data) - stream.pos} bytes left after the last layer")
    return loss, layers
