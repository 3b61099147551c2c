"""Stage evaluate_gender: the trained model on the test split (never seen in training):
accuracy with its Wilson interval, ROC, confusion matrix, per-photo predictions, and the
misclassified photos to look at."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_csv, write_json
from facetl.core.metrics import binary_report, roc_points
from facetl.core.params import load_params, lookup
from facetl.core.plots import confusion_plot, image_grid, roc_plot
from facetl.data.splits import load_split
from facetl.models.backbones import load_model

TASK = "gender"


def main() -> None:
    params = load_params()
    name = lookup(params, "backbone")
    out = paths.plots_dir(TASK)
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, _, test = load_split(TASK)
    head = load_model(paths.model_dir(TASK) / "head.keras")
    classes = json.loads((paths.model_dir(TASK) / "model.json").read_text())["classes"]

    p_positive = head.predict(np.asarray(features[test], dtype="float32"), verbose=0)[:, 0]
    labels = index["label_index"].to_numpy()[test]
    report = binary_report(labels, p_positive)
    write_json(paths.metrics_path(TASK), {"backbone": name} | report)

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
    confusion_plot(report["confusion"], classes, out / "confusion.png")
    misclassified_gallery(test, predictions, classes, lookup(params, "evaluate.gallery_size"))
    low, high = report["accuracy_ci95"]
    print(f"evaluate {TASK}: accuracy {report['accuracy']:.4f} CI95 [{low:.4f}, {high:.4f}] "
          f"AUC {report['auc']} on {report['n_test']} test images")


def misclassified_gallery(test: np.ndarray, predictions: pd.DataFrame, classes: list[str],
                          size: int) -> None:
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    wrong = np.flatnonzero(~predictions["correct"].to_numpy())[:size]
    titles = [f"true {row.label}, p({classes[1]})={row.p_positive:.2f}"
              for row in predictions.iloc[wrong].itertuples()]
    image_grid([images[test[i]] for i in wrong], titles,
               paths.plots_dir(TASK) / "misclassified.png", columns=4,
               suptitle=f"misclassified test photos ({len(wrong)} shown)")
