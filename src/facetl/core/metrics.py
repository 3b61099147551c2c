"""Classification metrics with their uncertainty: on 175 photos one photo is 0.57 points."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score, roc_curve

Z95 = 1.959963984540054
CALIBRATION_BINS = 10  # ECE's bins of the predicted class's probability, over [0.5, 1]
COVERAGES = (1.0, 0.95, 0.9)  # shares of photos answered, surest first (risk-coverage)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; sane at 0%, 100% and small n."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# Two classifiers on the same test photos: their accuracies are not independent samples. Only
# the photos on which they disagree carry information, which is what McNemar's test uses.


def discordant_counts(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int]:
    """(photos only A got right, photos only B got right)."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    return int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs at 1/2."""
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)


def binary_report(labels: np.ndarray, p_positive: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy (with 95% Wilson interval), ROC AUC, F1 and the confusion matrix."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(p_positive) >= threshold).astype(int)
    correct = int((predicted == labels).sum())
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": correct / len(labels),
        "accuracy_ci95": list(wilson_interval(correct, len(labels))),
        "auc": float(roc_auc_score(labels, p_positive)) if both_classes else None,
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "confusion": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "n_test": len(labels),
    } | calibration_report(labels, p_positive)


def confidence(p_positive: np.ndarray) -> np.ndarray:
    """The probability of the class predicted: what a user reads as "how sure"."""
    p_positive = np.asarray(p_positive, dtype="float64")
    return np.maximum(p_positive, 1 - p_positive)


def reliability(labels: np.ndarray, p_positive: np.ndarray, bins: int = CALIBRATION_BINS
                ) -> list[dict]:
    """Per bin of confidence (equal widths over [0.5, 1]): photos, mean confidence, accuracy."""
    labels, p_positive = np.asarray(labels).astype(int), np.asarray(p_positive)
    sure = confidence(p_positive)
    correct = (p_positive >= 0.5).astype(int) == labels
    which = np.minimum(((sure - 0.5) * 2 * bins).astype(int), bins - 1)
    return [{"low": 0.5 + k / (2 * bins), "high": 0.5 + (k + 1) / (2 * bins),
             "n": int((which == k).sum()),
             "confidence": float(sure[which == k].mean()) if (which == k).any() else None,
             "accuracy": float(correct[which == k].mean()) if (which == k).any() else None}
            for k in range(bins)]


def expected_calibration_error(labels: np.ndarray, p_positive: np.ndarray,
                               bins: int = CALIBRATION_BINS) -> float:
    """Mean |accuracy - confidence| over the confidence bins, weighted by their photos."""
    rows = reliability(labels, p_positive, bins)
    total = sum(row["n"] for row in rows)
    return sum(row["n"] * abs(row["accuracy"] - row["confidence"]) for row in rows
               if row["n"]) / total


def accuracy_at_coverage(labels: np.ndarray, p_positive: np.ndarray,
                         coverage: float) -> float:
    """Accuracy on the `coverage` share of photos the model is surest of (the rest abstain)."""
    labels, p_positive = np.asarray(labels).astype(int), np.asarray(p_positive)
    keep = max(1, round(coverage * len(labels)))
    surest = np.argsort(-confidence(p_positive), kind="stable")[:keep]
    return float(((p_positive[surest] >= 0.5).astype(int) == labels[surest]).mean())


def risk_coverage(labels: np.ndarray, p_positive: np.ndarray, points: int = 50
                  ) -> dict[str, np.ndarray]:
    """Accuracy as the model answers fewer photos, surest first: where to set
    `--min-confidence` (the confidence it must reach) for the accuracy a user needs."""
    labels, p_positive = np.asarray(labels).astype(int), np.asarray(p_positive)
    order = np.argsort(-confidence(p_positive), kind="stable")
    hits = np.cumsum((p_positive[order] >= 0.5).astype(int) == labels[order])
    kept = np.unique(np.linspace(1, len(labels), points).round().astype(int))
    return {"coverage": kept / len(labels), "accuracy": hits[kept - 1] / kept,
            "min_confidence": confidence(p_positive)[order][kept - 1]}


def calibration_by_group(labels: np.ndarray, p_positive: np.ndarray, groups: np.ndarray
                         ) -> dict[str, dict]:
    """ECE and mean confidence per group (e.g. face front-end status): a group whose photos
    the model is as sure of as any other, but right on fewer, shows here."""
    labels, p_positive = np.asarray(labels).astype(int), np.asarray(p_positive)
    groups = np.asarray(groups).astype(str)
    return {group: {"ece": expected_calibration_error(labels[groups == group],
                                                      p_positive[groups == group]),
                    "mean_confidence": float(confidence(p_positive[groups == group]).mean())}
            for group in sorted(set(groups))}


def by_group_report(labels: np.ndarray, p_positive: np.ndarray, groups: np.ndarray
                    ) -> dict[str, dict]:
    """Per group: its share, accuracy (Wilson interval) and calibration."""
    correct = (np.asarray(p_positive) >= 0.5).astype(int) == np.asarray(labels).astype(int)
    calibration = calibration_by_group(labels, p_positive, groups)
    return {group: row | calibration[group]
            for group, row in accuracy_by_group(correct, groups).items()}


def calibration_report(labels: np.ndarray, p_positive: np.ndarray, resamples: int = 1000,
                       seed: int = 0) -> dict:
    """ECE (with a bootstrap 95% interval: a few hundred photos leave it wide), the Brier
    score, and accuracy at 100/95/90% coverage: what a user needs to trust a probability."""
    labels, p_positive = np.asarray(labels).astype(int), np.asarray(p_positive, dtype="float64")
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(labels), len(labels)) for _ in range(resamples)]
    spread = [expected_calibration_error(labels[d], p_positive[d]) for d in draws]
    return {"ece": expected_calibration_error(labels, p_positive),
            "ece_ci95": [float(np.quantile(spread, 0.025)), float(np.quantile(spread, 0.975))],
            "brier": float(np.mean((p_positive - labels) ** 2)),
            "accuracy_at_coverage": {f"{c:.2f}": accuracy_at_coverage(labels, p_positive, c)
                                     for c in COVERAGES}}


def accuracy_by_group(correct: np.ndarray, groups: np.ndarray) -> dict[str, dict]:
    """Share and accuracy (with its Wilson interval) per group, e.g. per face front-end status:
    where the overall figure hides a group that costs accuracy."""
    correct, groups = np.asarray(correct, dtype=bool), np.asarray(groups).astype(str)
    return {group: group_row(int(correct[groups == group].sum()), int((groups == group).sum()),
                             len(correct)) for group in sorted(set(groups))}


def pooled_by_group(reports: list[dict[str, dict]]) -> dict[str, dict]:
    """`accuracy_by_group` over several test splits, from each split's report: a group of 20
    photos per split gets an interval that can say something. A photo in the test part of
    several splits counts once for each."""
    hits, counts = Counter(), Counter()
    for report in reports:
        for group, row in report.items():
            hits[group] += round(row["accuracy"] * row["n"])
            counts[group] += row["n"]
    total = sum(counts.values())
    return {group: group_row(hits[group], counts[group], total) for group in sorted(counts)}


def group_row(hits: int, n: int, total: int) -> dict:
    return {"n": n, "share": round(n / total, 4), "accuracy": hits / n,
            "accuracy_ci95": list(wilson_interval(hits, n))}


def roc_points(labels: np.ndarray, p_positive: np.ndarray) -> dict[str, np.ndarray]:
    fpr, tpr, thresholds = roc_curve(labels, p_positive)
    return {"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)}
