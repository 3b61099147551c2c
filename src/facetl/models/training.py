"""Training on arrays read from a memmap batch by batch (cached features, or prepared images)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from facetl.models.curves import LiveCurves
from facetl.models.precision import computing_in, hidden_layers, loss_scaled
from facetl.models.speed import SpeedMeter

# Training steps per call into the compiled graph: the same steps, on the same batches, in the
# same order (the same weights: tests/test_training.py), with fewer trips through Keras' Python
# loop, which weighs most at the chapter's batch of 16 and on a busy machine (its share of a
# step: benchmarks/conv_peak.py --step-profile). Keras' PyTorch trainer takes one per call only.
STEPS_PER_CALL = 1 if keras.backend.backend() == "torch" else 16


class FeatureBatches(keras.utils.PyDataset):
    """Batches of (features, targets) for `indices`, reshuffled every epoch when training.

    Reads rows from the (memory-mapped) feature array on demand, so the whole feature file
    never has to fit in memory; `transform` (e.g. resizing images) applies to each batch read.
    """

    def __init__(self, features: np.ndarray, targets: np.ndarray, indices: np.ndarray,
                 batch_size: int, shuffle: bool = False, seed: int = 0,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        super().__init__()
        self.features, self.targets, self.transform = features, targets, transform
        self.indices = np.array(indices)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int):
        rows = np.sort(self.order[batch * self.batch_size:(batch + 1) * self.batch_size])
        inputs = self.features[rows]
        if self.transform is not None:
            inputs = self.transform(inputs)
        return np.asarray(inputs, dtype="float32"), self.targets[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.indices) if self.shuffle else self.indices


def feature_max(features: np.ndarray, indices: np.ndarray, chunk: int = 256) -> float:
    """The chapter's scale: the largest feature value over the training rows (streamed)."""
    largest = 0.0
    for start in range(0, len(indices), chunk):
        largest = max(largest, float(np.max(features[np.sort(indices[start:start + chunk])])))
    return largest if largest > 0 else 1.0


def fit(model: keras.Model, features: np.ndarray, targets: np.ndarray, train_idx: np.ndarray,
        val_idx: np.ndarray, cfg: dict[str, Any], seed: int, live_dir: Path | None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        precision: str = "float32", speed: SpeedMeter | None = None) -> keras.callbacks.History:
    """Adam on the train rows, validation on the val rows; per-epoch curves to `live_dir`
    through dvclive when it is given. `precision` (resolved: float32 | bfloat16 | float16) is
    what every layer but the output computes in while it trains; float16 scales the loss so
    that small gradients do not underflow. `speed` times the epochs (SpeedMeter.figures)."""
    adam = loss_scaled(keras.optimizers.Adam(cfg["learning_rate"]), precision)
    train = FeatureBatches(features, targets, train_idx, cfg["batch_size"], shuffle=True,
                           seed=seed, transform=transform)
    val = FeatureBatches(features, targets, val_idx, cfg["batch_size"], transform=transform)
    timing = []
    if speed is not None:
        speed.expect(model, len(train_idx), len(val_idx), precision)
        timing.append(speed)
    with computing_in(hidden_layers(model), precision):
        model.compile(optimizer=adam, loss=cfg["loss"], metrics=cfg.get("metrics", []),
                      steps_per_execution=STEPS_PER_CALL)
        return model.fit(train, validation_data=val, epochs=cfg["epochs"], verbose=2,
                         callbacks=timing + ([LiveCurves(live_dir)] if live_dir else []))
