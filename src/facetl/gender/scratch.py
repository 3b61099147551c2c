"""The chapter's CNNs trained from scratch: the baseline that shows why transfer learning pays.

Every scenario reads the prepared gender photos and resizes each batch to its own input size
as it goes, so one array on disk serves the 300 px and the 50 px networks alike and memory
stays flat.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import keras
import numpy as np
from keras import layers

from facetl.core import paths
from facetl.core.atomic import write_json
from facetl.core.errors import FacetlError
from facetl.core.metrics import binary_report
from facetl.core.params import load_params, lookup
from facetl.core.plots import training_curves
from facetl.data.images import resize_square
from facetl.data.splits import carve_validation, holdout_mask, load_split
from facetl.models.heads import conv_block
from facetl.models.precision import TRAINED_BF16_WINS_WITH, trained_precision
from facetl.models.speed import SpeedMeter
from facetl.models.training import FeatureBatches, fit

TASK = "gender"


def scratch_cnn(input_size: int, pool_size: int, input_scale: float,
                filters: tuple[int, ...] = (64, 128, 256, 512), dense: int = 100) -> keras.Model:
    """/scale -> (Conv3x3 + MaxPool) per filter count, the last unpooled -> Dense -> sigmoid.

    With the defaults this is the chapter's Conv64-Pool-Conv128-Pool-Conv256-Pool-Conv512-
    Flatten-Dense100-Dense1.
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / input_scale, name="scale")(inputs)
    for i, count in enumerate(filters):
        last = i == len(filters) - 1
        x = conv_block(x, count, None if last else pool_size, f"conv{i}", f"pool{i}")
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=f"scratch_{input_size}px_pool{pool_size}")


def resize_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """The prepared photos at the scenario's size (unchanged when they already are)."""
    if batch.shape[1:3] == (size, size):
        return batch
    return np.stack([resize_square(image, size) for image in batch])


def subsample(rows: np.ndarray, labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most `limit` of `rows`, stratified and seeded: keeps 300 px scenarios runnable on CPU."""
    if not limit or limit >= len(rows):
        return rows
    return rows[holdout_mask(labels[rows], None, limit / len(rows), seed)]


def scenario_config(params: dict[str, Any], scenario: str) -> dict[str, Any]:
    """`scratch.common` (what the scenarios share) and `scratch.scenarios.<scenario>`."""
    scenarios = lookup(params, "scratch.scenarios")
    if scenario not in scenarios:
        raise FacetlError(f"unknown scratch scenario {scenario!r}; params.yaml defines "
                          f"{sorted(scenarios)} under scratch.scenarios")
    return lookup(params, "scratch.common") | scenarios[scenario]


def main(scenario: str) -> None:
    """Stage scratch@<scenario>: train on the train split, score on the test split."""
    params = load_params()
    cfg = scenario_config(params, scenario)
    seed = lookup(params, "seed")
    keras.utils.set_random_seed(seed)
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    index, train, test = load_split(TASK)
    labels = index["label_index"].to_numpy()
    train = subsample(train, labels, cfg["max_train_images"], seed)
    fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
    model = scratch_cnn(cfg["input_size"], cfg["pool_size"], cfg["input_scale"],
                        tuple(cfg["filters"]), cfg["dense"])
    resize = partial(resize_batch, size=cfg["input_size"])
    targets = labels.astype("float32")
    live_dir = paths.plots_dir("scratch") / scenario
    start = time.perf_counter()
    speed = SpeedMeter()
    fit(model, images, targets, fit_rows, val_rows,
        cfg | {"loss": "binary_crossentropy", "metrics": ["accuracy"]}, seed, live_dir, resize,
        trained_precision(cfg["precision"], TRAINED_BF16_WINS_WITH["scratch_cnn"],
                          "scratch.common.precision"), speed)
    batches = FeatureBatches(images, targets, test, cfg["batch_size"], transform=resize)
    p_positive = model.predict(batches, verbose=0)[:, 0]
    seconds = time.perf_counter() - start
    report = binary_report(labels[test], p_positive)
    training_curves(live_dir, live_dir / "training.png")
    write_json(paths.metrics_path(f"scratch_{scenario}"), report | {
        "scenario": scenario, "input_size": cfg["input_size"], "pool_size": cfg["pool_size"],
        "epochs": cfg["epochs"], "n_fit": len(fit_rows), "n_val": len(val_rows),
        "seconds": round(seconds, 1), "speed": speed.figures()})
    low, high = report["accuracy_ci95"]
    print(f"scratch {scenario}: accuracy {report['accuracy']:.4f} CI95 [{low:.4f}, {high:.4f}] "
          f"on {report['n_test']} test images, trained on {len(fit_rows)} in {seconds:.0f} s")
