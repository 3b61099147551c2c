"""The linear probe: average-pooled features, standardised, and logistic regression.

The regularisation strength C is chosen by cross-validation on the train split only, with
folds grouped by person when people are known (a person's photos never straddle a fold).
The fitted model is then written as a tiny Keras model (pool -> standardise -> Dense sigmoid,
with scikit-learn's fitted numbers as its weights), so evaluation, the end-to-end model file
and `facetl predict` use one inference path whatever the head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import pandas as pd
from dvclive import Live
from keras import layers
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from facetl.core.errors import FacetlError
from facetl.models.speed import machine, peak_flops

HEAD_TYPES = ("chapter", "linear")
MAX_ITER = 5000


@dataclass(frozen=True)
class LinearFit:
    head: keras.Model
    c: float  # the C cross-validation chose
    cv: pd.DataFrame  # per C: mean train/validation log loss and accuracy over the folds
    speed: dict[str, Any]  # FLOP/s of the search and refit, against the float64 peak


class CountedLogistic(LogisticRegression):
    """LogisticRegression that notes each fit's (iterations, rows, features) for the FLOP count.

    The grid search clones it per fold and C, so the notes are kept on the class; the search
    runs in this process (no n_jobs), and `fit_linear_head` clears them before it starts."""

    fits: ClassVar[list[tuple[int, int, int]]] = []

    def fit(self, X, y, sample_weight=None):  # noqa: N803 (scikit-learn's names)
        super().fit(X, y, sample_weight)
        type(self).fits.append((int(np.max(self.n_iter_)), X.shape[0], X.shape[1]))
        return self


def search_flops(fits: list[tuple[int, int, int]]) -> float:
    """A lower bound of the FLOPs of logistic-regression fits: each L-BFGS iteration takes at
    least one loss-and-gradient pass, two (rows x features) products, 4 FLOPs a value."""
    return sum(4.0 * iterations * rows * features for iterations, rows, features in fits)


def pooled(features: np.ndarray, rows: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, ..., C) features at `rows` averaged over every axis but the channels, in float64.

    Read from the memmap a chunk at a time; (N, C) vectors pass through unchanged.
    """
    rows = np.asarray(rows)
    out = np.empty((len(rows), features.shape[-1]), dtype="float64")
    for start in range(0, len(rows), chunk):
        block = np.asarray(features[rows[start:start + chunk]], dtype="float64")
        out[start:start + len(block)] = block.reshape(len(block), -1, block.shape[-1]).mean(1)
    return out


def folds(labels: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int) -> list:
    """Stratified (and, with groups, grouped) folds; too few samples is an error saying why."""
    if groups is None:
        unit, fewest = "photos", int(np.bincount(labels).min())
    else:
        unit, fewest = "people", min(len(set(groups[labels == c])) for c in set(labels))
    if n_folds < 2 or fewest < n_folds:
        raise FacetlError(f"head.folds={n_folds}: cross-validation needs at least 2 folds and "
                          f"as many {unit} of each class in the train split (fewest: {fewest}); "
                          "change head.folds")
    kind = StratifiedKFold if groups is None else StratifiedGroupKFold
    splitter = kind(n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def linear_head(feature_shape: tuple[int, ...], mean: np.ndarray, scale: np.ndarray,
                coef: np.ndarray, intercept: float) -> keras.Model:
    """Pool -> sigmoid(w.(x - mean) / scale + b), holding a fitted logistic regression.

    The standardisation is folded into the Dense layer's weights (w / scale, and b less
    w.mean / scale): the same function, in weights every exporter carries (a Normalization
    layer's constants became missing inputs of the ONNX file)."""
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if len(feature_shape) > 1:
        x = layers.Reshape((-1, feature_shape[-1]), name="positions")(x)
        x = layers.GlobalAveragePooling1D(name="pool")(x)
    output = layers.Dense(1, activation="sigmoid", dtype="float32", name="output")
    head = keras.Model(inputs, output(x), name="linear_head")
    weights = np.asarray(coef, dtype="float64").reshape(-1) / np.asarray(scale, dtype="float64")
    output.kernel.assign(weights.reshape(-1, 1).astype("float32"))
    output.bias.assign(np.array([intercept - weights @ np.asarray(mean, dtype="float64")],
                                dtype="float32"))
    return head


def fit_linear_head(features: np.ndarray, labels: np.ndarray, rows: np.ndarray,
                    groups: np.ndarray | None, cfg: dict[str, Any], seed: int) -> LinearFit:
    """Choose C over `cfg["c_grid"]` by `cfg["folds"]`-fold CV on `rows`, refit on all of them."""
    start = time.perf_counter()
    x, y = pooled(features, rows), labels[rows]
    grid = [float(c) for c in cfg["c_grid"]]
    if not grid or min(grid) <= 0:
        raise FacetlError(f"head.c_grid must list positive values of C, got {cfg['c_grid']!r}")
    CountedLogistic.fits = []
    probe = Pipeline([("scale", StandardScaler()),
                      ("logistic", CountedLogistic(max_iter=MAX_ITER))])
    search = GridSearchCV(probe, {"logistic__C": grid},
                          cv=folds(y, None if groups is None else groups[rows], cfg["folds"],
                                   seed),
                          scoring={"loss": "neg_log_loss", "accuracy": "accuracy"},
                          refit="loss", return_train_score=True)
    search.fit(x, y)
    results = search.cv_results_
    cv = pd.DataFrame({"C": grid,
                       "train_loss": -results["mean_train_loss"],
                       "val_loss": -results["mean_test_loss"],
                       "train_accuracy": results["mean_train_accuracy"],
                       "val_accuracy": results["mean_test_accuracy"]})
    scaler, logistic = search.best_estimator_["scale"], search.best_estimator_["logistic"]
    head = linear_head(features.shape[1:], scaler.mean_, scaler.scale_, logistic.coef_[0],
                       float(logistic.intercept_[0]))
    seconds = time.perf_counter() - start
    achieved, peak = search_flops(CountedLogistic.fits) / seconds, peak_flops("float64")
    speed = {"fits": len(CountedLogistic.fits), "seconds": round(seconds, 2),
             "gflop_per_s": float(f"{achieved / 1e9:.4g}"), "flops": "lower bound (L-BFGS passes)",
             "peak_gflop_per_s": round(peak / 1e9, 1), "precision": "float64",
             "share_of_peak": float(f"{achieved / peak:.4g}"), "machine": machine()}
    return LinearFit(head, search.best_params_["logistic__C"], cv, speed)


def log_cv_curve(cv: pd.DataFrame, live_dir: Path) -> None:
    """The CV curve through dvclive, one step per C, as train/validation like the chapter's head.

    Its files sit where the chapter head's per-epoch curves do, so dvc.yaml's plots show both.
    """
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)
    for row in cv.itertuples():
        live.log_metric("C", row.C)
        for split, prefix in (("train", "train"), ("eval", "val")):
            live.log_metric(f"{split}/loss", getattr(row, f"{prefix}_loss"))
            live.log_metric(f"{split}/accuracy", getattr(row, f"{prefix}_accuracy"))
        live.next_step()
    live.end()
