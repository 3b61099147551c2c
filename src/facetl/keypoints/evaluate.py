"""Stage evaluate_keypoints: the keypoint model on people never seen in training: NME by
outer-eye-corner distance, pixel error, failure rate, per region, the cumulative error curve
against the mean-shape baseline and dlib's own 68-point predictor (a reference row), and a
gallery of best, median and worst faces.

`chapter`: the head on the cached features of the whole test frames. `finetune`: the whole
model on the original test photos as `facetl predict` runs it (detector or fallback box,
passes, flip averaging), never the true landmarks; plus what each inference choice adds
(passes, flip averaging, detector, and the crop from the true landmarks as the ceiling).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_csv, write_json
from facetl.core.params import load_params, lookup
from facetl.data.images import read_image
from facetl.data.splits import load_split
from facetl.keypoints import losses  # noqa: F401  registers WingLoss: saved models load
from facetl.keypoints.config import backbone_name, recipe
from facetl.keypoints.crops import (
    DetectorCalibration,
    fit_prior,
    from_crop,
    landmark_square,
    to_crop,
)
from facetl.keypoints.layout import POINTS
from facetl.keypoints.locate import detect_all, keras_predict, locate_with_meta, predict_crops
from facetl.keypoints.metrics import ced, keypoint_report, nme_per_image, point_errors
from facetl.keypoints.plots import ced_plot, keypoint_gallery
from facetl.keypoints.prepare import (
    crop_boxes,
    crop_targets,
    image_sizes,
    normalised_targets,
    pixel_points,
)
from facetl.keypoints.reference import SOURCE, reference_points
from facetl.models.backbones import load_model
from facetl.models.saving import load_task_model

TASK = "keypoints"
CED_THRESHOLDS = np.round(np.arange(0, 0.5001, 0.005), 4)
ABLATION_PASSES = 3  # evaluation also reports passes 1..3, with and without flip averaging


def mean_shape(index: pd.DataFrame, train: np.ndarray) -> np.ndarray:
    """(68, 2) average normalised shape of the real (unmirrored) training photos."""
    real = train[~index["mirrored"].to_numpy(dtype=bool)[train]]
    return normalised_targets(index.iloc[real]).reshape(-1, POINTS, 2).mean(axis=0)


def original_images(index: pd.DataFrame, rows: np.ndarray) -> list[np.ndarray]:
    return [read_image(paths.raw_dir(TASK) / index["file"].iat[i]) for i in rows]


def reference_prior(index: pd.DataFrame, train: np.ndarray) -> dict:
    """The fallback box of the training frames (real photos), for the dlib reference where its
    detector finds no face: the same for both recipes, so `dlib_nme` is too."""
    real = train[~index["mirrored"].to_numpy(dtype=bool)[train]]
    return fit_prior(landmark_square(pixel_points(index.iloc[real])),
                     index[["width", "height"]].to_numpy()[real])


def write_results(name: str, label: str, index: pd.DataFrame, train: np.ndarray,
                  test: np.ndarray, predicted: np.ndarray, reference: np.ndarray,
                  detections: list, extra: dict, columns: dict, gallery: tuple) -> dict:
    """Metrics, per-image CSV, CED (model, mean shape, dlib) and gallery; returns the report."""
    out = paths.plots_dir(TASK)
    tested = index.iloc[test]
    sizes, true = image_sizes(tested), pixel_points(tested)
    baseline = mean_shape(index, train)[None] * sizes
    report, base = keypoint_report(predicted, true), keypoint_report(baseline, true)
    dlib = keypoint_report(reference, true)
    found = np.array([d is not None for d in detections], dtype=bool)
    nme, baseline_nme = nme_per_image(predicted, true), nme_per_image(baseline, true)
    dlib_nme = nme_per_image(reference, true)
    metrics = {"backbone": name, "recipe": label} | report | {
        "misses": int(np.isnan(predicted).any(axis=(1, 2)).sum()),
        "baseline_nme": base["nme"], "baseline_pixel_error": base["pixel_error"],
        "baseline_failure_rate": base["failure_rate"],
        "dlib_nme": dlib["nme"], "dlib_failure_rate": dlib["failure_rate"],
        "dlib_pixel_error": dlib["pixel_error"],
        "dlib_reference": {"source": SOURCE, "detected": int(found.sum()),
                           "nme_detected": (float(dlib_nme[found].mean()) if found.any()
                                            else None),
                           "nme_regions": dlib["nme_regions"]}} | extra
    write_json(paths.metrics_path(TASK), metrics)
    write_csv(out / "predictions.csv", tested[["file", "source", "group", "width", "height"]]
              .assign(nme=nme.round(5), baseline_nme=baseline_nme.round(5),
                      dlib_nme=dlib_nme.round(5),
                      pixel_error=point_errors(predicted, true).mean(axis=1).round(3),
                      **columns))
    curves = {"model": ced(nme, CED_THRESHOLDS), "baseline": ced(baseline_nme, CED_THRESHOLDS),
              "dlib": ced(dlib_nme, CED_THRESHOLDS)}
    write_csv(out / "ced.csv", pd.DataFrame({"nme": CED_THRESHOLDS} | curves).round(5))
    ced_plot(CED_THRESHOLDS, {f"{label}: {name} (NME {report['nme']:.1%})": curves["model"],
                              f"mean shape (NME {base['nme']:.1%})": curves["baseline"],
                              f"dlib 68-point reference (NME {dlib['nme']:.1%})": curves["dlib"]},
             out / "ced.png")
    images, true_shown, predicted_shown = gallery
    keypoint_gallery(images, test, true_shown, predicted_shown, nme,
                     max(1, lookup(load_params(), "evaluate.gallery_size") // 3),
                     out / "gallery.png")
    print(f"evaluate {TASK} ({label}): NME {report['nme']:.2%} (mean shape {base['nme']:.2%}, "
          f"dlib reference {dlib['nme']:.2%}), {report['pixel_error']:.2f} px, failures "
          f"{report['failure_rate']:.1%} on {report['n_test']} test images")
    return metrics


def evaluate_chapter(params: dict) -> None:
    name = backbone_name(params)
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, train, test = load_split(TASK)
    head = load_model(paths.model_dir(TASK) / "head.keras")
    meta = json.loads((paths.model_dir(TASK) / "model.json").read_text())
    predicted_norm = head.predict(np.asarray(features[test], dtype="float32"), verbose=0)
    predicted_norm = predicted_norm.reshape(-1, POINTS, 2)
    tested = index.iloc[test]
    sizes, true = image_sizes(tested), pixel_points(tested)
    photos = original_images(index, test)
    detections = detect_all(photos, "dlib", int(lookup(params, "keypoints.inference.upsample")))
    reference = reference_points(photos, detections, DetectorCalibration(),
                                 reference_prior(index, train))
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    write_results(name, "chapter", index, train, test, predicted_norm * sizes, reference,
                  detections, {
                      "test_mae_normalised": float(np.abs(predicted_norm - true / sizes).mean()),
                      "val_mae_normalised": meta["val_mae_normalised"]},
                  {"box": "frame"}, (images, true / sizes, predicted_norm))


def nme_of(points: np.ndarray, true: np.ndarray) -> float:
    return round(float(nme_per_image(points, true).mean()), 5)


def evaluate_finetune(params: dict) -> None:
    name = backbone_name(params)
    index, train, test = load_split(TASK)
    model, meta = load_task_model(TASK)
    size = meta["input_size"]
    tested = index.iloc[test]
    true = pixel_points(tested)
    photos = original_images(index, test)
    detections = detect_all(photos, meta["detector"], meta["upsample"])
    reference = reference_points(photos, detections if meta["detector"] == "dlib" else
                                 detect_all(photos, "dlib", meta["upsample"]),
                                 DetectorCalibration(), reference_prior(index, train))

    # Inference as configured, and each choice switched (all from the same model).
    passes = max(ABLATION_PASSES, meta["passes"])
    runs = {tta: locate_with_meta(model, meta, photos, detections, passes, tta)
            for tta in (False, True)}
    chosen = runs[meta["flip_tta"]]
    predicted, boxes = chosen.passes[meta["passes"] - 1], chosen.pass_boxes[meta["passes"] - 1]
    ablation = {f"passes={p + 1},flip_tta={str(tta).lower()}": nme_of(run.passes[p], true)
                for tta, run in runs.items() for p in range(passes)}
    if meta["detector"] != "none":
        no_detector = locate_with_meta(model, meta, photos, [None] * len(photos))
        ablation["no_detector (prior box, as configured)"] = nme_of(no_detector.points, true)
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    true_boxes = crop_boxes(tested)
    oracle = predict_crops(keras_predict(model), np.asarray(images[test]), meta["flip_tta"])
    ablation["crop from the true landmarks (ceiling)"] = nme_of(
        from_crop(oracle, true_boxes, size), true)

    sources = np.array(chosen.sources)
    write_results(name, "finetune", index, train, test, predicted, reference, detections, {
        "boxes_from_detector": int((sources == "dlib").sum()),
        "boxes_from_prior": int((sources == "prior").sum()),
        "passes": meta["passes"], "flip_tta": meta["flip_tta"], "head": meta["head"],
        "loss": meta["loss"], "val_mae_crop": meta["val_mae_crop"],
        "inference_ablation": ablation},
        {"box": sources, "crop_x0": boxes[:, 0].round(2), "crop_y0": boxes[:, 1].round(2),
         "crop_side": boxes[:, 2].round(2)},
        (images, crop_targets(tested, size).reshape(-1, POINTS, 2),
         to_crop(predicted, true_boxes, size) / size))
    for key, value in ablation.items():
        print(f"  {key}: NME {value:.2%}")


def main() -> None:
    params = load_params()
    if recipe(params) == "chapter":
        evaluate_chapter(params)
    else:
        evaluate_finetune(params)

