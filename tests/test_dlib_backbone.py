"""The `dlib_face` backbone: dlib's face ResNet rebuilt in Keras, against dlib's own descriptor.

The oracle is dlib itself (`compute_face_descriptor` on the same 150x150 chips), from the
pinned dlib-bin wheel and the .dat file face-recognition-models installs: no shared data.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from skimage import data

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.detect import face_crop
from facetl.faces.dlib_models import (
    PACKAGED,
    cnn_face_detector,
    packaged_model_file,
    recognition_model_file,
)
from facetl.models.backbones import build_extractor, load_model
from facetl.models.dlib_face import FACE_RESNET, wrappers
from facetl.models.dlib_serial import read_network
from facetl.models.extraction import extract_to_npy
from facetl.models.finetune import unfreeze_top

SIZE = 150
SAME_PERSON = 0.6  # dlib's documented distance threshold between two photos of one person


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """The astronaut aligned, her mirror image aligned, two photos with no face, and noise."""
    settings = {"align": True, "upsample": 1, "detect_long_side": 240, "pad": 0.3, "cnn": False,
                "crop_size": SIZE, "margin": 0.25}
    astronaut = data.astronaut()
    noise = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    return np.concatenate([np.stack([face_crop(astronaut, settings).image,
                                     face_crop(astronaut[:, ::-1], settings).image,
                                     resize_square(data.chelsea(), SIZE),
                                     resize_square(data.coffee(), SIZE)]), noise])


@pytest.fixture(scope="module")
def dlib_descriptors(photos) -> np.ndarray:
    import dlib

    recogniser = dlib.face_recognition_model_v1(recognition_model_file(PACKAGED))
    return np.array(recogniser.compute_face_descriptor(list(photos)), dtype="float32")


@pytest.fixture(scope="module")
def extractor() -> keras.Model:
    return build_extractor("dlib_face", PACKAGED, SIZE)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.backend
def test_float32_descriptors_match_dlibs_own(extractor, photos, dlib_descriptors):
    ours = np.asarray(extractor.predict(photos, verbose=0))
    assert cosines(ours, dlib_descriptors).min() >= 0.9999
    np.testing.assert_allclose(ours, dlib_descriptors, atol=1e-4)


@pytest.mark.backend
def test_bfloat16_descriptors_stay_within_the_parity_bound(photos, dlib_descriptors):
    bf16 = build_extractor("dlib_face", PACKAGED, SIZE, precision="bfloat16")
    ours = np.asarray(bf16.predict(photos, verbose=0), dtype="float32")
    assert cosines(ours, dlib_descriptors).min() >= 0.999


def test_the_file_decodes_to_dlibs_metric_loss_settings():
    """The fields dlib's loss_metric_ writes first: margin 0.04, distance threshold 0.6."""
    loss, layers = read_network(recognition_model_file(PACKAGED), wrappers(FACE_RESNET))
    assert loss == pytest.approx({"margin": 0.04, "distance_threshold": 0.6}, abs=1e-6)
    convolutions = [layer for layer in layers if layer.name == "con"]
    assert len(convolutions) == 29 and convolutions[0].fields["kernel"].shape == (32, 3, 7, 7)


@pytest.mark.backend
def test_features_are_128_d_and_deterministic(tmp_path, extractor, photos):
    assert extractor.output_shape == (None, 128)
    extract_to_npy(extractor, photos, tmp_path / "a.npy", batch_size=3)
    extract_to_npy(extractor, photos, tmp_path / "b.npy", batch_size=2)
    first, second = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert first.shape == (len(photos), 128) and first.dtype == np.float32
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_the_descriptor_knows_a_face_from_its_mirror_and_from_a_cat(extractor, photos):
    vectors = np.asarray(extractor(photos[:4], training=False))
    distances = np.linalg.norm(vectors - vectors[0], axis=1)
    assert distances[1] < SAME_PERSON < min(distances[2:])


@pytest.mark.backend
def test_a_saved_end_to_end_model_carries_the_network_and_loads_alone(tmp_path, extractor,
                                                                        photos):
    inputs = keras.Input((128,))
    head = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    image = keras.Input((SIZE, SIZE, 3))
    end_to_end = keras.Model(image, head(extractor(image)))
    end_to_end.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(photos, verbose=0),
                               end_to_end.predict(photos, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.backend
def test_one_fine_tuning_step_changes_the_face_network_and_keeps_the_head_trainable(photos):
    extractor = build_extractor("dlib_face", PACKAGED, SIZE)
    image = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(image, keras.layers.Dense(1, activation="sigmoid", name="head")(
        extractor(image)))
    unfrozen = unfreeze_top(model, -1)
    assert len(unfrozen) == 30  # 29 convolutions (affine folded in) and the descriptor layer
    model.compile(keras.optimizers.SGD(0.1), "binary_crossentropy")
    first = extractor.get_layer("dlib_face").get_layer("con0").get_weights()[0].copy()
    loss = model.train_on_batch(photos.astype("float32"), np.array([[1], [1], [0], [0], [0],
                                                                     [0]], dtype="float32"))
    after = extractor.get_layer("dlib_face").get_layer("con0").get_weights()[0]
    assert np.isfinite(loss) and not np.allclose(first, after)


def test_weights_none_is_the_same_network_randomly_initialised(extractor, photos,
                                                               dlib_descriptors):
    random = build_extractor("dlib_face", "none", SIZE)
    trained = extractor.get_layer("dlib_face")
    assert [w.shape for w in random.get_layer("dlib_face").weights] == \
        [w.shape for w in trained.weights]
    assert cosines(np.asarray(random.predict(photos, verbose=0)), dlib_descriptors).min() < 0.9


def test_a_missing_wrong_or_foreign_model_file_is_an_error(tmp_path):
    with pytest.raises(FacetlError, match="no such file") as caught:
        build_extractor("dlib_face", str(tmp_path / "gone.dat"), SIZE)
    assert PACKAGED in str(caught.value)
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not a dlib model")
    with pytest.raises(FacetlError, match="not the dlib network expected"):
        build_extractor("dlib_face", str(junk), SIZE)
    cnn_face_detector()  # the packaged file loads in dlib: a real dlib network, another one
    with pytest.raises(FacetlError, match="expected dlib's metric loss"):
        build_extractor("dlib_face", packaged_model_file("cnn"), SIZE)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(Path(recognition_model_file(PACKAGED)).read_bytes()[:1_000_000])
    with pytest.raises(FacetlError, match="ends early"):
        build_extractor("dlib_face", str(truncated), SIZE)


def test_inputs_below_the_chip_size_are_an_error():
    with pytest.raises(FacetlError, match="below dlib_face's minimum of 150"):
        build_extractor("dlib_face", PACKAGED, 100)


def test_larger_crops_are_resized_to_dlibs_chip_inside_the_network(photos, dlib_descriptors):
    """A 300 px crop (the faces stage's default) gives the 150 px chip's descriptor: from 300
    px, bilinear resizing is the mean of each 2x2 block, computed here independently."""
    doubled = np.repeat(np.repeat(photos, 2, axis=1), 2, axis=2)  # 2x2 blocks of one pixel
    large = build_extractor("dlib_face", PACKAGED, 2 * SIZE)
    ours = np.asarray(large.predict(doubled, verbose=0))
    assert cosines(ours, dlib_descriptors).min() >= 0.9999
