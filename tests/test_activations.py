"""Views inside the networks: conv layer lookup, intermediate models, and the stage's figures."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pandas as pd
import pytest

from facetl.core.errors import FacetlError
from facetl.gender import activations
from facetl.gender.activations import layer_maps, main, pick_test_row, pick_test_rows
from facetl.inspect.taps import conv_layer_paths, intermediate_model, resolve_conv_layer
from facetl.models.backbones import build_extractor
from tests.tiny_pipeline import UP_TO_EVALUATE, overridden, run_gender_stages, tiny_params


@pytest.fixture(scope="module")
def extractor() -> keras.Model:
    """The pipeline's own extractor: uint8 image -> preprocess -> nested VGG16 -> features."""
    return build_extractor("vgg16", "none", 32)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3)).astype(np.uint8)


def test_conv_layers_are_found_inside_the_nested_backbone(extractor):
    paths = conv_layer_paths(extractor)
    assert len(paths) == 13 and all(path[0] == "vgg16" for path in paths)
    assert resolve_conv_layer(extractor, "first") == ("vgg16", "block1_conv1")
    assert resolve_conv_layer(extractor, "last") == ("vgg16", "block5_conv3")
    assert resolve_conv_layer(extractor, "block3_conv2") == ("vgg16", "block3_conv2")


def test_a_wrong_layer_name_lists_the_conv_layers(extractor):
    with pytest.raises(FacetlError, match="no convolution layer named 'block9_conv1'") as error:
        resolve_conv_layer(extractor, "block9_conv1")
    assert "block1_conv1, block1_conv2, block2_conv1" in str(error.value)
    assert "block5_conv3" in str(error.value) and "block1_pool" not in str(error.value)


def test_intermediate_model_runs_the_preprocessing_then_stops_at_the_layer(extractor, photos):
    path = resolve_conv_layer(extractor, "first")
    tapped = intermediate_model(extractor, path)(photos)
    assert tapped.shape == (3, 32, 32, 64)
    backbone = extractor.get_layer("vgg16")
    inner = keras.Model(backbone.inputs, backbone.get_layer("block1_conv1").output)
    by_hand = inner(extractor.get_layer("preprocess")(photos))
    np.testing.assert_allclose(tapped, by_hand, rtol=1e-5, atol=1e-4)


@pytest.mark.backend
def test_intermediate_model_with_output_matches_the_whole_model(extractor, photos):
    path = resolve_conv_layer(extractor, "last")
    feature_map, output = intermediate_model(extractor, path, with_output=True)(photos)
    assert feature_map.shape == (3, 2, 2, 512)
    np.testing.assert_allclose(output, extractor(photos), rtol=1e-5, atol=1e-5)


def test_layer_maps_keeps_the_wanted_channels_batch_by_batch(extractor, photos):
    path = resolve_conv_layer(extractor, "first")
    every = layer_maps(extractor, path, photos, batch_size=2)
    some = layer_maps(extractor, path, photos, np.array([5, 0]), batch_size=2)
    assert every.dtype == np.float32 and some.shape == (3, 32, 32, 2)
    np.testing.assert_array_equal(some, every[..., [5, 0]])


def test_test_photos_are_picked_by_position_or_name():
    index = pd.DataFrame({"file": ["a.jpg", "b.jpg", "c.jpg", "d.png"],
                          "source": ["/data/x1.jpg", "/data/x2.jpg", "/data/x3.jpg",
                                     "https://host/p/x4.png"]})
    test = np.array([1, 3])
    assert pick_test_row(index, test, 1) == 3
    assert pick_test_row(index, test, "x2.jpg") == 1
    assert pick_test_row(index, test, "https://host/p/x4.png") == 3
    assert pick_test_row(index, test, "d.png") == 3
    assert pick_test_rows(index, test, 36).tolist() == [1, 3]
    assert pick_test_rows(index, test, ["x4.png", 0]).tolist() == [3, 1]
    with pytest.raises(FacetlError, match="test split has 2 photos"):
        pick_test_row(index, test, 2)
    with pytest.raises(FacetlError, match=r"'x1.jpg' is not a test photo.*x2.jpg, x4.png"):
        pick_test_row(index, test, "x1.jpg")


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory):
    """The gender pipeline's stages up to evaluation, on tiny data, in a folder of its own."""
    folder = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        params = tiny_params(folder)
        run_gender_stages(UP_TO_EVALUATE)
    return folder, params


def test_stage_writes_the_grids_and_gradcam_overlays(pipeline_folder, monkeypatch):
    folder, params = pipeline_folder
    monkeypatch.chdir(folder)
    grids = {}

    @functools.wraps(activations.image_grid)
    def recording_grid(images, titles, path, **kwargs):
        grids[path.name] = ([np.shape(image) for image in images], titles, kwargs)
        activations.image_grid.__wrapped__(images, titles, path, **kwargs)

    monkeypatch.setattr(activations, "image_grid", recording_grid)
    main()

    shapes, titles, kwargs = grids["first_layer.png"]
    assert shapes == [(32, 32)] * 36 and titles[:2] == ["channel 0", "channel 1"]
    assert kwargs.get("columns", 6) == 6 and "block1_conv1" in kwargs["suptitle"]
    n_test = len(pd.read_csv(folder / "plots/gender/predictions.csv"))
    shapes, titles, _ = grids["channel_across_images.png"]
    assert shapes == [(32, 32)] * min(36, n_test) and set(titles) <= {"female", "male"}
    shapes, titles, kwargs = grids["last_layer.png"]
    assert shapes == [(2, 2)] * 36 and "block5_conv3" in kwargs["suptitle"]
    shown = sum(len(grids[f"gradcam_{kind}.png"][0]) for kind in ("misclassified", "correct"))
    assert shown == min(n_test, 2 * 8) and all(
        shape == (32, 32, 3) for kind in ("misclassified", "correct")
        for shape in grids[f"gradcam_{kind}.png"][0])
    for png in grids:
        assert (folder / "plots/activations" / png).stat().st_size > 1000


def test_stage_names_a_wrong_channel_or_layer(pipeline_folder, monkeypatch):
    folder, params = pipeline_folder
    monkeypatch.chdir(folder)
    with (overridden(folder, {"activations.channel": 64}),
          pytest.raises(FacetlError, match="block1_conv1 has 64 channels")):
        main()
    with (overridden(folder, {"activations.gradcam_layer": "conv9"}),
          pytest.raises(FacetlError, match="one of its convolution layers: block1_conv1")):
        main()
