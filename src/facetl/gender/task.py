"""The gender task as the layers that serve every task meet it: how its model loads and
predicts (and the options `facetl predict` takes for it), what its export manifest and model
card say, which metrics files they read, and its columns in `facetl report`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetl.core.card import percent, read_metrics
from facetl.core.tasks import Option, Task, lazy
from facetl.gender.report import COMPARISON

if TYPE_CHECKING:
    import keras

USE = ("Research and teaching: how transfer learning behaves on face photos. It answers one of "
       "two labels, the gender the annotators of the training photos perceived, with a "
       "calibrated probability. It says nothing about identity or how a person identifies, and "
       "it is not for decisions about people (hiring, access, policing, anything that treats a "
       "person by the answer).")
DATA_TERMS = ("The photos keep their own terms: the chapter's CSV of image URLs (the photos "
              "belong to their owners), CelebA (non-commercial research use only), gender_web "
              "(no stated licence: research use only), your own photos (your terms). A model "
              "trained on research-only photos is itself for research use only.")
TEST_SETS = (("test split", "gender"), ("photos from elsewhere", "gender_ood"))  # metrics/*.json


def manifest(meta: dict, model: keras.Model) -> dict[str, Any]:
    """Classes, threshold, the calibration in the graph (and the one outside it), the faces."""
    from facetl.models.calibration import temperature_layers  # here: it loads Keras

    layers = temperature_layers(model)
    return {"classes": meta["classes"], "positive_class": meta["classes"][1], "threshold": 0.5,
            "calibration": {"temperature": float(math.prod(t.temperature for t in layers)),
                            "temperature_layers": [t.temperature for t in layers],
                            "in_graph": True,
                            # outside the file: facetl applies it where it finds no face
                            "no_face": meta.get("no_face")},
            "faces": meta.get("faces", {"align": False})}


def caller_feeds(meta: dict) -> str:
    return ("the face crop facetl's front end cuts (settings in `faces`: dlib HOG detection, "
            "5-point alignment)" if meta.get("faces", {}).get("align") else "the whole photo")


def output_meaning(meta: dict) -> str:
    return f"the calibrated probability of `{meta['classes'][1]}`; `{meta['classes'][0]}` below 0.5"


def rows(name: str, metrics: dict[str, Any]) -> list[str]:
    """Table rows: the whole test set, then each front-end group."""
    low, high = metrics["accuracy_ci95"]
    found = [f"| {name} | all | {metrics['n_test']} | {percent(metrics['accuracy'])} "
             f"({percent(low)}-{percent(high)}) |"]
    for group, row in sorted(metrics.get("by_face", {}).items()):
        low, high = row["accuracy_ci95"]
        found.append(f"| {name} | face: {group} | {row['n']} | {percent(row['accuracy'])} "
                     f"({percent(low)}-{percent(high)}) |")
    return found


def weakest(name: str, metrics: dict[str, Any]) -> str | None:
    groups = metrics.get("by_face", {})
    if len(groups) < 2:
        return None
    group, row = min(groups.items(), key=lambda item: item[1]["accuracy"])
    return (f"- Weakest front-end group on {name}: `{group}` ({percent(row['accuracy'])} of "
            f"{row['n']} photos, against {percent(metrics['accuracy'])} overall).")


def measured(metrics_dir: Path) -> list[str]:
    """Accuracy per test set and front-end group, as the evaluation stages wrote it."""
    sets = [(label, found) for label, name in TEST_SETS
            if (found := read_metrics(metrics_dir, name)) is not None]
    if not sets:
        return ["Not measured: no metrics/gender.json or metrics/gender_ood.json in the "
                "workspace that exported it."]
    lines = ["Accuracy with its 95% interval, per face front-end group (`found`, `fallback`, "
             "`none`: what the front end did; `off`: alignment off), as the evaluation stages "
             "measured the Keras model (the export check keeps the file within "
             "1e-4 of it):", "", "| test set | group | n | accuracy (95% CI) |",
             "|---|---|---|---|"]
    for label, found in sets:
        lines += rows(label, found)
    lines.append("")
    lines += [line for label, found in sets if (line := weakest(label, found))]
    if len(sets) == 1:
        lines.append(f"- Only the {sets[0][0]} was measured.")
    return lines


def limits(manifest: dict[str, Any]) -> list[str]:
    """What its calibration promises, and where it promises less."""
    lines = [f"- Probabilities are calibrated (temperature "
             f"{manifest['calibration']['temperature']:.3f}) on validation people of "
             "the training source; on photos from elsewhere they are less reliable."]
    no_face = manifest["calibration"].get("no_face")
    if no_face:
        lines.append(f"- Where the front end finds no face, the answer has its own "
                     f"temperature ({no_face['temperature']:.3f}), fitted with pictures "
                     "that hold no face: expect answers closer to 1/2 there.")
    return lines


OPTIONS = (
    Option("min_confidence", value_type=float, metavar="P",
           help="answer 'uncertain' where the calibrated probability of the answer is below P "
                "(0.5-1; the probability is still printed)",
           expects="a probability from 0.5 (answer every photo) to 1 (answer none)",
           valid=lambda p: 0.5 <= p <= 1),
    Option("all_faces", help="also answer for every face found, each with its box (the largest "
                             "face still gives the photo's answer)"),
)

TASK = Task(name="gender", made_by="dvc repro", load=lazy("facetl.gender.predict:load_gender"),
            predict=lazy("facetl.gender.predict:predict_gender"), manifest=manifest,
            caller_feeds=caller_feeds, output_meaning=output_meaning, use=USE,
            data_terms=DATA_TERMS, source_param=("data.gender", "source"), measured=measured,
            limits=limits, comparison=COMPARISON, options=OPTIONS, default=True)
