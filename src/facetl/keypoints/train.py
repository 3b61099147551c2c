"""Stage train_keypoints: the model of the active recipe (`keypoints.recipe`).

`chapter`: the chapter's recipe, a head regressing 68 points (x / width, y / height) from
`keypoints.backbone`'s cached features of the whole frame (settings `train.keypoints`).

`finetune`: on face crops, in two phases, as the Keras transfer-learning guide does it:
1. the head (`keypoints.head`: one that keeps position) on the cached frozen features of the
   crops, warm-starting from the mean face;
2. head and backbone as one model, the top `keypoints.finetune.unfreeze` backbone layers
   trainable (BatchNorm frozen, in inference mode), trained from the crops with augmentation
   (rotation, scale, shift, mirror with the 68-point mirror map, colour, resolution) at a low
   learning rate with cosine decay and early stopping.
Outputs are linear, in units of the crop side; `model.json` carries what inference needs to
find the crop on a whole photo (detector calibration, fallback box, margin, passes).
"""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np

from facetl.core import paths
from facetl.core.atomic import write_json
from facetl.core.errors import FacetlError
from facetl.core.params import load_params, lookup
from facetl.core.plots import training_curves
from facetl.data.splits import carve_validation, load_split
from facetl.keypoints.config import backbone_name, inference_meta, keypoint_params, recipe
from facetl.keypoints.heads import HEAD_BF16_WINS_WITH, keypoint_head
from facetl.keypoints.layout import MIRROR, POINTS
from facetl.keypoints.losses import keypoint_loss
from facetl.keypoints.prepare import crop_targets, normalised_targets
from facetl.models.augment import AugmentSettings, augment_batch
from facetl.models.backbones import get_spec, load_model
from facetl.models.finetune import finetune, unfreeze_top
from facetl.models.heads import chapter_head, plain_convs
from facetl.models.precision import TRAINED_BF16_WINS_WITH, resolve_precision, trained_precision
from facetl.models.saving import end_to_end, save_head_model, save_task_model
from facetl.models.speed import SpeedMeter
from facetl.models.training import feature_max, fit

TASK = "keypoints"
ACTIVATIONS = ("sigmoid", "linear")


def output_activation(cfg: dict[str, Any]) -> str:
    activation = str(cfg["activation"]).lower()
    if activation not in ACTIVATIONS:
        raise FacetlError(f"train.keypoints.activation must be one of {ACTIVATIONS}, got "
                          f"{cfg['activation']!r}")
    return activation


def train_chapter(params: dict[str, Any]) -> None:
    name = backbone_name(params)
    cfg = lookup(params, f"train.{TASK}")
    seed = lookup(params, "seed")
    keras.utils.set_random_seed(seed)
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    index, train, _ = load_split(TASK)
    # Grouped by person, so a person's mirrored frames go wherever the person goes; the
    # validation figure is then taken on real (unmirrored) photos only.
    fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
    val_rows = val_rows[~index["mirrored"].to_numpy(dtype=bool)[val_rows]]

    head = chapter_head(features.shape[1:], get_spec(name).head_blocks, 2 * POINTS,
                        output_activation(cfg), feature_max(features, fit_rows), cfg["dropout"],
                        patches=True)
    live_dir = paths.plots_dir(TASK) / "training"
    speed = SpeedMeter()
    history = fit(head, features, normalised_targets(index), fit_rows, val_rows,
                  cfg | {"loss": keypoint_loss(cfg), "metrics": ["mae"]}, seed, live_dir,
                  precision=trained_precision(cfg["precision"],
                                              TRAINED_BF16_WINS_WITH["chapter_head"],
                                              f"train.{TASK}.precision"), speed=speed)
    head = plain_convs(head)  # trained as patches x matrix, saved as the chapter's Conv2D
    write_speed({"head": speed.figures()})
    training_curves(live_dir, paths.plots_dir(TASK) / "training.png")
    note_no_head_phase()

    save_head_model(TASK, name, head, {
        "recipe": "chapter", "points": POINTS,
        "units": "x / width and y / height of the input image",
        "val_mae_normalised": round(float(history.history["val_mae"][-1]), 6)})


def write_speed(phases: dict[str, dict]) -> None:
    """Each phase's achieved FLOP/s and share of this machine's peak, to the stage's metrics."""
    write_json(paths.metrics_path(f"train_{TASK}"), {"speed": phases})
    for phase, figures in phases.items():
        print(f"train {TASK} ({phase}): {figures['gflop_per_s']} GFLOP/s, "
              f"{figures['share_of_peak']:.1%} of the measured {figures['precision']} peak")


def note_no_head_phase() -> None:
    """The chapter's recipe has a single phase: its curves are `training`, not `training_head`."""
    folder = paths.plots_dir(TASK) / "training_head"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "NOTE.txt").write_text("keypoints.recipe is chapter: one phase, see ../training\n")


