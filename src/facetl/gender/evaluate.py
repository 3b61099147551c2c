"""Stage evaluate_gender: the final model (`models/gender/model.keras`, fine-tuned or not) on
the test photos (never seen in training), the same file `facetl predict` uses:
accuracy with its Wilson interval, calibration (ECE, Brier, reliability, risk-coverage), ROC,
confusion matrix, per-photo predictions, and the misclassified photos to look at."""

from __future__ import annotations

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_csv, write_json
from facetl.core.metrics import binary_report, by_group_report, roc_points
from facetl.core.params import load_params, lookup
from facetl.core.plots import calibration_plots, confusion_plot, image_grid, roc_plot
from facetl.data.splits import load_split
from facetl.gender.no_face import calibrated_by_face
from facetl.models.saving import load_task_model
from facetl.models.training import FeatureBatches

TASK = "gender"
BATCH = 32


def main() -> None:
    params = load_params()
    out = paths.plots_dir(TASK)
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    index, _, test = load_split(TASK)
    model, meta = load_task_model(TASK)
    classes = meta["classes"]

    labels = index["label_index"].to_numpy()
    batches = FeatureBatches(images, labels, test, BATCH)  # streamed: memory flat in N
    p_positive = model.predict(batches, verbose=0)[:, 0]
    if "face" in index:  # the no-face group's own calibration, as `facetl predict` applies it
        p_positive = calibrated_by_face(p_positive, index["face"].to_numpy()[test],
                                        meta.get("no_face"))
    labels = labels[test]
    report = binary_report(labels, p_positive)
    by_face = (by_group_report(labels, p_positive, index["face"].to_numpy()[test])
               if "face" in index else {})
    write_json(paths.metrics_path(TASK), {"backbone": meta["backbone"],
                                          "finetuned": meta["finetuned"]} | report
               | {"by_face": by_face})

    roc = roc_points(labels, p_positive)
    write_csv(out / "roc.csv", pd.DataFrame(roc).round(5))
    predicted = (p_positive >= 0.5).astype(int)
    predictions = index.iloc[test][["file", "source", "label", "group"]].assign(
        p_positive=p_positive.round(5), predicted=np.array(classes)[predicted],
        correct=predicted == labels)
    write_csv(out / "predictions.csv", predictions)
    write_csv(out / "confusion.csv", predictions[["label", "predicted"]].rename(
        columns={"label": "actual"}))
    roc_plot(roc["fpr"], roc["tpr"], report["auc"], out / "roc.png")
    calibration_plots(labels, p_positive, out)
    confusion_plot(report["confusion"], classes, out / "confusion.png")
    misclassified_gallery(test, predictions, classes, lookup(params, "evaluate.gallery_size"))
    low, high = report["accuracy_ci95"]
    print(f"evaluate {TASK}: accuracy {report['accuracy']:.4f} CI95 [{low:.4f}, {high:.4f}] "
          f"AUC {report['auc']} ECE {report['ece']:.4f} on {report['n_test']} test images")


def misclassified_gallery(test: np.ndarray, predictions: pd.DataFrame, classes: list[str],
                          size: int) -> None:
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    wrong = np.flatnonzero(~predictions["correct"].to_numpy())[:size]
    titles = [f"true {row.label}, p({classes[1]})={row.p_positive:.2f}"
              for row in predictions.iloc[wrong].itertuples()]
    image_grid([images[test[i]] for i in wrong], titles,
               paths.plots_dir(TASK) / "misclassified.png", columns=4,
               suptitle=f"misclassified test photos ({len(wrong)} shown)")
