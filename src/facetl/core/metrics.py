"""Classification metrics with their uncertainty: on 175 photos one photo is 0.57 points."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score, roc_curve

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; sane at 0%, 100% and small n."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


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
    }


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
