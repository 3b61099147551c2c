"""Fine-tuning an end-to-end model: unfreeze the top of the backbone, train at a low rate.

One trainer for both tasks (gender classification, keypoint regression): the loss and metrics
come from the config. The model is image -> `<backbone>_extractor` (preprocessing, the
keras.applications backbone called with training=False, "features") -> "head". Only the top
of the backbone learns, because its features are the most task-specific; the lower layers
hold generic edges and textures that a few thousand faces would only blur.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from facetl.core import environment
from facetl.models.curves import LiveCurves
from facetl.models.precision import computing_in, loss_scaled
from facetl.models.speed import SpeedMeter

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def _sublayers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """`layer` and every layer nested in it through (functional or Sequential) models."""
    yield layer
    for child in getattr(layer, "layers", ()):
        yield from _sublayers(child)


def find_backbone(model: keras.Model) -> keras.Model:
    """The backbone inside `model`'s `*_extractor` (or inside `model`, if it is the extractor).

    Rule: the shallowest keras.Model nested in the extractor that holds convolution layers
    directly. Shallowest, not innermost: ConvNeXt itself nests Sequential stems with convs.
    """
    extractor = next((m for m in _sublayers(model) if isinstance(m, keras.Model)
                      and m.name.endswith("_extractor")), None)
    if extractor is None:
        raise ValueError(f"{model.name}: no nested model named '*_extractor' to fine-tune")
    level = list(extractor.layers)
    while level:
        for layer in level:
            if isinstance(layer, keras.Model) and any(isinstance(child, CONV_TYPES)
                                                      for child in layer.layers):
                return layer
        level = [child for layer in level for child in getattr(layer, "layers", ())]
    raise ValueError(f"{extractor.name}: no Keras backbone with convolution layers inside, "
                     "so nothing to fine-tune")


def _set_trainable(layer: keras.layers.Layer, value: bool) -> None:
    """Sets the flag on `layer` and on each layer inside it, one by one: Keras' setter would
    recurse, but under TensorFlow assigning a flag the value it already has is skipped, which
    would leave the sublayers as an earlier call set them."""
    for sub in _sublayers(layer):
        sub.trainable = value


def _is_batchnorm(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def unfreeze_top(model: keras.Model, layers: int | str) -> list[str]:
    """Make the backbone's top `layers` weight-carrying layers trainable, counted from the output
    (-1 or 'all': every one); returns their names, input end first. Everything below stays
    frozen, and BatchNormalization always does: the small fine-tuning batches would corrupt
    its ImageNet statistics (the backbone is called with training=False, so BN also stays in
    inference mode). Compile the model after this for it to take effect.
    """
    if layers in (-1, "all"):
        layers = None
    elif not isinstance(layers, int) or layers < 0:
        raise ValueError(f"layers to unfreeze: a count >= 0, -1 or 'all'; got {layers!r}")
    backbone = find_backbone(model)
    _set_trainable(backbone, True)  # so that every weight meant to train shows as trainable
    candidates = [layer for layer in backbone.layers
                  if layer.trainable_weights and not _is_batchnorm(layer)]
    chosen = candidates if layers is None else candidates[max(0, len(candidates) - layers):]
    for layer in backbone.layers:
        if layer not in chosen:
            _set_trainable(layer, False)
    for layer in _sublayers(backbone):
        if _is_batchnorm(layer):
            layer.trainable = False
    _check_reachable(model, chosen)
    return [layer.name for layer in chosen]


def _check_reachable(model: keras.Model, chosen: list[keras.layers.Layer]) -> None:
    """A frozen model around the backbone would hide its weights from training, silently."""
    reachable = {id(weight) for weight in model.trainable_weights}
    if any(id(weight) not in reachable for layer in chosen for weight in layer.trainable_weights):
        raise ValueError(f"{model.name}: a model around the backbone is frozen "
                         "(trainable=False), so unfrozen backbone layers could not train")


class ImageBatches(keras.utils.PyDataset):
    """Batches of (float32 images, targets) for rows `indices` of a uint8 (N, S, S, 3) array.

    Only each batch's rows are read (sorted, so a memory map reads forwards), keeping memory
    flat whatever N is. Training order is reshuffled every epoch; `augment(images, targets,
    rng)` sees both, as keypoint targets must move with the pixels. The rng of each batch
    derives from (seed, epoch, batch), so runs repeat even when workers fetch out of order.
    `loader` goes to PyDataset (workers, use_multiprocessing, max_queue_size).
    """

    def __init__(self, images: np.ndarray, targets: np.ndarray, indices: np.ndarray,
                 batch_size: int, shuffle: bool = False, seed: int = 0,
                 augment: Augment | None = None, **loader: Any) -> None:
        super().__init__(**loader)
        self.images, self.targets, self.augment = images, targets, augment
        self.indices = np.asarray(indices)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = -1
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(self.order[batch * self.batch_size:(batch + 1) * self.batch_size])
        images, targets = self.images[rows], self.targets[rows]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, batch])
            images, targets = self.augment(images, targets, rng)
        return np.asarray(images, dtype="float32"), targets

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.indices)
                      if self.shuffle else self.indices)


def learning_rate(cfg: dict[str, Any],
                  steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """Cosine decay from `learning_rate` to 0 over the run, after an optional linear warm-up
    (`warmup_epochs`) that lets Adam's moment estimates settle before full-size steps reach the
    unfrozen pretrained weights."""
    total = max(1, cfg["epochs"] * steps_per_epoch)
    warmup = min(total - 1, round(cfg.get("warmup_epochs", 0) * steps_per_epoch))
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_steps=warmup,
                                                  warmup_target=cfg["learning_rate"])


def optimizer(cfg: dict[str, Any], steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW (with `weight_decay`) or Adam, as `cfg["optimizer"]` says: both are params, so
    DVC sees every number the optimiser uses."""
    schedule = learning_rate(cfg, steps_per_epoch)
    name = cfg["optimizer"]
    if name == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=cfg["weight_decay"])
    if name == "adam":
        return keras.optimizers.Adam(schedule)
    raise ValueError(f"optimizer must be 'adamw' or 'adam', got {name!r}")


