"""The `dlib_face` backbone: dlib's face descriptor behind the registry's Keras interface."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from skimage import data

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.detect import face_crop
from facetl.faces.dlib_models import PACKAGED
from facetl.models.backbones import build_extractor, load_model
from facetl.models.extraction import extract_to_npy

SIZE = 150
SAME_PERSON = 0.6  # dlib's documented distance threshold between two photos of one person


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """The astronaut aligned, her mirror image aligned, and two photos with no face."""
    settings = {"align": True, "upsample": 1, "detect_long_side": 240, "pad": 0.3, "cnn": False,
                "crop_size": SIZE, "margin": 0.25}
    astronaut = data.astronaut()
    return np.stack([face_crop(astronaut, settings).image,
                     face_crop(astronaut[:, ::-1], settings).image,
                     resize_square(data.chelsea(), SIZE), resize_square(data.coffee(), SIZE)])


@pytest.fixture(scope="module")
def extractor() -> keras.Model:
    return build_extractor("dlib_face", PACKAGED, SIZE)


@pytest.mark.backend
def test_features_are_128_d_and_deterministic(tmp_path, extractor, photos):
    assert extractor.output_shape == (None, 128)
    extract_to_npy(extractor, photos, tmp_path / "a.npy", batch_size=3)
    extract_to_npy(extractor, photos, tmp_path / "b.npy", batch_size=2)
    first, second = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert first.shape == (len(photos), 128) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)


def test_the_descriptor_knows_a_face_from_its_mirror_and_from_a_cat(extractor, photos):
    vectors = np.asarray(extractor(photos, training=False))
    distances = np.linalg.norm(vectors - vectors[0], axis=1)
    assert distances[1] < SAME_PERSON < min(distances[2:])


@pytest.mark.backend
def test_a_saved_extractor_and_end_to_end_model_load_without_dlib_weights_inside(
        tmp_path, extractor, photos):
    inputs = keras.Input((128,))
    head = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    image = keras.Input((SIZE, SIZE, 3))
    end_to_end = keras.Model(image, head(extractor(image)))
    end_to_end.save(tmp_path / "model.keras")
    assert (tmp_path / "model.keras").stat().st_size < 200_000  # dlib's file is 22 MB
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(photos, verbose=0),
                               end_to_end.predict(photos, verbose=0), rtol=1e-6)


def test_dlib_face_has_no_random_weights():
    with pytest.raises(FacetlError, match="no random initialisation"):
        build_extractor("dlib_face", "none", SIZE)


def test_a_missing_or_wrong_model_file_is_an_error(tmp_path):
    with pytest.raises(FacetlError, match="no such file") as caught:
        build_extractor("dlib_face", str(tmp_path / "gone.dat"), SIZE)
    assert PACKAGED in str(caught.value)
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not a dlib model")
    with pytest.raises(FacetlError, match="cannot load as a dlib face recognition model"):
        build_extractor("dlib_face", str(junk), SIZE)


def test_inputs_below_the_chip_size_are_an_error():
    with pytest.raises(FacetlError, match="below dlib_face's minimum of 150"):
        build_extractor("dlib_face", PACKAGED, 100)
