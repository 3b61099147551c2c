"""Stratified train/test splits, grouped by person when groups are known.

Grouping matters: the same person in train and test inflates accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

from facetl.core import paths
from facetl.core.errors import FacetlError


def person_groups(index: pd.DataFrame) -> np.ndarray | None:
    """The `group` column (who each photo shows) where the source named people; else None."""
    groups = index["group"].to_numpy()
    return groups if any(groups) else None


def holdout_mask(labels: np.ndarray, groups: np.ndarray | None, fraction: float,
                 seed: int) -> np.ndarray:
    """Boolean mask of the held-out rows (about `fraction` of them, every class present)."""
    if not 0 < fraction < 1:
        raise FacetlError(f"a split fraction must be between 0 and 1, got {fraction}")
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    if len(labels) < 4 or counts.min() < 2:
        raise FacetlError(
            f"too few images to split: {len(labels)} images, per class {counts.tolist()}; "
            "need at least 2 of each class"
        )
    mask = np.zeros(len(labels), dtype=bool)
    if groups is not None and len(set(groups)) > 1:
        n_splits = max(2, min(round(1 / fraction), len(set(groups))))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        candidates = [held for _, held in folds.split(np.zeros(len(labels)), labels, groups)]
        # With few groups a fold can miss a class; take the first fold that has them all.
        held = next((h for h in candidates if len(np.unique(labels[h])) == len(counts)), None)
        if held is None:
            raise FacetlError(
                f"cannot hold out {fraction:.0%} of {len(set(groups))} people with every class "
                "on both sides; add images of more people or raise the split fraction"
            )
    else:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, held = next(splitter.split(np.zeros(len(labels)), labels))
    mask[held] = True
    return mask


def load_split(task: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The prepared index of a task and its train and test row numbers."""
    index = pd.read_csv(paths.prepared_dir(task) / "index.csv", dtype={"group": str},
                        keep_default_na=False)
    train = np.flatnonzero(index["split"] == "train")
    test = np.flatnonzero(index["split"] == "test")
    return index, train, test


def carve_validation(index: pd.DataFrame, train: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation rows come from the train split only (the chapter validated on its test set).

    Stratified by class where the task has classes, grouped by person where people are known.
    """
    labels = (index["label_index"].to_numpy()[train] if "label_index" in index
              else np.zeros(len(train), dtype=int))
    held = holdout_mask(labels, person_groups(index.iloc[train]), fraction, seed)
    return train[~held], train[held]