def callbacks(cfg: dict[str, Any], live_dir: Path | None) -> list[keras.callbacks.Callback]:
    """Early stopping that keeps the best epoch's weights, and dvclive curves when asked."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"],
                                         restore_best_weights=True)
    return [stop] if live_dir is None else [stop, LiveCurves(live_dir)]


def finetune(model: keras.Model, images: np.ndarray, targets: np.ndarray, train_idx: np.ndarray,
             val_idx: np.ndarray, cfg: dict[str, Any], seed: int, live_dir: Path | None = None,
             augment: Augment | None = None, precision: str = "float32",
             speed: SpeedMeter | None = None) -> keras.callbacks.History:
    """Train `model` (unfreeze first) on the train rows, validating on the val rows.

    cfg: learning_rate (low, so the pretrained features are adjusted rather than destroyed),
    epochs, batch_size, patience, loss (name or callable), optimizer, weight_decay, and
    optional metrics and warmup_epochs. Data-loading threads: FACETL_WORKERS. `precision`
    (resolved: float32 | bfloat16 | float16) is the backbone's compute precision while it
    trains; float16 scales the loss so that small gradients do not underflow. `speed` times
    the epochs (SpeedMeter.figures).
    """
    loader = {"workers": environment.count("FACETL_WORKERS")}
    train = ImageBatches(images, targets, train_idx, cfg["batch_size"], shuffle=True, seed=seed,
                         augment=augment, **loader)
    val = ImageBatches(images, targets, val_idx, cfg["batch_size"], **loader)
    steps = loss_scaled(optimizer(cfg, len(train)), precision)
    timing = []
    if speed is not None:
        speed.expect(model, len(train_idx), len(val_idx), precision)
        timing.append(speed)
    # The head and the extractor's float32 "features" output stay float32: the loss is there.
    with computing_in(_sublayers(find_backbone(model)), precision):
        model.compile(optimizer=steps, loss=cfg["loss"], metrics=cfg.get("metrics"))
        history = model.fit(train, validation_data=val, epochs=cfg["epochs"], verbose=2,
                            callbacks=timing + callbacks(cfg, live_dir))
    return history
