"""Stage finetune_gender: the second half of transfer learning. The trained head and its
backbone as one model (warm start), the top of the backbone unfrozen (BatchNorm kept in
inference mode), trained from the prepared photos at a low learning rate with augmentation
that shows the network blurred, upscaled, sharp, tilted and recoloured faces alike.

`finetune.gender.enabled: false` (the chapter's frozen recipe) passes the trained model on
unchanged, so `models/gender/` is always the model that evaluation and `facetl predict` use:
its file is copied, not saved again, and its answers on the validation photos come from the
cached features through the saved head (what the train stage calibrated on), not from the
backbone run again on the photos. Either way the final model's no-face group gets its own
temperature here (gender/no_face.py).
"""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np

from facetl.core import paths
from facetl.core.atomic import atomic_path, write_json
from facetl.core.params import load_params, lookup
from facetl.core.plots import training_curves
from facetl.data.splits import carve_validation, load_split
from facetl.gender.no_face import no_face_calibration
from facetl.models.augment import AugmentSettings, augment_batch
from facetl.models.backbones import get_spec, load_model
from facetl.models.calibration import calibrate, rescaled, temperature_of, uncalibrated
from facetl.models.finetune import ImageBatches, finetune, unfreeze_top
from facetl.models.precision import resolve_precision
from facetl.models.saving import load_task_model, save_task_model
from facetl.models.speed import SpeedMeter

TASK = "gender"


def main() -> None:
    params = load_params()
    cfg = lookup(params, f"finetune.{TASK}")
    seed = lookup(params, "seed")
    model, meta = load_task_model(f"{TASK}_head")
    live_dir = paths.plots_dir(TASK) / "finetune"
    images = np.load(paths.prepared_dir(TASK) / "images.npy", mmap_mode="r")
    index, train, _ = load_split(TASK)
    targets = index["label_index"].to_numpy().astype("float32")
    # the people the model did not train on: fine-tuning's own, or else the head's
    val_size = cfg["val_size"] if cfg["enabled"] else lookup(params, f"train.{TASK}.val_size")
    fit_rows, val_rows = carve_validation(index, train, val_size, seed)
    val = np.sort(val_rows)

    speed = SpeedMeter()
    if cfg["enabled"]:
        model, notes = tuned(model, meta, images, targets, fit_rows, val_rows, cfg, seed, speed)
        p_raw = model.predict(ImageBatches(images, targets, val, cfg["batch_size"]), verbose=0)
        model = calibrate(model, p_raw[:, 0], targets[val])
        print(f"calibration: temperature {temperature_of(model):.3f} on {len(val)} validation "
              f"photos")
        p_val = rescaled(p_raw[:, 0], 1 / temperature_of(model))  # what the model says now
    else:
        notes = {"finetuned": False}
        live_dir.mkdir(parents=True, exist_ok=True)
        (live_dir / "NOTE.txt").write_text("fine-tuning off: finetune.gender.enabled is false\n")
        print(f"finetune {TASK}: off (finetune.{TASK}.enabled: false): the frozen model as is")
        head = load_model(paths.model_dir(f"{TASK}_head") / "head.keras")
        features = np.load(paths.features_path(TASK, meta["backbone"]), mmap_mode="r")
        p_val = head.predict(np.asarray(features[val], dtype="float32"), verbose=0)[:, 0]

    no_face = no_face_calibration(model, meta.get("faces") or {"align": False},
                                  meta["input_size"], p_val, targets[val], seed)
    if no_face:
        print(f"no-face group: temperature {no_face['temperature']:.3f} on "
              f"{no_face['fitted_on']['faceless_pictures']} faceless pictures and "
              f"{len(val)} validation photos")
    if cfg["enabled"]:
        save_task_model(TASK, model, None, meta | notes | {"no_face": no_face})
    else:
        passed_on(meta | notes | {"no_face": no_face})
    write_json(paths.metrics_path(f"finetune_{TASK}"), {
        "finetuned": notes["finetuned"], "speed": speed.figures() if notes["finetuned"] else None})


def passed_on(meta: dict) -> None:
    """`models/gender/` as the trained head's model file, copied (saving it again would only
    spend seconds re-serialising the backbone), with its own model.json."""
    with atomic_path(paths.model_dir(TASK)) as tmp:
        tmp.mkdir()
        shutil.copyfile(paths.model_dir(f"{TASK}_head") / "model.keras", tmp / "model.keras")
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n")


def tuned(model: keras.Model, meta: dict, images: np.ndarray, targets: np.ndarray,
          fit_rows: np.ndarray, val_rows: np.ndarray, cfg: dict, seed: int,
          speed: SpeedMeter | None = None) -> tuple[keras.Model, dict]:
    """The model fine-tuned (not yet calibrated), and what model.json says of it."""
    live_dir = paths.plots_dir(TASK) / "finetune"
    settings = AugmentSettings.from_params(cfg["augment"])

    def augment(batch: np.ndarray, batch_targets: np.ndarray, rng: np.random.Generator):
        return augment_batch(batch, rng, settings)[0], batch_targets

    precision = resolve_precision(cfg["precision"], get_spec(meta["backbone"]).bf16_wins_with,
                                  f"finetune.{TASK}.precision")
    keras.utils.set_random_seed(seed)
    model = uncalibrated(model)  # trained on raw probabilities; calibrated again after
    unfrozen = unfreeze_top(model, cfg["unfreeze"])
    history = finetune(model, images, targets, fit_rows, val_rows,
                       cfg | {"loss": "binary_crossentropy", "metrics": ["accuracy"]}, seed,
                       live_dir, augment, precision, speed)
    training_curves(live_dir, live_dir / "training.png")
    epochs = len(history.history["loss"])
    print(f"finetune {TASK}: {len(unfrozen)} backbone layers trained for {epochs} epochs "
          f"({precision})")
    return model, {"finetuned": True, "unfrozen_layers": len(unfrozen), "precision": precision,
                   "epochs_run": epochs}