def point_augmenter(settings_: AugmentSettings, size: int):
    """augment(images, targets, rng) for the trainer: targets (B, 136) in crop units become
    pixels so `augment_batch` moves them with the pixels (and swaps sides on a flip)."""

    def augment(images: np.ndarray, targets: np.ndarray, rng: np.random.Generator):
        points = np.asarray(targets, dtype="float32").reshape(len(targets), POINTS, 2) * size
        images, points = augment_batch(images, rng, settings_, points, MIRROR)
        return images, (points / size).reshape(len(targets), -1).astype("float32")

    return augment


def train_finetune(params: dict[str, Any]) -> None:
    cfg = keypoint_params(params)
    name = backbone_name(params)
    seed = lookup(params, "seed")
    keras.utils.set_random_seed(seed)
    size = cfg["crop"]["input_size"]
    index, train, _ = load_split(TASK)
    targets = crop_targets(index, size)
    fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
    loss = keypoint_loss(cfg, where="keypoints")
    plots = paths.plots_dir(TASK)

    # Phase 1: the head on frozen, cached features of the (unaugmented) crops.
    features = np.load(paths.features_path(TASK, name), mmap_mode="r")
    head_cfg = cfg["head"]
    head = keypoint_head(features.shape[1:], head_cfg["type"], head_cfg["channels"],
                         head_cfg["dropout"], targets[fit_rows].mean(axis=0))
    speeds = {"head": SpeedMeter()}
    head_history = fit(head, features, targets, fit_rows, val_rows,
                       {"learning_rate": head_cfg["learning_rate"], "epochs": head_cfg["epochs"],
                        "batch_size": cfg["batch_size"], "loss": loss, "metrics": ["mae"]},
                       seed, plots / "training_head",
                       precision=trained_precision(head_cfg["precision"], HEAD_BF16_WINS_WITH,
                                                   "keypoints.head.precision"),
                       speed=speeds["head"])
    training_curves(plots / "training_head", plots / "training_head" / "training.png")

    # Phase 2: head and backbone together, the top of the backbone unfrozen.
    model = end_to_end(load_model(paths.extractor_path(TASK, name)), head, f"{TASK}_{name}")
    tune = cfg["finetune"]
    unfrozen = unfreeze_top(model, tune["unfreeze"]) if tune["epochs"] > 0 else []
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    epochs_run, val_mae = 0, float(head_history.history["val_mae"][-1])
    precision = resolve_precision(tune["precision"], get_spec(name).bf16_wins_with,
                                  "keypoints.finetune.precision")
    if tune["epochs"] > 0:
        augment = point_augmenter(AugmentSettings.from_params(cfg["augment"]), size)
        speeds["finetune"] = SpeedMeter()
        history = finetune(model, images, targets, fit_rows, val_rows,
                           tune | {"batch_size": cfg["batch_size"], "loss": loss,
                                   "metrics": ["mae"]}, seed, plots / "training", augment,
                           precision, speeds["finetune"])
        epochs_run = len(history.history["loss"])
        best = int(np.argmin(history.history["val_loss"]))
        val_mae = float(history.history["val_mae"][best])
    else:  # head only: the curves are phase 1's
        model.compile(loss=loss, metrics=["mae"])
        (plots / "training").mkdir(parents=True, exist_ok=True)
        (plots / "training" / "NOTE.txt").write_text("keypoints.finetune.epochs is 0\n")
    training_curves(plots / "training", plots / "training.png")
    write_speed({phase: meter.figures() for phase, meter in speeds.items()})

    boxes = json.loads((paths.prepared_dir(TASK) / "boxes.json").read_text())
    save_task_model(TASK, model, None, {
        "task": TASK, "recipe": "finetune", "backbone": name, "points": POINTS,
        "units": "x / S and y / S of the S x S face crop",
        "head": head_cfg["type"], "loss": cfg["loss"], "unfrozen_layers": len(unfrozen),
        "precision": precision,
        "head_epochs": len(head_history.history["loss"]), "finetune_epochs": epochs_run,
        "val_mae_crop": round(val_mae, 6)}
        | inference_meta(cfg) | {"calibration": without_counts(boxes["calibration"]),
                                     "prior": boxes["prior"]})
    print(f"train {TASK} (finetune): {head_cfg['type']} head {len(head_history.history['loss'])}"
          f" epochs, then {len(unfrozen)} backbone layers for {epochs_run} epochs; validation "
          f"MAE {val_mae:.4f} of the crop side")


def without_counts(calibration: dict) -> dict:
    return {key: calibration[key] for key in ("dx", "dy", "ratio", "fitted_on")}


def main() -> None:
    params = load_params()
    if recipe(params) == "chapter":
        train_chapter(params)
    else:
        train_finetune(params)
