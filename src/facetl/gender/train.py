"""Stage train_gender: the head on the active backbone's cached features, saved with its
extractor as one image -> prediction model (`models/gender_head/`; the finetune_gender stage
turns it into the final `models/gender/`)."""

from __future__ import annotations

import numpy as np

from facetl.core import paths
from facetl.core.atomic import write_json
from facetl.core.params import load_params, lookup
from facetl.data.splits import load_split
from facetl.gender.head import fit_classifier_head
from facetl.models.saving import save_head_model
from facetl.models.speed import SpeedMeter

TASK = "gender"


def main() -> None:
    params = load_params()
    name = lookup(params, "backbone")
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, train, _ = load_split(TASK)

    speed = SpeedMeter()
    head = fit_classifier_head(name, features, index, train, params, lookup(params, "seed"),
                               paths.plots_dir(TASK), speed)
    figures = speed.figures()
    write_json(paths.metrics_path(f"train_{TASK}"), {
        "head": lookup(params, "head.type"), "backbone": name, "speed": figures})
    print(f"train {TASK}: {figures['gflop_per_s']} GFLOP/s, {figures['share_of_peak']:.1%} of "
          f"this machine's measured {figures['precision']} peak")

    save_head_model(TASK, name, head, {
        "classes": [str(c).lower() for c in lookup(params, f"data.{TASK}.classes")],
        "head": lookup(params, "head.type"), "faces": lookup(params, "faces")},
        folder=f"{TASK}_head")
