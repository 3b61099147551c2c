"""Stage evaluate_keypoints: the keypoint model on people never seen in training: NME by
outer-eye-corner distance, pixel error, failure rate, per region, the cumulative error curve
against the mean-shape baseline, and a gallery of best, median and worst faces."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_csv, write_json
from facetl.core.params import load_params, lookup
from facetl.data.splits import load_split
from facetl.keypoints.metrics import ced, keypoint_report, nme_per_image, point_errors
from facetl.keypoints.plots import ced_plot, keypoint_gallery
from facetl.keypoints.prepare import image_sizes, normalised_targets, pixel_points
from facetl.keypoints.schema import POINTS
from facetl.models.backbones import load_model

TASK = "keypoints"
CED_THRESHOLDS = np.round(np.arange(0, 0.5001, 0.005), 4)


def mean_shape(index: pd.DataFrame, train: np.ndarray) -> np.ndarray:
    """(68, 2) average normalised shape of the real (unmirrored) training photos."""
    real = train[~index["mirrored"].to_numpy(dtype=bool)[train]]
    return normalised_targets(index.iloc[real]).reshape(-1, POINTS, 2).mean(axis=0)


def main() -> None:
    params = load_params()
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
