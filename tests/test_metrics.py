"""Metrics against values worked out independently of the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from facetl.core.metrics import (
    Z95,
    accuracy_at_coverage,
    accuracy_by_group,
    binary_report,
    calibration_report,
    expected_calibration_error,
    pooled_by_group,
    reliability,
    roc_points,
    wilson_interval,
)


def wilson_by_quadratic(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson bounds are the p where |p_hat - p| = z * sqrt(p (1 - p) / n): the roots of
    (n + z^2) p^2 - (2 successes + z^2) p + successes^2 / n = 0."""
    roots = np.roots([n + z * z, -(2 * successes + z * z), successes * successes / n])
    low, high = sorted(roots.real)
    return low, high


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (10, 10), (81, 100), (1, 2), (87, 175)])
def test_wilson_matches_the_quadratic_it_solves(successes, n):
    np.testing.assert_allclose(wilson_interval(successes, n), wilson_by_quadratic(successes, n),
                               atol=1e-9)


@pytest.mark.parametrize(("successes", "n", "expected"), [
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score interval).
    (81, 263, (0.2553, 0.3662)),
    (15, 148, (0.0624, 0.1605)),
    (0, 20, (0.0, 0.1611)),
    (1, 29, (0.0061, 0.1718)),
    # Closed forms at the edges: [0, z^2 / (n + z^2)] and [n / (n + z^2), 1].
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (81, 100, (0.7222, 0.8749)),
])
def test_wilson_matches_published_values(successes, n, expected):
    np.testing.assert_allclose(wilson_interval(successes, n), expected, atol=5e-5)


def test_wilson_without_data_is_the_whole_range():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_binary_report_on_a_hand_made_example():
    labels = np.array([0, 0, 0, 1, 1, 1])
    p_positive = np.array([0.1, 0.6, 0.4, 0.8, 0.3, 0.9])
    report = binary_report(labels, p_positive)
    # predicted 0 1 0 1 0 1: TN=2 FP=1 FN=1 TP=2
    assert report["confusion"] == [[2, 1], [1, 2]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["accuracy_ci95"] == pytest.approx(list(wilson_by_quadratic(4, 6)))
    assert report["f1"] == pytest.approx(2 / 3)  # precision 2/3, recall 2/3
    # Of the 9 (positive, negative) pairs, 7 have the positive scored higher.
    assert report["auc"] == pytest.approx(7 / 9)
    assert report["n_test"] == 6


def test_threshold_is_inclusive_and_one_class_has_no_auc():
    report = binary_report(np.array([1, 1]), np.array([0.5, 0.49]))
    assert report["confusion"] == [[0, 0], [1, 1]]
    assert report["auc"] is None


def test_roc_points_run_from_the_origin_to_the_corner():
    roc = roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    assert roc["threshold"].max() <= 1.0  # sklearn's first threshold is inf: capped for plots


def test_pooled_groups_add_the_splits_counts():
    first = accuracy_by_group([1, 1, 0, 1, 1], ["found", "found", "none", "none", "found"])
    second = accuracy_by_group([0, 1, 1], ["none", "found", "fallback"])
    pooled = pooled_by_group([first, second])
    assert {g: (row["n"], row["accuracy"]) for g, row in pooled.items()} == {
        "fallback": (1, 1.0), "found": (4, 1.0), "none": (3, 1 / 3)}
    assert pooled["none"]["share"] == pytest.approx(3 / 8)
    assert pooled["none"]["accuracy_ci95"] == pytest.approx(list(wilson_interval(1, 3)))
    assert pooled_by_group([first]) == first


# Five photos worked by hand: confidences 0.55, 0.65, 0.95, 0.95, 0.55; right, wrong, right,
# right, wrong. Bins of width 0.05 from 0.5: [0.55, 0.6) holds two (accuracy 0.5), [0.65, 0.7)
# one (accuracy 0), [0.95, 1] two (accuracy 1).
HAND_P = np.array([0.55, 0.65, 0.95, 0.05, 0.45])
HAND_Y = np.array([1, 0, 1, 0, 1])


def test_ece_on_a_hand_worked_example():
    # (2 * |0.5 - 0.55| + 1 * |0 - 0.65| + 2 * |1 - 0.95|) / 5
    assert expected_calibration_error(HAND_Y, HAND_P) == pytest.approx(0.17)
    rows = {round(row["low"], 2): row for row in reliability(HAND_Y, HAND_P) if row["n"]}
    assert {k: (r["n"], r["accuracy"]) for k, r in rows.items()} == {
        0.55: (2, 0.5), 0.65: (1, 0.0), 0.95: (2, 1.0)}


def test_brier_and_coverage_on_the_hand_worked_example():
    report = calibration_report(HAND_Y, HAND_P, resamples=10)
    assert report["brier"] == pytest.approx((0.45**2 + 0.65**2 + 0.05**2 * 2 + 0.55**2) / 5)
    # the surest three: 0.95 and 0.05 (right), 0.65 (wrong)
    assert accuracy_at_coverage(HAND_Y, HAND_P, 0.6) == pytest.approx(2 / 3)
    assert report["accuracy_at_coverage"]["1.00"] == pytest.approx(3 / 5)


def test_ece_is_small_when_labels_follow_the_probabilities_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    labels = (rng.uniform(0, 1, p.size) < p).astype(int)  # p is the truth: calibrated
    assert expected_calibration_error(labels, p) < 0.01
    overconfident = np.where(p >= 0.5, 0.999, 0.001)
    # confidence 0.999 everywhere, accuracy E[max(p, 1-p)] = 0.75 over uniform p
    assert expected_calibration_error(labels, overconfident) == pytest.approx(0.249, abs=0.01)
    report = calibration_report(labels, p, resamples=200)
    low, high = report["ece_ci95"]
    assert low <= report["ece"] <= high and high - low < 0.02
