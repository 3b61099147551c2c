"""Where the front end finds no face: what a trained route answers on pictures with no face in
them, before and after the no-face group's own temperature (facetl.gender.no_face), and what
that temperature does to the photos of people in that group.

For each route folder saved by route_predictions.py (the model and its per-photo answers),
the no-face temperature is fitted as the finetune stage fits it (the route's validation
photos and faceless pictures drawn with seed `FIT_SEED`), then measured on:
- faceless pictures it was not fitted on (seed `HELD_OUT_SEED`), per kind: mean confidence
  and the share answered with p >= 0.9 (a picture of noise has no gender: 0.5 is the honest
  answer), and the issue's picture (40x40 uniform noise);
- the photos of the `none` group in CelebA's test split and gender_web (few: CelebA has 6 in
  4000 photos), accuracy and mean confidence;
- every test photo of a person as if it had fallen into the `none` group (its ECE under the
  no-face temperature): the cost where a real face is missed.

    PYTHONPATH=.:src python benchmarks/no_face.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import route_predictions
from benchmarks.tables_format import Results, per_route_table, percent
from facetl.core.metrics import confidence, expected_calibration_error
from facetl.data.images import resize_square
from facetl.faces.detect import face_crop
from facetl.faces.faceless import KINDS, faceless_pictures
from facetl.gender.no_face import (
    NONE,
    calibrated_by_face,
    no_face_calibration,
)
from facetl.models.saving import load_task_model

FIT_SEED, HELD_OUT_SEED = 0, 10_000
HELD_OUT = 300  # faceless pictures measured on
SURE = 0.9


def answers(p_positive: np.ndarray) -> dict:
    sure = confidence(p_positive)
    return {"mean_confidence": float(sure.mean()), "share_sure": float((sure >= SURE).mean())}


def before_after(p_positive: np.ndarray, no_face: dict) -> dict:
    after = calibrated_by_face(p_positive, np.full(len(p_positive), NONE), no_face)
    return {"before": answers(p_positive), "after": answers(after)}


def group(frame: pd.DataFrame, no_face: dict) -> dict:
    rows = frame[frame["face"] == NONE]
    p_positive, labels = rows["p_positive"].to_numpy(), rows["label"].to_numpy()
    return {"n": len(rows), "correct": int(((p_positive >= 0.5) == labels).sum())} | (
        before_after(p_positive, no_face) if len(rows) else {})


def measure(folder: Path) -> dict:
    model, meta = load_task_model("gender", folder / "models")
    parts = route_predictions.load(folder)
    validation = parts["validation"]
    no_face = no_face_calibration(model, meta["faces"], meta["input_size"],
                                  validation["p_positive"].to_numpy(),
                                  validation["label"].to_numpy(), FIT_SEED)
    kinds = tuple(KINDS)
    # through the whole front end, detectors included: the stage skips them on such pictures
    crops = [face_crop(p, meta["faces"]) for p in faceless_pictures(HELD_OUT, HELD_OUT_SEED)]
    seen = sum(crop.status != NONE for crop in crops)
    if seen:
        raise SystemExit(f"a detector found a face in {seen} of the faceless pictures")
    inputs = np.stack([resize_square(crop.image, meta["input_size"]) for crop in crops])
    p_faceless = model.predict(inputs, verbose=0)[:, 0]
    kind_of = np.array([kinds[i % len(kinds)] for i in range(len(p_faceless))])
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    crop = face_crop(noise, meta["faces"])
    p_noise = model.predict(resize_square(crop.image, meta["input_size"])[None],
                            verbose=0)[:, 0]
    test = parts["test"]
    as_if_none = calibrated_by_face(test["p_positive"].to_numpy(), np.full(len(test), NONE),
                                    no_face)
    return {
        "no_face": no_face,
        "faceless": before_after(p_faceless, no_face) | {
            "n": len(p_faceless),
            "by_kind": {kind: before_after(p_faceless[kind_of == kind], no_face)
                        for kind in kinds}},
        "noise_40px": {"face": crop.status, "p_positive": before_after(p_noise, no_face)},
        "none_group": {"celeba_test": group(test, no_face), "web": group(parts["web"], no_face)},
        "test_photos_as_none": {
            "ece_model_temperature": expected_calibration_error(test["label"], test[
                "p_positive"]),
            "ece_no_face_temperature": expected_calibration_error(test["label"], as_if_none)},
    }


def summary(figures: dict) -> str:
    faceless = figures["faceless"]
    return (f"no-face T {figures['no_face']['temperature']:.2f} (model T "
            f"{figures['no_face']['model_temperature']:.2f}); faceless pictures answered with "
            f"p >= {SURE}: {faceless['before']['share_sure']:.0%} -> "
            f"{faceless['after']['share_sure']:.0%}")


def main() -> None:
    route_predictions.measure_folders("no_face", __doc__, measure, summary)


def table(results: Results) -> str:
    """docs/experiments/no-face.md's table: faceless pictures before and after the no-face
    temperature, and what it costs a real face."""
    def rows(name: str, f: dict) -> list[str]:
        faceless, noise = f["faceless"], f["noise_40px"]["p_positive"]
        costs = f["test_photos_as_none"]
        return [f"| {name} | {f['no_face']['model_temperature']:.2f} / "
                f"{f['no_face']['temperature']:.2f} | "
                f"{percent(faceless['before']['mean_confidence'])} → "
                f"{percent(faceless['after']['mean_confidence'])} | "
                f"{percent(faceless['before']['share_sure'])} → "
                f"{percent(faceless['after']['share_sure'])} | "
                f"{percent(noise['before']['mean_confidence'])} → "
                f"{percent(noise['after']['mean_confidence'])} | "
                f"{percent(costs['ece_model_temperature'])} → "
                f"{percent(costs['ece_no_face_temperature'])} |"]

    return per_route_table(
        results, "no_face", "PYTHONPATH=.:src python benchmarks/no_face.py FOLDER",
        ["route (experiment)", "temperature: model / no-face group",
         "faceless pictures: mean confidence", "answered with p >= 0.9",
         "40x40 noise, confidence", "a face photo in the group: ECE"], rows,
        lambda first: f"Before → after the no-face temperature. Faceless pictures: "
        f"{first['faceless']['n']} not fitted on, {len(first['faceless']['by_kind'])} kinds. "
        "The last column: every CelebA test photo scored as if its face had been missed "
        "(what the group's temperature costs a real face).")


if __name__ == "__main__":
    main()
