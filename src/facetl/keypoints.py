"""The keypoint task's stage bodies: 68 facial points regressed from the shared features.

`pipeline.py` hands the keypoints task here for prepare, train and evaluate; download and
features are the shared ones. The chapter's recipe is the default: x / width and y / height
targets, the chapter's head with Dense(136, sigmoid), mean absolute error.
"""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import pandas as pd

from facetl import paths
from facetl.atomic import write_csv, write_json
from facetl.backbones import get_spec, load_model
from facetl.download import read_manifest
from facetl.errors import FacetlError
from facetl.flip import POINTS
from facetl.heads import chapter_head
from facetl.keypoint_losses import keypoint_loss
from facetl.keypoint_metrics import ced, keypoint_report, nme_per_image, point_errors
from facetl.keypoint_plots import ced_plot, keypoint_gallery
from facetl.keypoint_prepare import image_sizes, normalised_targets, pixel_points, prepare_keypoints
from facetl.params import lookup
from facetl.pipeline import carve_validation, load_split, save_models
from facetl.plots import training_curves
from facetl.training import feature_max, fit

TASK = "keypoints"
ACTIVATIONS = ("sigmoid", "linear")
CED_THRESHOLDS = np.round(np.arange(0, 0.5001, 0.005), 4)


def prepare_stage(params: dict[str, Any]) -> None:
    cfg = lookup(params, f"prepare.{TASK}")
    manifest = read_manifest(paths.raw_dir(TASK))
    index = prepare_keypoints(manifest, paths.raw_dir(TASK), paths.prepared_dir(TASK),
                              cfg["input_size"], cfg["test_size"], lookup(params, "seed"),
                              bool(cfg["flip"]))
    counts = index.groupby(["split", "mirrored"]).size().to_dict()
    print(f"prepare {TASK}: {index['group'].nunique()} people, images by (split, mirrored) "
          f"{counts}")


def output_activation(cfg: dict[str, Any]) -> str:
    activation = str(cfg["activation"]).lower()
    if activation not in ACTIVATIONS:
        raise FacetlError(f"train_keypoints.activation must be one of {ACTIVATIONS}, got "
                          f"{cfg['activation']!r}")
    return activation


def train_stage(params: dict[str, Any]) -> None:
    name = lookup(params, "backbone")
    cfg = lookup(params, f"train_{TASK}")
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
    save_models(TASK, name, head, {
        "points": POINTS, "units": "x / width and y / height of the input image",
        "val_mae_normalised": round(float(history.history["val_mae"][-1]), 6)})


def mean_shape(index: pd.DataFrame, train: np.ndarray) -> np.ndarray:
    """(68, 2) average normalised shape of the real (unmirrored) training photos."""
    real = train[~index["mirrored"].to_numpy(dtype=bool)[train]]
    return normalised_targets(index.iloc[real]).reshape(-1, POINTS, 2).mean(axis=0)


def evaluate_stage(params: dict[str, Any]) -> None:
    name = lookup(params, "backbone")
    out = paths.plots_dir(TASK)
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, train, test = load_split(TASK)
    head = load_model(paths.model_dir(TASK) / "head.keras")
    meta = json.loads((paths.model_dir(TASK) / "model.json").read_text())
    predicted_norm = head.predict(np.asarray(features[test], dtype="float32"), verbose=0)
    predicted_norm = predicted_norm.reshape(-1, POINTS, 2)
    tested = index.iloc[test]
    sizes, true = image_sizes(tested), pixel_points(tested)
    predicted = predicted_norm * sizes
    baseline = mean_shape(index, train)[None] * sizes
    report, base = keypoint_report(predicted, true), keypoint_report(baseline, true)
    write_json(paths.metrics_path(TASK), {"backbone": name} | report | {
        "baseline_nme": base["nme"], "baseline_pixel_error": base["pixel_error"],
        "baseline_failure_rate": base["failure_rate"],
        "test_mae_normalised": float(np.abs(predicted_norm - true / sizes).mean()),
        "val_mae_normalised": meta["val_mae_normalised"]})
    nme, baseline_nme = nme_per_image(predicted, true), nme_per_image(baseline, true)
    write_csv(out / "predictions.csv", tested[["file", "source", "group", "width", "height"]]
              .assign(nme=nme.round(5), baseline_nme=baseline_nme.round(5),
                      pixel_error=point_errors(predicted, true).mean(axis=1).round(3)))
    curves = {"model": ced(nme, CED_THRESHOLDS), "baseline": ced(baseline_nme, CED_THRESHOLDS)}
    write_csv(out / "ced.csv", pd.DataFrame({"nme": CED_THRESHOLDS} | curves).round(5))
    ced_plot(CED_THRESHOLDS, {f"{name} (NME {report['nme']:.1%})": curves["model"],
                              f"mean shape (NME {base['nme']:.1%})": curves["baseline"]},
             out / "ced.png")
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    keypoint_gallery(images, test, true / sizes, predicted_norm, nme,
                     max(1, lookup(params, "evaluate.gallery_size") // 3), out / "gallery.png")
    print(f"evaluate {TASK}: NME {report['nme']:.2%} (mean shape {base['nme']:.2%}), "
          f"{report['pixel_error']:.2f} px, failures {report['failure_rate']:.1%} "
          f"on {report['n_test']} test images")
