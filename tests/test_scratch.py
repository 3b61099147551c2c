"""The chapter's scratch CNNs: their exact shapes, and one scenario trained end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetl.core.errors import FacetlError
from facetl.gender.scratch import (
    main,
    resize_batch,
    scenario_config,
    scratch_cnn,
    subsample,
)
from tests.tiny_pipeline import UP_TO_PREPARE, run_gender_stages, tiny_params


def conv_shapes(model) -> list[tuple[int, ...]]:
    return [tuple(layer.output.shape[1:]) for layer in model.layers
            if layer.name.startswith("conv")]


def test_small_scenario_is_the_chapters_network():
    model = scratch_cnn(50, 2, 255)
    assert conv_shapes(model) == [(48, 48, 64), (22, 22, 128), (9, 9, 256), (2, 2, 512)]
    assert model.get_layer("dense").input.shape[1:] == (2048,)
    # The chapter's summary: 1,792 + 73,856 + 295,168 + 1,180,160 + 204,900 + 101 weights.
    assert model.count_params() == 1_755_977


def test_aggressive_pooling_shrinks_the_map_by_three():
    model = scratch_cnn(300, 3, 255, filters=(2, 2, 2, 4), dense=4)
    assert conv_shapes(model) == [(298, 298, 2), (97, 97, 2), (30, 30, 2), (8, 8, 4)]
    assert model.get_layer("pool0").output.shape[1:3] == (99, 99)


@pytest.mark.parametrize("pool_size", [2, 3])
def test_tiny_inputs_still_build_with_padding(pool_size):
    model = scratch_cnn(32, pool_size, 255, filters=(4, 4, 4, 8), dense=4)
    assert model.output.shape[1:] == (1,)
    assert conv_shapes(model)[0] == (30, 30, 4)  # unpadded while the map allows


def test_resize_batch_streams_to_the_scenario_size():
    batch = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    assert resize_batch(batch, 50).shape == (3, 50, 50, 3)
    assert resize_batch(batch, 20).dtype == np.uint8
    assert resize_batch(batch, 32) is batch


def test_subsample_is_stratified_seeded_and_bounded():
    labels = np.array([0, 1] * 50)
    rows = np.arange(100)
    picked = subsample(rows, labels, 20, seed=3)
    assert len(picked) == 20 and np.bincount(labels[picked]).tolist() == [10, 10]
    assert np.array_equal(picked, subsample(rows, labels, 20, seed=3))
    assert subsample(rows, labels, None, 3) is rows
    assert subsample(rows, labels, 500, 3) is rows


def test_scenario_overrides_common_and_unknown_ones_are_named():
    params = {"scratch": {"common": {"epochs": 10, "max_train_images": None},
                          "scenarios": {"large": {"input_size": 300, "epochs": 1}}}}
    assert scenario_config(params, "large") == {"epochs": 1, "max_train_images": None,
                                                "input_size": 300}
    with pytest.raises(FacetlError, match=r"'huge'.*\['large'\]"):
        scenario_config(params, "huge")


def test_scratch_stage_trains_scores_and_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_params(tmp_path, {"scratch.common.filters": [4, 4, 4, 8],
                           "scratch.common.dense": 8, "scratch.scenarios.small.epochs": 2,
                           "scratch.scenarios.small.max_train_images": 30,
                           "scratch.scenarios.small.input_size": 40})
    run_gender_stages(UP_TO_PREPARE)

    main("small")
    metrics = json.loads((tmp_path / "metrics/scratch_small.json").read_text())
    assert {"accuracy", "accuracy_ci95", "auc", "n_test", "seconds"} <= metrics.keys()
    low, high = metrics["accuracy_ci95"]
    assert 0 <= low <= metrics["accuracy"] <= high <= 1
    assert metrics["input_size"] == 40 and metrics["n_fit"] + metrics["n_val"] == 30
    live = tmp_path / "plots/scratch/small"
    for split in ("train", "eval"):
        curve = (live / f"plots/metrics/{split}/accuracy.tsv").read_text().splitlines()
        assert len(curve) == 1 + 2  # header and one row per epoch
    assert (live / "training.png").stat().st_size > 1000

    main("small")  # same params, same machine: same metrics
    again = json.loads((tmp_path / "metrics/scratch_small.json").read_text())
    assert {k: again[k] for k in ("accuracy", "auc")} == {k: metrics[k] for k in
                                                          ("accuracy", "auc")}
