"""Repeated evaluation: the head retrained on K different grouped splits of the same features.

One split of a few hundred photos swings by a couple of points between seeds; K splits give a
mean and a spread. The cached features are reused, so only the head trains. Every split scores
the same kind of model, a frozen head: split 0 is the pipeline's own head
(`models/gender_head/`, from train_gender), split k a head trained with seed + k. With
fine-tuning on, the final model is not among them (its figure is `metrics/gender.json`):
fine-tuning K times would cost K fine-tuning runs, so the metrics say which model they score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_json
from facetl.core.errors import FacetlError
from facetl.core.metrics import accuracy_by_group, pooled_by_group
from facetl.core.params import load_params, lookup
from facetl.data.splits import holdout_mask, load_split, person_groups
from facetl.gender.head import fit_classifier_head
from facetl.models.backbones import load_model

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
    index, _, split_0_test = load_split(TASK)
    heads = [load_model(paths.model_dir(f"{TASK}_head") / "head.keras")]
    tests = [split_0_test]
    masks = repeated_test_masks(index, lookup(params, f"prepare.{TASK}.test_size"), seed, repeats)
    values, by_face = [], []
    for k in range(repeats):
        if k:
            train, test = np.flatnonzero(~masks[k - 1]), np.flatnonzero(masks[k - 1])
            heads.append(fit_classifier_head(name, features, index, train, params, seed + k))
            tests.append(test)
        test = np.sort(tests[k])
        p = heads[k].predict(np.asarray(features[test], dtype="float32"), verbose=0)[:, 0]
        correct = (p >= 0.5) == index["label_index"].to_numpy()[test]
        values.append(float(correct.mean()))
        if "face" in index:
            by_face.append(accuracy_by_group(correct, index["face"].to_numpy()[test]))
        print(f"split {k}: accuracy {values[-1]:.4f} on {len(test)} photos")
    write_json(paths.metrics_path(f"{TASK}_repeats"), {
        "model": f"frozen {lookup(params, 'head.type')} head on cached {name} features, "
                 "every split (the fine-tuned model, if any, is not among them)",
        "backbone": name, "head": lookup(params, "head.type"),
        "repeats": repeats, "accuracy_mean": float(np.mean(values)),
        "accuracy_std": float(np.std(values, ddof=1)) if repeats > 1 else 0.0,
        "accuracy_values": values, "seeds": [seed + k for k in range(repeats)],
        # per face front-end group, over every split's test photos
        "by_face_pooled": pooled_by_group(by_face)})
