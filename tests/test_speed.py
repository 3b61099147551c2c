"""The FLOP count against hand counts, the peak's cache, the speed figures of a fit, and the
chapter head's training form (PatchConv2D) against the plain Conv2D it stands for."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from facetl.models import speed
from facetl.models.heads import PatchConv2D, chapter_head, plain_convs
from facetl.models.linear_head import CountedLogistic, fit_linear_head, search_flops
from facetl.models.speed import SpeedMeter, forward_flops, training_flops
from facetl.models.training import fit

# The chapter head on MobileNetV2's 7x7x1280 map, counted by hand (multiply-add = 2 FLOPs):
CONV = 2 * 5 * 5 * (3 * 3 * 1280) * 512  # 3x3 conv, 5x5 output positions
CONV_USED = 2 * 4 * 4 * (3 * 3 * 1280) * 512  # the 4x4 of them the 2x2 pool reads
DENSE = 2 * (2 * 2 * 512) * 512  # flatten of the pooled 2x2x512 -> 512
OUT = 2 * 512 * 1


def test_chapter_head_forward_and_training_flops_match_a_hand_count():
    head = chapter_head((7, 7, 1280), 1, 1, "sigmoid", 1.0)
    assert forward_flops(head) == CONV + DENSE + OUT
    # the conv's input is the data: forward + weight gradient; the Dense layers also pass a
    # gradient to their input
    assert training_flops(head) == 2 * CONV + 3 * (DENSE + OUT)


def test_the_training_form_counts_only_the_positions_it_computes():
    head = chapter_head((7, 7, 1280), 1, 1, "sigmoid", 1.0, patches=True)
    assert training_flops(head) == 2 * CONV_USED + 3 * (DENSE + OUT)
    assert forward_flops(plain_convs(head)) == CONV + DENSE + OUT


def test_frozen_layers_below_the_first_trainable_one_need_no_backward_pass():
    inputs = keras.Input((8, 8, 3))
    conv = layers.Conv2D(4, 3, name="frozen")
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(conv(inputs))
    x = layers.SeparableConv2D(5, 3, name="separable")(x)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    conv.trainable = False
    frozen = 2 * 6 * 6 * 3 * 3 * 3 * 4
    depthwise = 2 * 4 * 4 * 3 * 3 * 4 * 2
    separable = 2 * 2 * 2 * (3 * 3 * 8 + 8 * 5)
    dense = 2 * (2 * 2 * 5) * 2
    assert forward_flops(model) == frozen + depthwise + separable + dense
    # the depthwise layer is the first that trains: no input gradient there
    assert training_flops(model) == frozen + 2 * depthwise + 3 * (separable + dense)


def test_the_peak_is_measured_once_per_machine_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    measured = iter([2e9, 1e9, 3e9])
    monkeypatch.setattr(speed, "measure_peak", lambda precision: next(measured))
    assert speed.peak_flops("float32") == 2e9
    assert speed.peak_flops("float32") == 2e9  # cached: not measured again
    assert speed.peak_flops("float32", refresh=True) == 2e9  # a lower measurement is not kept
    assert speed.peak_flops("float32", refresh=True) == 3e9
    cached = json.loads((tmp_path / "facetl" / "peak_flops.json").read_text())
    assert [key.split(" | ")[-1] for key in cached] == ["float32"]
    assert speed.machine() in next(iter(cached))


def test_a_fit_reports_flops_per_second_and_share_of_peak(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(speed, "measure_peak", lambda precision: 1e12)
    rng = np.random.default_rng(0)
    features = rng.random((40, 5, 5, 8), dtype="float32")
    labels = (rng.random(40) > 0.5).astype("float32")
    head = chapter_head((5, 5, 8), 1, 1, "sigmoid", 1.0, patches=True)
    meter = SpeedMeter()
    fit(head, features, labels, np.arange(32), np.arange(32, 40),
        {"learning_rate": 1e-3, "batch_size": 8, "epochs": 2, "loss": "binary_crossentropy"},
        seed=0, live_dir=None, speed=meter)
    figures = meter.figures()
    assert figures["epochs"] == 2 and figures["precision"] == "float32"
    seconds = sum(meter.epoch_seconds)
    work = 2 * (32 * training_flops(head) + 8 * forward_flops(head))
    assert figures["gflop_per_s"] == pytest.approx(work / seconds / 1e9, rel=1e-2, abs=1e-2)
    assert figures["share_of_peak"] == pytest.approx(work / seconds / 1e12, rel=1e-2, abs=1e-4)


@pytest.mark.parametrize("shape", [(7, 7, 16), (6, 9, 16), (2, 2, 16)])
def test_the_training_form_computes_what_the_chapter_head_computes(shape):
    """Same seed, same weights; outputs and the weights after two gradient steps agree to float
    rounding (shapes: an odd map the pool crops, an uneven one, a tiny one padded `same`).
    Plain SGD: Adam divides by the gradient's size, which blows a near-zero gradient's
    rounding up to a full step."""
    rng = np.random.default_rng(1)
    x = rng.random((12, *shape), dtype="float32")
    y = (rng.random((12, 1)) > 0.5).astype("float32")

    def trained(patches: bool) -> keras.Model:
        keras.utils.set_random_seed(3)
        head = chapter_head(shape, 1, 1, "sigmoid", 1.0, dropout=0.0, patches=patches)
        head.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
        assert head.predict(x, verbose=0).shape == (12, 1)
        head.fit(x, y, batch_size=12, epochs=2, verbose=0, shuffle=False)
        return head

    plain, patched = trained(False), trained(True)
    assert any(isinstance(layer, PatchConv2D) for layer in patched.layers)
    for a, b in zip(plain.get_weights(), patched.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    saved = plain_convs(patched)
    assert not any(isinstance(layer, PatchConv2D) for layer in saved.layers)
    assert [type(layer) for layer in saved.layers] == [type(layer) for layer in plain.layers]
    np.testing.assert_allclose(saved.predict(x, verbose=0), patched.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_the_linear_head_counts_every_fit_of_its_search(tmp_path, monkeypatch):
    """3 values of C x 3 folds, then the refit on every row: 10 fits, each at least one
    loss-and-gradient pass (4 FLOPs per value) per L-BFGS iteration."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(speed, "measure_peak", lambda precision: 1e12)
    rng = np.random.default_rng(0)
    labels = np.arange(90) % 2
    features = rng.normal(size=(90, 2, 2, 8)).astype("float32")
    features[..., 2] += np.where(labels, 2.0, -2.0).reshape(-1, 1, 1)
    fitted = fit_linear_head(features, labels, np.arange(90), None,
                             {"c_grid": [0.01, 1.0, 100.0], "folds": 3}, seed=0)
    assert fitted.speed["fits"] == 10 and fitted.speed["precision"] == "float64"
    rows = [fit[1] for fit in CountedLogistic.fits]
    assert sorted(rows) == [60] * 9 + [90] and {fit[2] for fit in CountedLogistic.fits} == {8}
    assert search_flops([(7, 60, 8)]) == 4 * 7 * 60 * 8
    assert fitted.speed["gflop_per_s"] > 0
