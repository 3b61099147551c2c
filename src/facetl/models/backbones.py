"""The backbone registry: one line per network, carrying what must travel with its weights.

Like timm's registry, a name maps to a constructor plus the config that goes with it (the
preprocessing the weights expect, the smallest input it accepts). `build_extractor` wraps the
network with its preprocessing so that uint8 RGB images go in and features come out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers, ops

from facetl.core.errors import FacetlError
from facetl.faces.dlib_models import PACKAGED
from facetl.models.calibration import Temperature
from facetl.models.dlib_face import dlib_face_network
from facetl.models.precision import POLICY

PREPROCESS_MODES = ("caffe", "tf", "torch", "raw")
IMAGENET_MEAN_RGB = np.array([123.68, 116.779, 103.939], dtype="float32")
TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype="float32")
TORCH_STD = np.array([0.229, 0.224, 0.225], dtype="float32")


@dataclass(frozen=True)
class BackboneSpec:
    constructor: Callable[..., keras.Model]
    preprocess: str  # what the ImageNet weights expect
    min_size: int
    bf16_wins_with: str | None  # CPU flag from which bf16 beats fp32 here (see precision.py)
    head_blocks: int = 1  # Conv512+Pool blocks in the chapter's head (two for ResNet50)
    pretrained: str = "imagenet"  # the `weights` value that selects the published weights


A = keras.applications
REGISTRY: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(A.VGG16, "caffe", 32, "avx512_bf16"),
    "vgg19": BackboneSpec(A.VGG19, "caffe", 32, "avx512_bf16"),
    "resnet50": BackboneSpec(A.ResNet50, "caffe", 32, "avx512_bf16", head_blocks=2),
    "inception_v3": BackboneSpec(A.InceptionV3, "tf", 75, "avx512_bf16"),
    "mobilenet_v2": BackboneSpec(A.MobileNetV2, "tf", 32, None),
    "efficientnet_b0": BackboneSpec(A.EfficientNetB0, "raw", 32, None),
    "convnext_tiny": BackboneSpec(A.ConvNeXtTiny, "raw", 32, "amx_bf16"),  # not measured yet
    # dlib's face ResNet rebuilt in Keras (dlib_face.py), weights read from dlib's .dat file;
    # 128-D descriptors, so no conv blocks in the chapter's head; bf16 not measured yet.
    "dlib_face": BackboneSpec(dlib_face_network, "raw", 150, None, head_blocks=0,
                              pretrained=PACKAGED),
}


def get_spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise FacetlError(f"unknown backbone {name!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


@keras.saving.register_keras_serializable(package="facetl")
class Preprocess(layers.Layer):
    """The weights' input normalisation, in float32 whatever the backbone's precision."""

    def __init__(self, mode: str, **kwargs) -> None:
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise FacetlError(f"preprocess must be one of {PREPROCESS_MODES}, got {mode!r}")
        self.mode = mode

    def call(self, images):
        x = ops.cast(images, "float32")
        # keras.ops with the numpy constants, not `-` and `/`: a torch tensor hands those to
        # numpy, which copies it to the host (and fails on a GPU).
        if self.mode == "caffe":  # RGB -> BGR, minus the ImageNet mean
            return ops.subtract(ops.flip(x, axis=-1), IMAGENET_MEAN_RGB[::-1].copy())
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            return ops.divide(ops.subtract(x / 255.0, TORCH_MEAN), TORCH_STD)
        return x

    def get_config(self) -> dict:
        return super().get_config() | {"mode": self.mode}


def declared_preprocess(weights: str) -> str | None:
    """A weights file may declare its preprocessing: a `<file>.json` sidecar or an h5 attribute."""
    sidecar = Path(weights + ".json")
    if sidecar.is_file():
        return json.loads(sidecar.read_text()).get("preprocess")
    try:
        with h5py.File(weights, "r") as h5:
            mode = h5.attrs.get("preprocess")
    except OSError:  # not HDF5 (e.g. a .keras archive): loading it says what is wrong
        return None
    return mode.decode() if isinstance(mode, bytes) else mode


def resolve_weights(name: str, weights: str, preprocess: str | None) -> tuple[str | None, str]:
    """Keras' `weights` argument and the preprocessing mode for a backbone's settings."""
    spec = get_spec(name)
    weights = str(weights)
    if weights == spec.pretrained:
        return weights, preprocess or spec.preprocess
    if weights in ("none", "None", ""):
        return None, preprocess or spec.preprocess
    if not Path(weights).is_file():
        raise FacetlError(
            f"backbones.{name}.weights: no such file {weights!r}; use `{spec.pretrained}`, "
            "`none` or the path of a weights file"
        )
    return weights, preprocess or declared_preprocess(weights) or spec.preprocess


def _construct(name: str, weights: str | None, input_size: int) -> keras.Model:
    try:
        return get_spec(name).constructor(include_top=False, weights=weights,
                                          input_shape=(input_size, input_size, 3))
    except FacetlError:
        raise
    except Exception as exc:
        if weights == "imagenet" and ("URL fetch failure" in str(exc) or "urlopen" in str(exc)):
            raise FacetlError(
                f"cannot download the ImageNet weights of {name} ({exc}). Offline? Give a local "
                f"file: `dvc exp run -S backbones.{name}.weights=FILE`, or `none` for random "
                "weights (docs/settings.md)"
            ) from exc
        if weights not in (None, "imagenet"):
            raise FacetlError(f"{weights}: cannot load as {name} weights ({exc})") from exc
        raise


def build_extractor(name: str, weights: str, input_size: int, preprocess: str | None = None,
                    precision: str = "float32") -> keras.Model:
    """uint8 RGB (S, S, 3) -> preprocessing -> frozen backbone -> float32 feature map."""
    spec = get_spec(name)
    if input_size < spec.min_size:
        raise FacetlError(
            f"input size {input_size} is below {name}'s minimum of {spec.min_size}; "
            "raise prepare.<task>.input_size"
        )
    keras_weights, mode = resolve_weights(name, weights, preprocess)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICY[precision])
    try:
        backbone = _construct(name, keras_weights, input_size)
    finally:
        keras.config.set_dtype_policy(previous)
    backbone.trainable = False
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # training=False keeps BatchNorm in inference mode even if someone unfreezes the backbone.
    features = backbone(Preprocess(mode, name="preprocess")(inputs), training=False)
    features = layers.Activation("linear", dtype="float32", name="features")(features)
    return keras.Model(inputs, features, name=f"{name}_extractor")


def load_model(path: str | Path) -> keras.Model:
    """Load a saved extractor or end-to-end model (this module knows their custom layers)."""
    return keras.models.load_model(path, custom_objects={"Temperature": Temperature})
