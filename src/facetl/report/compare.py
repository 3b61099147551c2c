"""Paired comparison of two classifiers on the same test photos.

Accuracies of two backbones on the same 175 photos are not independent samples: only the
photos on which they disagree carry information, which is what McNemar's test uses.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def discordant_counts(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int]:
    """(photos only A got right, photos only B got right)."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    return int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs at 1/2."""
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)
