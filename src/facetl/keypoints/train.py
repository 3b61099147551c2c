"""Stage train_keypoints: the chapter's recipe, a head regressing 68 points (x / width,
y / height) from the active backbone's cached features of the whole frame."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from facetl.core import paths
from facetl.core.errors import FacetlError
from facetl.core.params import load_params, lookup
from facetl.core.plots import training_curves
from facetl.data.splits import carve_validation, load_split
from facetl.keypoints.losses import keypoint_loss
from facetl.keypoints.prepare import normalised_targets
from facetl.keypoints.schema import POINTS
from facetl.models.backbones import get_spec
from facetl.models.export import save_head_model
from facetl.models.heads import chapter_head
from facetl.models.training import feature_max, fit

TASK = "keypoints"
ACTIVATIONS = ("sigmoid", "linear")


def output_activation(cfg: dict[str, Any]) -> str:
    activation = str(cfg["activation"]).lower()
    if activation not in ACTIVATIONS:
        raise FacetlError(f"train.keypoints.activation must be one of {ACTIVATIONS}, got "
                          f"{cfg['activation']!r}")
    return activation


def main() -> None:
    params = load_params()
    name = lookup(params, "backbone")
    cfg = lookup(params, f"train.{TASK}")
    seed = lookup(params, "seed")
    keras.utils.set_random_seed(seed)
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, train, _ = load_split(TASK)
    # Grouped by person, so a person's mirrored frames go wherever the person goes; the
    # validation figure is then taken on real (unmirrored) photos only.
    fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
    val_rows = val_rows[~index["mirrored"].to_numpy(dtype=bool)[val_rows]]

    head = chapter_head(features.shape[1:], get_spec(name).head_blocks, 2 * POINTS,
                        output_activation(cfg), feature_max(features, fit_rows), cfg["dropout"])
    live_dir = paths.plots_dir(TASK) / "training"
    history = fit(head, features, normalised_targets(index), fit_rows, val_rows,
                  cfg | {"loss": keypoint_loss(cfg), "metrics": ["mae"]}, seed, live_dir)
    training_curves(live_dir, paths.plots_dir(TASK) / "training.png")

    save_head_model(TASK, name, head, {
        "points": POINTS, "units": "x / width and y / height of the input image",
        "val_mae_normalised": round(float(history.history["val_mae"][-1]), 6)})
