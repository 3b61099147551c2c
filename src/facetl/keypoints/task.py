"""The keypoint task as the layers that serve every task meet it: how its model loads and
predicts (and the option `facetl predict` takes for it), what its export manifest and model
card say, which metrics file they read, and its columns in `facetl report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetl.core.card import percent, read_metrics
from facetl.core.tasks import Option, Task, lazy
from facetl.keypoints.config import PIPELINE
from facetl.keypoints.report import COMPARISON

if TYPE_CHECKING:
    import keras

USE = ("Research and teaching: 68 facial landmarks (the iBUG 300-W layout) on photos of a face, "
       "e.g. to align or crop faces. Not for identifying people.")
DATA_TERMS = ("The Udacity facial-keypoints data (frames of the YouTube Faces database) is for "
              "research use: so is a model trained on it.")
# model.json's keys that run outside the exported network (crop, detector, passes)
SETTINGS = ("recipe", "points", "units", "margin", "detector", "upsample", "passes",
            "flip_tta", "calibration", "prior")


def manifest(meta: dict, model: keras.Model) -> dict[str, Any]:
    """The settings of the keypoint passes that run in facetl, around the file."""
    return {"keypoints": {key: meta[key] for key in SETTINGS if key in meta}}


def caller_feeds(meta: dict) -> str:
    if meta.get("recipe") == "finetune":
        return ("a square face crop (box from dlib's HOG detector mapped by "
                "`keypoints.calibration`, or `keypoints.prior` where it finds none, widened "
                "by `keypoints.margin`; each later pass crops around the previous points)")
    return "the whole photo"


def output_meaning(meta: dict) -> str:
    return f"x0, y0, ..., x67, y67: {meta['units']}"


def measured(metrics_dir: Path) -> list[str]:
    """NME and failure rate on the held-out frames, beside dlib's predictor."""
    found = read_metrics(metrics_dir, "keypoints")
    if found is None:
        return ["Not measured: no metrics/keypoints.json in the workspace that exported it."]
    return [f"On the held-out frames of its training source ({found['n_test']} frames): "
            f"NME {percent(found['nme'])} of the inter-ocular distance, failure rate "
            f"{percent(found['failure_rate'])}; dlib's 68-point predictor on the same "
            f"frames: NME {percent(found['dlib_nme'])}."]


OPTIONS = (Option("overlay", value_type=str, metavar="DIR", served=False,
                  help="also write each image with its predicted keypoints drawn, into DIR"),)

TASK = Task(name="keypoints", made_by=PIPELINE,
            load=lazy("facetl.keypoints.predict:load_keypoints"),
            predict=lazy("facetl.keypoints.predict:predict_keypoints"), manifest=manifest,
            caller_feeds=caller_feeds, output_meaning=output_meaning, use=USE,
            data_terms=DATA_TERMS, source_param=("data.keypoints", "csv"), measured=measured,
            limits=lambda manifest: [], comparison=COMPARISON, options=OPTIONS)
