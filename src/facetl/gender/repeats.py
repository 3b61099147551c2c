"""Repeated evaluation: the head retrained on K different grouped splits of the same features.

One split of a few hundred photos swings by a couple of points between seeds; K splits give a
mean and a spread. The cached features are reused, so only the head trains. Split 0 is the
pipeline's own (its accuracy comes from `metrics/<task>.json`); split k uses seed + k.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_json
from facetl.core.errors import FacetlError
from facetl.core.metrics import accuracy_by_group, pooled_by_group
from facetl.core.params import load_params, lookup
from facetl.data.splits import holdout_mask, load_split, person_groups
from facetl.gender.head import fit_classifier_head

TASK = "gender"


def repeated_test_masks(index: pd.DataFrame, fraction: float, seed: int,
                        repeats: int) -> list[np.ndarray]:
    """Test masks for splits 1..K-1 (seeds seed+1...), grouped by person when known."""
    labels, groups = index["label_index"].to_numpy(), person_groups(index)
    return [holdout_mask(labels, groups, fraction, seed + k) for k in range(1, repeats)]


def main() -> None:
    params = load_params()
    repeats, seed = lookup(params, "repeats.splits"), lookup(params, "seed")
    if not isinstance(repeats, int) or repeats < 1:
        raise FacetlError(f"repeats.splits must be a whole number >= 1, got {repeats!r}")
    name = lookup(params, "backbone")
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, _, _ = load_split(TASK)
    split_0 = json.loads(paths.metrics_path(TASK).read_text())
    values, by_face = [split_0["accuracy"]], [split_0.get("by_face", {})]
    masks = repeated_test_masks(index, lookup(params, f"prepare.{TASK}.test_size"), seed, repeats)
    for k, test_mask in enumerate(masks, start=1):
        train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
        head = fit_classifier_head(name, features, index, train, params, seed + k)
        p = head.predict(np.asarray(features[test], dtype="float32"), verbose=0)[:, 0]
        correct = (p >= 0.5) == index["label_index"].to_numpy()[test]
        values.append(float(correct.mean()))
        if "face" in index:
            by_face.append(accuracy_by_group(correct, index["face"].to_numpy()[test]))
        print(f"repeat {k}/{repeats - 1}: accuracy {values[-1]:.4f} on {len(test)} photos")
    write_json(paths.metrics_path(f"{TASK}_repeats"), {
        "repeats": repeats, "accuracy_mean": float(np.mean(values)),
        "accuracy_std": float(np.std(values, ddof=1)) if repeats > 1 else 0.0,
        "accuracy_values": values, "seeds": [seed + k for k in range(repeats)],
        # per face front-end group, over every split's test photos
        "by_face_pooled": pooled_by_group(by_face)})
