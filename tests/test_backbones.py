"""The backbone registry and build_extractor, on random weights at the smallest input sizes."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras.applications import imagenet_utils

from facetl.core.errors import FacetlError
from facetl.models.backbones import REGISTRY, Preprocess, build_extractor, resolve_weights

SIZE = 32


def images(n: int = 4, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def vgg16_weights(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A VGG16 weights file, as in ../shared/weights, and the weights it holds."""
    backbone = keras.applications.VGG16(include_top=False, weights=None,
                                        input_shape=(SIZE, SIZE, 3))
    path = tmp_path_factory.mktemp("weights") / "vgg16_notop.weights.h5"
    backbone.save_weights(path)
    return path, backbone.get_weights()


def copy_of(weights: Path, folder: Path) -> Path:
    """The weights file under a new name, to declare something about it."""
    copy = folder / f"copy-{weights.name}"
    copy.write_bytes(weights.read_bytes())
    return copy


def preprocess_mode(model: keras.Model) -> str:
    return model.get_layer("preprocess").mode


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(FacetlError, match="unknown backbone 'vgg17'") as caught:
        build_extractor("vgg17", "none", SIZE)
    assert all(name in str(caught.value) for name in REGISTRY)


@pytest.mark.parametrize(("name", "size", "minimum"), [("inception_v3", 74, 75),
                                                       ("vgg16", 31, 32)])
def test_input_below_the_minimum_is_an_error(name, size, minimum):
    with pytest.raises(FacetlError, match=f"below {name}'s minimum of {minimum}") as caught:
        build_extractor(name, "none", size)
    assert "input_size" in str(caught.value)


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(FacetlError, match="no such file") as caught:
        build_extractor("vgg16", str(tmp_path / "gone.weights.h5"), SIZE)
    assert "backbones.vgg16.weights" in str(caught.value) and "imagenet" in str(caught.value)


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras on the empty file
@pytest.mark.parametrize("content", ["junk", "empty_h5"])
def test_a_file_that_is_not_the_backbones_weights_is_an_error(tmp_path, content):
    path = tmp_path / "wrong.weights.h5"
    if content == "junk":
        path.write_bytes(b"these are not weights")
    else:
        with h5py.File(path, "w") as h5:
            h5.attrs["preprocess"] = "tf"
    with pytest.raises(FacetlError, match="cannot load as vgg16 weights"):
        build_extractor("vgg16", str(path), SIZE)


@pytest.mark.parametrize("none", ["none", "None", ""])
def test_weights_none_and_imagenet_resolve_to_keras_arguments(none):
    assert resolve_weights("vgg16", none, None) == (None, "caffe")
    assert resolve_weights("mobilenet_v2", "imagenet", None) == ("imagenet", "tf")
    assert resolve_weights("mobilenet_v2", "imagenet", "torch") == ("imagenet", "torch")


@pytest.mark.backend
def test_extractor_is_frozen_and_gives_float32_features():
    model = build_extractor("mobilenet_v2", "none", SIZE)
    assert model.output_shape == (None, 1, 1, 1280)
    assert not model.get_layer("mobilenetv2_1.00_32").trainable
    assert model.trainable_weights == []
    assert keras.backend.standardize_dtype(model(images(), training=False).dtype) == "float32"
    assert preprocess_mode(model) == "tf"


@pytest.mark.backend
def test_a_weights_file_is_loaded(vgg16_weights):
    path, weights = vgg16_weights
    model = build_extractor("vgg16", str(path), SIZE)
    loaded = model.get_layer("vgg16").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(loaded, weights, strict=True))
    assert preprocess_mode(model) == "caffe"  # nothing declared: the backbone's own


def test_a_json_sidecar_declares_the_preprocessing(tmp_path, vgg16_weights):
    path = copy_of(vgg16_weights[0], tmp_path)
    Path(f"{path}.json").write_text(json.dumps({"preprocess": "torch"}))
    assert preprocess_mode(build_extractor("vgg16", str(path), SIZE)) == "torch"
    # An explicit backbones.<name>.preprocess still wins over the file's declaration.
    assert preprocess_mode(build_extractor("vgg16", str(path), SIZE, "tf")) == "tf"


def test_an_h5_attribute_declares_the_preprocessing(tmp_path, vgg16_weights):
    path = copy_of(vgg16_weights[0], tmp_path)
    with h5py.File(path, "a") as h5:
        h5.attrs["preprocess"] = "torch"
    assert preprocess_mode(build_extractor("vgg16", str(path), SIZE)) == "torch"


@pytest.mark.backend
@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocess_matches_keras_preprocess_input(mode):
    x = images(3)
    expected = imagenet_utils.preprocess_input(x.astype("float32"), mode=mode)
    got = keras.ops.convert_to_numpy(Preprocess(mode)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_raw_preprocess_passes_pixels_through_as_float32():
    x = images(2)
    got = Preprocess("raw")(x)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), x.astype("float32"))


def test_unknown_preprocess_mode_is_an_error():
    with pytest.raises(FacetlError, match="preprocess must be one of"):
        build_extractor("vgg16", "none", SIZE, preprocess="bgr")


@pytest.mark.backend
@pytest.mark.parametrize("mode", ["caffe", "tf", "torch", "raw"])
def test_preprocess_layer_round_trips_through_save_and_load(tmp_path, mode):
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, Preprocess(mode, name="preprocess")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # no custom_objects needed
    assert isinstance(loaded.get_layer("preprocess"), Preprocess)
    assert preprocess_mode(loaded) == mode
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(images())),
                                  keras.ops.convert_to_numpy(model(images())))


@pytest.mark.backend
def test_a_saved_extractor_loads_and_gives_the_same_features(tmp_path):
    model = build_extractor("vgg16", "none", SIZE, "torch")
    model.save(tmp_path / "extractor.keras")
    loaded = keras.models.load_model(tmp_path / "extractor.keras")
    assert preprocess_mode(loaded) == "torch"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(images(), training=False)),
                                  keras.ops.convert_to_numpy(model(images(), training=False)))
