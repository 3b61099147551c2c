"""Does a temperature fitted on CelebA's people carry over to photos from elsewhere? For each
saved route: the temperature fitted on its validation people (what the pipeline does), on
CelebA's test split and on both (twice the in-distribution photos: what a larger validation
set or out-of-fold calibration could at best reach), with the ECE each gives on the test
split and on gender_web; and the temperatures for which each set's ECE is within the goal.

The fits on the test split and the ranges are a diagnosis, never a route: a route fitted on
its test photos or on gender_web would report nothing. If gender_web's range and the
in-distribution temperatures do not meet, no temperature fitted on CelebA reaches the goal
there: the model's confidence does not follow the change in difficulty between the sets.

    PYTHONPATH=.:src python benchmarks/temperature_transfer.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import route_predictions
from benchmarks.tables_format import Results, per_route_table, percent
from facetl.core.metrics import expected_calibration_error
from facetl.models.calibration import fit_temperature, sigmoid

GOAL_ECE = 0.02
GRID = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))  # 1.5% apart


def goal_span(frame: pd.DataFrame) -> list[float] | None:
    """The lowest and highest grid temperature whose ECE meets the goal (binned ECE is not
    smooth in T: near the edges a lone grid point can meet it or miss it), or None."""
    labels, z = frame["label"].to_numpy(), frame["z"].to_numpy()
    within = [t for t in GRID if expected_calibration_error(labels, sigmoid(z / t)) <= GOAL_ECE]
    return [float(within[0]), float(within[-1])] if within else None


def fitted(frame: pd.DataFrame) -> float:
    return fit_temperature(sigmoid(frame["z"]), frame["label"])


def scored(frame: pd.DataFrame, temperature: float) -> dict:
    return route_predictions.calibration_figures(frame["label"].to_numpy(),
                                                 sigmoid(frame["z"].to_numpy() / temperature))


def measure(folder: Path) -> dict:
    parts = route_predictions.with_raw_logits(folder)
    in_distribution = pd.concat([parts["validation"], parts["test"]])
    temperatures = {"validation": fitted(parts["validation"]), "test": fitted(parts["test"]),
                    "validation+test": fitted(in_distribution), "none": 1.0}
    return {
        "n": {part: len(frame) for part, frame in parts.items()},
        "accuracy": {part: float(((frame["z"] > 0) == (frame["label"] == 1)).mean())
                     for part, frame in parts.items()},
        "fits": {name: {"temperature": t} | {part: scored(parts[part], t)
                                              for part in ("test", "web")}
                 for name, t in temperatures.items()},
        "within_goal": {part: goal_span(parts[part]) for part in ("test", "web")},
    }


def summary(figures: dict) -> str:
    return ", ".join(f"T {name} {fit['temperature']:.2f}: web ECE {fit['web']['ece']:.4f}"
                     for name, fit in figures["fits"].items()) + (
        f"; web within the goal for T in {figures['within_goal']['web']}")


def main() -> None:
    route_predictions.measure_folders("temperature_transfer", __doc__, measure, summary)


def temperature_span(span: list[float] | None) -> str:
    return "none" if span is None else f"{span[0]:.2f}–{span[1]:.2f}"


def table(results: Results) -> str:
    """docs/experiments/calibration.md's table: the temperature fitted on each set, and how
    far it carries to gender_web."""
    fits = ("validation", "test", "validation+test", "none")

    def rows(name: str, f: dict) -> list[str]:
        temperatures = " / ".join(f"{f['fits'][fit]['temperature']:.2f}" for fit in fits[:3])
        return [f"| {name} | {percent(f['accuracy']['test'])} / {percent(f['accuracy']['web'])} "
                f"| {temperatures} | "
                f"{' / '.join(percent(f['fits'][fit]['web']['ece']) for fit in fits)} | "
                f"{temperature_span(f['within_goal']['web'])} | "
                f"{temperature_span(f['within_goal']['test'])} |"]

    return per_route_table(
        results, "temperature_transfer",
        "PYTHONPATH=.:src python benchmarks/temperature_transfer.py FOLDER",
        ["route (experiment)", "accuracy CelebA / gender_web",
         "T fitted on: validation / test / both", "gender_web ECE at those T / uncalibrated",
         "gender_web within 2% for T in", "CelebA test within 2% for T in"], rows,
        lambda _: "T: the temperature the logit is divided by (larger: less sure). `test` and "
        "`both` are fitted on CelebA's test photos (with the validation people): a diagnosis "
        "of what more in-distribution photos could reach, never a route. The spans: the "
        "lowest and highest T on a grid 1.5% apart whose ECE is within 2%.")


if __name__ == "__main__":
    main()
