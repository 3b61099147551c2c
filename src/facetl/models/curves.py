"""Per-epoch training curves through dvclive's `Live`, on any Keras backend.

dvclive's own Keras callback subclasses `tf.keras.callbacks.Callback`, so importing it needs
TensorFlow even when Keras runs on JAX or PyTorch. This callback writes the same files
(`<dir>/plots/metrics/{train,eval}/<metric>.tsv`, the names dvclive's Keras callback gives)
with `Live` alone, so the pipeline's plots read the same paths whatever the backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
from dvclive import Live
from dvclive.utils import standardize_metric_name


class LiveCurves(keras.callbacks.Callback):
    """Logs every metric Keras reports at the end of an epoch, then steps; ends with training."""

    def __init__(self, live_dir: Path) -> None:
        super().__init__()
        self.live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for metric, value in (logs or {}).items():
            self.live.log_metric(standardize_metric_name(metric, "dvclive.keras"), float(value))
        self.live.next_step()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.live.end()
