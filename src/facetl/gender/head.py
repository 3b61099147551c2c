"""The gender head named by `head.type`, trained on cached features: shared by the train and
repeats stages, so a repeat trains exactly what the pipeline trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from facetl.core.errors import FacetlError
from facetl.core.params import lookup
from facetl.core.plots import cv_curve_plot, training_curves
from facetl.data.splits import carve_validation, person_groups
from facetl.models.backbones import get_spec
from facetl.models.calibration import calibrate, temperature_of
from facetl.models.heads import chapter_head, plain_convs
from facetl.models.linear_head import HEAD_TYPES, fit_linear_head, log_cv_curve
from facetl.models.precision import TRAINED_BF16_WINS_WITH, trained_precision
from facetl.models.speed import SpeedMeter
from facetl.models.training import feature_max, fit


def fit_classifier_head(name: str, features: np.ndarray, index: pd.DataFrame, train: np.ndarray,
                        params: dict[str, Any], seed: int, plots_dir: Path | None = None,
                        speed: SpeedMeter | None = None) -> keras.Model:
    """Train on the `train` rows only (seeded).

    With `plots_dir`, its training curves go to `training/` (dvclive) and `training.png` there;
    without, nothing is logged (the repeated splits only want the head). `speed` times the
    chapter head's training.
    """
    cfg, head_cfg = lookup(params, "train.gender"), lookup(params, "head")
    if head_cfg["type"] not in HEAD_TYPES:
        raise FacetlError(f"head.type must be one of {HEAD_TYPES}, got {head_cfg['type']!r}")
    keras.utils.set_random_seed(seed)
    targets = index["label_index"].to_numpy().astype("float32")
    # Both heads leave the same people out for validation: the temperature is fitted there.
    fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
    if head_cfg["type"] == "linear":  # C by cross-validation on the fitting rows
        fitted = fit_linear_head(features, targets.astype(int), fit_rows,
                                 person_groups(index), head_cfg, seed)
        if plots_dir:
            log_cv_curve(fitted.cv, plots_dir / "training")
            cv_curve_plot(fitted.cv, fitted.c, plots_dir / "training.png")
        print(f"linear head: C={fitted.c:g} by {head_cfg['folds']}-fold CV")
        head = fitted.head
        if speed is not None:
            speed.record(fitted.speed)
    else:
        head = chapter_head(features.shape[1:], get_spec(name).head_blocks, 1, "sigmoid",
                            feature_max(features, fit_rows), cfg["dropout"], patches=True)
        fit(head, features, targets, fit_rows, val_rows,
            cfg | {"loss": "binary_crossentropy", "metrics": ["accuracy"]}, seed,
            plots_dir / "training" if plots_dir else None,
            precision=trained_precision(cfg["precision"], TRAINED_BF16_WINS_WITH["chapter_head"],
                                        "train.gender.precision"), speed=speed)
        head = plain_convs(head)  # trained as patches x matrix, saved as the chapter's Conv2D
        if plots_dir:
            training_curves(plots_dir / "training", plots_dir / "training.png")
    p_val = head.predict(np.asarray(features[np.sort(val_rows)], dtype="float32"),
                         verbose=0)[:, 0]
    head = calibrate(head, p_val, targets[np.sort(val_rows)])
    print(f"calibration: temperature {temperature_of(head):.3f} on {len(val_rows)} "
          f"validation photos")
    return head
