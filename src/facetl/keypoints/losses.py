"""Losses for keypoint regression, chosen by name in params (`keypoints.loss` for the finetune
recipe, `train.keypoints.loss` for the chapter's)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from facetl.core.errors import FacetlError

BUILT_IN = {"mae": "mean_absolute_error", "l1": "mean_absolute_error",
            "mse": "mean_squared_error"}
LOSSES = (*BUILT_IN, "wing")


@keras.saving.register_keras_serializable(package="facetl")
class WingLoss(keras.losses.Loss):
    """Wing loss (Feng et al., CVPR 2018): logarithmic below `width`, linear above.

    L1 gives small errors a small pull; the log part keeps pulling them in, which is where a
    landmark model spends most of its training. `width` and `epsilon` are in the targets'
    units (here fractions of the image side).
    """

    def __init__(self, width: float = 0.04, epsilon: float = 0.008, **kwargs: Any) -> None:
        kwargs.setdefault("name", "wing")
        super().__init__(**kwargs)
        if width <= 0 or epsilon <= 0:
            raise FacetlError(f"wing loss needs width > 0 and epsilon > 0, got {width}, "
                              f"{epsilon}; set wing_width / wing_epsilon (keypoints or "
                              "train.keypoints)")
        self.width, self.epsilon = float(width), float(epsilon)
        # Makes the two pieces meet at |x| = width.
        self.offset = self.width - self.width * math.log1p(self.width / self.epsilon)

    def call(self, y_true, y_pred):
        error = ops.abs(ops.cast(y_true, y_pred.dtype) - y_pred)
        wing = ops.where(error < self.width, self.width * ops.log1p(error / self.epsilon),
                         error - self.offset)
        return ops.mean(wing, axis=-1)

    def get_config(self) -> dict:
        return super().get_config() | {"width": self.width, "epsilon": self.epsilon}


def keypoint_loss(cfg: dict[str, Any], where: str = "train.keypoints") -> str | keras.losses.Loss:
    """The loss named by `cfg["loss"]`: mae (the chapter's), l1 (the same), mse or wing.

    `where` names the params block in error messages."""
    name = str(cfg["loss"]).lower()
    if name in BUILT_IN:
        return BUILT_IN[name]
    if name == "wing":
        return WingLoss(cfg["wing_width"], cfg["wing_epsilon"])
    raise FacetlError(f"{where}.loss must be one of {list(LOSSES)}, got {cfg['loss']!r}")
