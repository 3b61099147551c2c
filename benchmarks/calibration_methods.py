"""Temperature scaling measured against two other ways to calibrate a route, all fitted on the
same validation people and scored on CelebA's test split and on gender_web (never fitted on):
- `temperature`: one T (what the pipeline does);
- `platt`: a slope and an intercept on the logit (Platt scaling);
- `temperature per group`: one T for photos whose face HOG found and one for the rest (the
  groups differ in how reliable they are, and gender_web has three times CelebA's share of
  the rest); a group with fewer than `MIN_GROUP` validation photos keeps the pooled T.

From the per-photo answers and model that route_predictions.py saved for each route.

    PYTHONPATH=.:src python benchmarks/calibration_methods.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from benchmarks import route_predictions
from benchmarks.tables_format import Results, calibration_cell, per_route_table
from facetl.core.metrics import by_group_report
from facetl.models.calibration import fit_temperature, sigmoid

MIN_GROUP = 30
FOUND = "found"


def temperature(validation: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    t = fit_temperature(sigmoid(validation["z"]), validation["label"])
    return lambda frame: sigmoid(frame["z"].to_numpy() / t)


def platt(validation: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    fitted = LogisticRegression(C=1e6).fit(validation[["z"]], validation["label"])
    return lambda frame: fitted.predict_proba(frame[["z"]])[:, 1]


def temperature_per_group(validation: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    pooled = fit_temperature(sigmoid(validation["z"]), validation["label"])
    found = validation["face"] == FOUND
    per_group = {is_found: (fit_temperature(sigmoid(validation["z"][found == is_found]),
                                            validation["label"][found == is_found])
                            if (found == is_found).sum() >= MIN_GROUP else pooled)
                 for is_found in (True, False)}
    return lambda frame: sigmoid(frame["z"].to_numpy() / np.where(
        frame["face"] == FOUND, per_group[True], per_group[False]))


METHODS = {"temperature": temperature, "platt": platt,
           "temperature per group": temperature_per_group}


def scores(frame: pd.DataFrame, p_positive: np.ndarray) -> dict:
    labels = frame["label"].to_numpy()
    by_face = by_group_report(labels, p_positive, frame["face"].to_numpy())
    return route_predictions.calibration_figures(labels, p_positive) | {"by_face": {
        group: {key: row[key] for key in ("n", "ece", "mean_confidence", "accuracy")}
        for group, row in by_face.items()}}


def measure(folder: Path) -> dict:
    parts = route_predictions.with_raw_logits(folder)
    validation = parts["validation"]
    figures = {"n_validation": len(validation),
               "validation_found": int((validation["face"] == FOUND).sum())}
    for name, method in METHODS.items():
        calibrated = method(validation)
        figures[name] = {part: scores(parts[part], calibrated(parts[part]))
                         for part in ("test", "web")}
    return figures


def main() -> None:
    route_predictions.measure_folders(
        "calibration_methods", __doc__, measure,
        lambda figures: ", ".join(f"{name} gender_web ECE {figures[name]['web']['ece']:.4f}"
                                  for name in METHODS))


def table(results: Results) -> str:
    """docs/experiments/calibration.md's table: each method's ECE on both test sets."""
    def rows(name: str, figures: dict) -> list[str]:
        return [f"| {name} | {method} | {calibration_cell(figures[method]['test'])} | "
                f"{calibration_cell(figures[method]['web'])} | "
                f"{figures[method]['web']['brier']:.4f} |" for method in METHODS]

    return per_route_table(
        results, "calibration_methods",
        "PYTHONPATH=.:src python benchmarks/calibration_methods.py FOLDER",
        ["route (experiment)", "method", "CelebA ECE [95% CI]", "gender_web ECE [95% CI]",
         "gender_web Brier"], rows,
        lambda _: "Each method fitted on the route's validation people only.")


if __name__ == "__main__":
    main()
