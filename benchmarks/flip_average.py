"""Does averaging a photo's answer with its mirror image's make a route's temperature carry
to photos from elsewhere? Averaging two views is the cheapest ensemble, and ensembles are
the calibration that holds best under a change of data: where the two views disagree (hard
photos) the average logit shrinks, where they agree (easy ones) it stays, so the temperature
fitted on CelebA's validation people has less doubt to spread over every photo.

For each saved route folder (route_predictions.py): every validation, test and gender_web
photo through the front end the model was trained behind, the model on the crop and on its
mirror; one temperature fitted on the validation people for each way of answering; accuracy
and ECE on CelebA's test split and gender_web. The plain answers are checked against the ones
the pipeline saved (the crops are recomputed here).

    PYTHONPATH=.:src python benchmarks/flip_average.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks import route_predictions
from benchmarks.tables_format import Results, calibration_cell, per_route_table, percent
from facetl.data.images import mirror_image, read_image, resize_square
from facetl.faces.detect import face_crop
from facetl.models.calibration import fit_temperature, logit, sigmoid, temperature_of
from facetl.models.saving import load_task_model

BATCH = 32


@cache
def crops(sources: tuple[str, ...], faces_json: str, size: int) -> np.ndarray:
    """The model's input for each photo, as `facetl predict` makes it (kept for the next
    folder with the same front end)."""
    faces = json.loads(faces_json)
    return np.stack([resize_square(face_crop(read_image(source), faces).image, size)
                     for source in tqdm(sources, desc="crops", unit="photo")])


def raw_logits(model, images: np.ndarray) -> np.ndarray:
    p_positive = model.predict(images, batch_size=BATCH, verbose=0)[:, 0]
    return logit(p_positive) * temperature_of(model)


def measure(folder: Path) -> dict:
    model, meta = load_task_model("gender", folder / "models")
    parts = route_predictions.load(folder)
    answers, agreement = {}, {}
    for part, frame in parts.items():
        images = crops(tuple(frame["source"]), json.dumps(meta.get("faces", {"align": False}),
                                                          sort_keys=True), meta["input_size"])
        plain = raw_logits(model, images)
        mirrored = raw_logits(model, np.stack([mirror_image(image) for image in images]))
        answers[part] = {"plain": plain, "flip average": (plain + mirrored) / 2}
        saved = frame["p_positive"].to_numpy()
        agreement[part] = float(np.abs(sigmoid(plain / temperature_of(model)) - saved).max())
    figures = {"max_gap_to_saved_answers": agreement}
    labels = {part: frame["label"].to_numpy() for part, frame in parts.items()}
    for way in ("plain", "flip average"):
        temperature = fit_temperature(sigmoid(answers["validation"][way]), labels["validation"])
        figures[way] = {"temperature": temperature} | {
            part: route_predictions.calibration_figures(
                labels[part], sigmoid(answers[part][way] / temperature))
            for part in ("test", "web")}
    return figures


def summary(figures: dict) -> str:
    return "; ".join(f"{way}: T {figures[way]['temperature']:.2f}, web accuracy "
                     f"{figures[way]['web']['accuracy']:.4f} ECE {figures[way]['web']['ece']:.4f}"
                     for way in ("plain", "flip average"))


def main() -> None:
    route_predictions.measure_folders("flip_average", __doc__, measure, summary)


def table(results: Results) -> str:
    """docs/experiments/calibration.md's table: each route plain and flip-averaged."""
    def rows(name: str, figures: dict) -> list[str]:
        return [f"| {name} | {way} | {f['temperature']:.2f} | "
                f"{percent(f['test']['accuracy'])} / {calibration_cell(f['test'])} | "
                f"{percent(f['web']['accuracy'])} / {calibration_cell(f['web'])} |"
                for way, f in ((way, figures[way]) for way in ("plain", "flip average"))]

    return per_route_table(
        results, "flip_average", "PYTHONPATH=.:src python benchmarks/flip_average.py FOLDER",
        ["route (experiment)", "answer", "T", "CelebA accuracy / ECE [95% CI]",
         "gender_web accuracy / ECE [95% CI]"], rows,
        lambda _: "Each way's temperature fitted on the route's validation people.")


if __name__ == "__main__":
    main()
