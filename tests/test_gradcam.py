"""Grad-CAM on tiny nested models whose answer is known: a class decided by one quadrant."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from facetl.core.errors import FacetlError
from facetl.inspect.gradcam import gradcam, overlay
from facetl.inspect.taps import resolve_conv_layer

SIZE, HALF = 32, 16
PATH = ("extractor", "backbone", "conv_b")

pytestmark = pytest.mark.backend  # the core model code: runs under every Keras backend


def quadrant_photos(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two lit quadrants each; class 1 iff the top-left one is lit.

    Both classes have the same brightness, so only *where* the light is decides the class.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, SIZE, SIZE, 3)).astype(np.uint8)
    labels = rng.integers(0, 2, n)
    for image, label in zip(images, labels, strict=True):
        others = rng.choice([1, 2, 3], size=2 - label, replace=False)
        for quadrant in [0] * label + list(others):
            row, col = divmod(int(quadrant), 2)
            image[row * HALF:(row + 1) * HALF, col * HALF:(col + 1) * HALF] += 150
    return images, labels


def nested_model(head_pooling: str) -> keras.Model:
    """Like the pipeline's: image -> extractor(preprocess -> backbone) -> head."""
    backbone_input = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(backbone_input)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_b")(x)
    backbone = keras.Model(backbone_input, x, name="backbone")
    image = keras.Input((SIZE, SIZE, 3), name="image")
    extractor = keras.Model(image, backbone(layers.Rescaling(1 / 255)(image)), name="extractor")
    features = keras.Input(backbone.output.shape[1:])
    y = features
    if head_pooling == "flatten":  # the chapter's head: Conv, then Flatten -> Dense
        y = layers.Flatten()(layers.Conv2D(8, 3, activation="relu", name="conv0")(y))
    else:
        y = layers.GlobalAveragePooling2D()(y)
    head = keras.Model(features, layers.Dense(1, activation="sigmoid", name="output")(y),
                       name="head")
    return keras.Model(image, head(extractor(image)), name="end_to_end")


@pytest.fixture(scope="module")
def trained() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = nested_model("flatten")
    images, labels = quadrant_photos(400, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    return model


def test_heatmap_mass_falls_in_the_deciding_quadrant(trained):
    images, labels = quadrant_photos(60, seed=1)
    p_model = trained.predict(images, verbose=0)[:, 0]
    assert np.mean((p_model >= 0.5) == labels) >= 0.95  # it did learn the rule
    positives = images[labels == 1]
    heatmaps, p_positive = gradcam(trained, PATH, positives)
    assert heatmaps.shape == (len(positives), HALF, HALF)
    assert heatmaps.min() >= 0 and np.allclose(heatmaps.max(axis=(1, 2)), 1)
    top_left = heatmaps[:, :HALF // 2, :HALF // 2].sum(axis=(1, 2)) / heatmaps.sum(axis=(1, 2))
    assert top_left.mean() > 0.8 and top_left.min() > 0.5  # a quarter if it looked anywhere
    np.testing.assert_allclose(p_positive, p_model[labels == 1], atol=1e-5)


def test_output_layer_keeps_its_sigmoid(trained):
    gradcam(trained, PATH, quadrant_photos(2, seed=2)[0])
    assert trained.get_layer("head").get_layer("output").activation is keras.activations.sigmoid


def test_gradcam_and_hirescam_agree_on_a_global_average_head():
    """Grad-CAM's own derivation: with global average pooling the gradient is the same at
    every position, so averaging it first changes nothing."""
    keras.utils.set_random_seed(1)
    model = nested_model("average")
    images = quadrant_photos(4, seed=3)[0]
    grad, _ = gradcam(model, PATH, images, method="gradcam")
    hires, _ = gradcam(model, PATH, images, method="hirescam")
    np.testing.assert_allclose(grad, hires, atol=1e-5)


def test_last_conv_of_the_extractor_is_not_the_heads(trained):
    extractor = trained.get_layer("extractor")
    assert resolve_conv_layer(extractor, "last") == ("backbone", "conv_b")
    assert resolve_conv_layer(trained, "last") == ("head", "conv0")


def test_unsupported_models_and_methods_are_refused(trained):
    images = quadrant_photos(2, seed=4)[0]
    with pytest.raises(FacetlError, match="gradcam_method must be one of"):
        gradcam(trained, PATH, images, method="saliency")
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = layers.Conv2D(2, 3, name="conv")(inputs)
    softmax = keras.Model(inputs, layers.Dense(2, activation="softmax")(layers.Flatten()(conv)))
    with pytest.raises(FacetlError, match="one-unit sigmoid"):
        gradcam(softmax, ("conv",), images)


def test_overlay_blends_the_heatmap_onto_the_photo():
    photo = np.full((32, 32, 3), 100, dtype=np.uint8)
    heatmap = np.zeros((4, 4), dtype="float32")
    heatmap[0, 0] = 1.0
    blended = overlay(photo, heatmap, alpha=0.5)
    assert blended.shape == photo.shape and blended.dtype == np.uint8
    red, green, blue = blended[0, 0].astype(int)
    assert red > 100 > max(green, blue)  # hot: jet's dark red
    red, green, blue = blended[-1, -1].astype(int)
    assert blue > 100 > max(red, green)  # cold: jet's dark blue
    np.testing.assert_array_equal(overlay(photo, heatmap, alpha=0.0), photo)
