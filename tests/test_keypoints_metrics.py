"""Keypoint metrics and losses against values worked out by hand."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from facetl.core.errors import FacetlError
from facetl.keypoints.losses import WingLoss, keypoint_loss
from facetl.keypoints.metrics import (
    REGIONS,
    ced,
    ced_auc,
    inter_ocular,
    keypoint_report,
    nme_per_image,
)


def faces() -> tuple[np.ndarray, np.ndarray]:
    """Three true point sets and predictions with known errors.

    1: eye corners 10 px apart, one jaw point off by a 3-4-5 triangle (error 5 px);
    2: eye corners 20 px apart, every point 2 px low (NME exactly 0.10: not a failure);
    3: eye corners 10 px apart, every point 3 px low (NME 0.30: a failure).
    """
    true = np.zeros((3, 68, 2))
    true[:, 45] = [[10, 0], [20, 0], [10, 0]]
    predicted = true.copy()
    predicted[0, 0] += [3, 4]
    predicted[1, :, 1] += 2
    predicted[2, :, 1] += 3
    return predicted, true


def test_inter_ocular_is_the_outer_eye_corner_distance():
    _, true = faces()
    true[0, 36] = [1, 1]
    true[0, 45] = [4, 5]
    assert inter_ocular(true).tolist() == [5.0, 20.0, 10.0]


def test_nme_per_image_and_per_region():
    predicted, true = faces()
    np.testing.assert_allclose(nme_per_image(predicted, true), [5 / 68 / 10, 0.1, 0.3])
    np.testing.assert_allclose(nme_per_image(predicted, true, REGIONS["jaw"]),
                               [5 / 17 / 10, 0.1, 0.3])
    np.testing.assert_allclose(nme_per_image(predicted, true, REGIONS["eyes"]), [0, 0.1, 0.3])


def test_report_headline_figures():
    predicted, true = faces()
    report = keypoint_report(predicted, true)
    assert report["nme"] == pytest.approx((5 / 680 + 0.1 + 0.3) / 3)
    assert report["pixel_error"] == pytest.approx((5 + 68 * 2 + 68 * 3) / (3 * 68))
    assert report["failure_rate"] == pytest.approx(1 / 3)  # 0.10 itself is not a failure
    assert report["n_test"] == 3
    assert report["nme_regions"]["jaw"] == pytest.approx((5 / 170 + 0.1 + 0.3) / 3)
    assert report["nme_regions"]["mouth"] == pytest.approx((0 + 0.1 + 0.3) / 3)
    assert set(report["nme_regions"]) == {"jaw", "brows", "nose", "eyes", "mouth"}


def test_regions_cover_the_68_points_once():
    covered = sorted(i for points in REGIONS.values() for i in points)
    assert covered == list(range(68))


def test_ced_counts_images_at_or_below_each_threshold():
    nme = np.array([5 / 680, 0.1, 0.3])
    np.testing.assert_allclose(ced(nme, np.array([0, 0.007, 0.0074, 0.1, 0.2, 0.3])),
                               [0, 0, 1 / 3, 2 / 3, 2 / 3, 1])


def test_ced_auc_is_the_normalised_area_under_the_curve():
    nme = np.array([0.02, 0.05, 0.2])
    # Each image adds (0.1 - NME) / 0.1 if under 0.1: (0.8 + 0.5 + 0) / 3.
    assert ced_auc(nme) == pytest.approx(1.3 / 3)
    thresholds = np.linspace(0, 0.1, 100_001)
    numeric = np.trapezoid(ced(nme, thresholds), thresholds) / 0.1
    assert ced_auc(nme) == pytest.approx(numeric, abs=1e-4)
    assert ced_auc(np.zeros(4)) == 1.0


def test_wing_loss_values_by_hand():
    loss = WingLoss(width=0.04, epsilon=0.008)
    y_true = np.zeros((1, 3), dtype="float32")
    small, large = 0.01, 0.1
    y_pred = np.array([[small, -large, 0.0]], dtype="float32")
    expected = (0.04 * math.log(1 + small / 0.008)
                + large - (0.04 - 0.04 * math.log(1 + 0.04 / 0.008))) / 3
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_wing_loss_is_continuous_at_its_width():
    loss = WingLoss(width=0.04, epsilon=0.008)
    below, above = (float(loss(np.zeros((1, 1), "float32"), np.full((1, 1), e, "float32")))
                    for e in (0.04 - 1e-6, 0.04 + 1e-6))
    assert below == pytest.approx(above, abs=1e-5)


def test_wing_loss_round_trips_through_its_config():
    restored = keras.losses.deserialize(keras.losses.serialize(WingLoss(0.05, 0.01)))
    assert isinstance(restored, WingLoss)
    assert (restored.width, restored.epsilon) == (0.05, 0.01)


@pytest.mark.parametrize(("name", "expected"), [("mae", "mean_absolute_error"),
                                                ("L1", "mean_absolute_error"),
                                                ("mse", "mean_squared_error")])
def test_loss_names(name, expected):
    assert keypoint_loss({"loss": name}) == expected


def test_wing_by_name_and_bad_names():
    wing = keypoint_loss({"loss": "wing", "wing_width": 0.03, "wing_epsilon": 0.005})
    assert isinstance(wing, WingLoss) and wing.width == 0.03
    with pytest.raises(FacetlError, match="train.keypoints.loss must be one of"):
        keypoint_loss({"loss": "huber"})
    with pytest.raises(FacetlError, match="wing_width"):
        keypoint_loss({"loss": "wing", "wing_width": 0, "wing_epsilon": 0.005})
