"""The stages' bodies: each reads its params, calls the library, writes its outputs.

`stages/*.py` are one-line wrappers around these, so the logic stays importable and tested.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import keras
import numpy as np
import pandas as pd

from facetl import paths
from facetl.atomic import atomic_path, write_csv, write_json
from facetl.backbones import build_extractor, get_spec, load_model
from facetl.download import FetchPolicy, download, fetch_text, read_manifest
from facetl.errors import FacetlError
from facetl.face_crops import crop_faces
from facetl.faces import check_settings
from facetl.features import NpyRows, extract_to_npy, replica_strategy
from facetl.heads import chapter_head
from facetl.images import read_image, resize_square
from facetl.keypoint_source import keypoint_rows
from facetl.linear_head import HEAD_TYPES, fit_linear_head, log_cv_curve
from facetl.metrics import binary_report, roc_points
from facetl.params import lookup
from facetl.plots import confusion_plot, cv_curve_plot, image_grid, roc_plot, training_curves
from facetl.precision import resolve_precision
from facetl.prepare import prepare
from facetl.sources import load_rows
from facetl.splits import holdout_mask, person_groups
from facetl.training import feature_max, fit


def keypoint_stages() -> ModuleType:
    """The keypoints task's own stage bodies (imported late: they build on this module)."""
    from facetl import keypoints

    return keypoints


def download_stage(task: str, params: dict[str, Any]) -> None:
    cfg = lookup(params, "download")
    policy = FetchPolicy(timeout_s=cfg["timeout_s"], retries=cfg["retries"],
                         backoff_s=cfg["backoff_s"], max_bytes=int(cfg["max_mb"] * 2**20))
    if task == "keypoints":
        rows = keypoint_rows(lookup(params, "data.keypoints"), paths.raw_dir(task))
    else:
        rows = load_rows(lookup(params, f"data.{task}"), lambda url: fetch_text(url, policy))
    manifest = download(rows, paths.raw_dir(task), policy, cfg["workers"])
    counts = manifest["status"].value_counts().to_dict()
    print(f"download {task}: {len(manifest)} rows, statuses {counts}")
    for row in manifest[manifest["status"] != "ok"].head(5).itertuples():
        print(f"  e.g. {row.source}: {row.status} {row.detail}")


def faces_stage(task: str, params: dict[str, Any]) -> None:
    """Aligned face crops (or, with `faces.align: false`, the photos as they are) + manifest."""
    settings = check_settings(lookup(params, "faces"))
    manifest = read_manifest(paths.raw_dir(task))
    start = time.perf_counter()
    with atomic_path(paths.faces_dir(task)) as tmp:  # beside the final folder: same depth
        tmp.mkdir()
        faces = crop_faces(manifest, paths.raw_dir(task), tmp, settings)
        write_csv(tmp / "manifest.csv", faces)
    seconds = time.perf_counter() - start
    photos = faces[faces["status"] == "ok"].drop_duplicates("sha256")
    counts = {status: int((photos["face"] == status).sum())
              for status in ("found", "fallback", "none", "off")}

    def rate(count: int) -> float | None:  # share of the photos; none when detection was off
        return round(count / max(1, len(photos)), 4) if settings["align"] else None

    write_json(paths.metrics_path(f"faces_{task}"), counts | {
        "align": settings["align"], "photos": len(photos), "seconds": round(seconds, 2),
        "detection_rate": rate(counts["found"]),
        "face_rate": rate(counts["found"] + counts["fallback"])})
    face_gallery(task, photos, paths.plots_dir(task) / "faces.png")
    print(f"faces {task}: {counts} of {len(photos)} photos in {seconds:.1f} s")


def face_gallery(task: str, photos: pd.DataFrame, path: Path, per_status: int = 6) -> None:
    """A few crops of each status: how the front end framed the photos."""
    shown = photos.groupby("face", sort=True).head(per_status)
    images = [resize_square(read_image(paths.faces_dir(task) / f), 96) for f in shown["file"]]
    titles = [f"{row.face} ({row.faces} seen)" for row in shown.itertuples()]
    image_grid(images, titles, path, columns=per_status, suptitle="face front end: crops")


def prepare_stage(task: str, params: dict[str, Any]) -> None:
    if task == "keypoints":
        return keypoint_stages().prepare_stage(params)
    cfg = lookup(params, f"prepare.{task}")
    manifest = read_manifest(paths.faces_dir(task))
    classes = [str(c).lower() for c in lookup(params, f"data.{task}.classes")]
    index = prepare(manifest, paths.faces_dir(task), paths.prepared_dir(task), classes,
                    cfg["input_size"], cfg["test_size"], lookup(params, "seed"), cfg["balance"])
    print(f"prepare {task}: {index.groupby(['split', 'label']).size().to_dict()}")


def features_stage(task: str, params: dict[str, Any]) -> None:
    name = lookup(params, "backbone")
    settings = lookup(params, f"backbones.{name}")
    cfg = lookup(params, "features")
    precision = resolve_precision(cfg["precision"], get_spec(name).bf16_wins_with)
    keras.utils.set_random_seed(lookup(params, "seed"))  # `weights: none` is reproducible too
    strategy = replica_strategy(cfg["multi_gpu"])
    with NpyRows(paths.prepared_dir(task) / "images.npy") as images:
        with strategy.scope():
            model = build_extractor(name, settings["weights"], images.shape[1],
                                    settings.get("preprocess"), precision)
        seconds = extract_to_npy(model, images, paths.features_path(task, name),
                                 cfg["batch_size"], cfg["storage"],
                                 distributed=strategy.num_replicas_in_sync > 1)
    with atomic_path(paths.extractor_path(task, name)) as tmp:
        model.save(tmp)
    write_json(paths.metrics_path(f"features_{task}"), {
        "backbone": name, "precision": precision, "images": len(images),
        "seconds": round(seconds, 2), "images_per_s": round(len(images) / seconds, 2)})
    print(f"features {task}: {name} ({precision}) {len(images) / seconds:.1f} img/s")


def load_split(task: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    index = pd.read_csv(paths.prepared_dir(task) / "index.csv", dtype={"group": str},
                        keep_default_na=False)
    train = np.flatnonzero(index["split"] == "train")
    test = np.flatnonzero(index["split"] == "test")
    return index, train, test


def carve_validation(index: pd.DataFrame, train: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation rows come from the train split only (the chapter validated on its test set).

    Stratified by class where the task has classes, grouped by person where people are known.
    """
    labels = (index["label_index"].to_numpy()[train] if "label_index" in index
              else np.zeros(len(train), dtype=int))
    held = holdout_mask(labels, person_groups(index.iloc[train]), fraction, seed)
    return train[~held], train[held]


def train_stage(task: str, params: dict[str, Any]) -> None:
    if task == "keypoints":
        return keypoint_stages().train_stage(params)
    name = lookup(params, "backbone")
    head_cfg = lookup(params, "head")
    seed = lookup(params, "seed")
    features = np.load(paths.features_path(task, name), mmap_mode="r")
    index, train, _ = load_split(task)
    head = fit_classifier_head(name, features, index, train, params, seed,
                               paths.plots_dir(task))
    save_models(task, name, head, {
        "classes": [str(c).lower() for c in lookup(params, f"data.{task}.classes")],
        "head": head_cfg["type"], "faces": lookup(params, "faces")})


def fit_classifier_head(name: str, features: np.ndarray, index: pd.DataFrame, train: np.ndarray,
                        params: dict[str, Any], seed: int,
                        plots_dir: Path | None = None) -> keras.Model:
    """The head named by `head.type`, trained on the `train` rows only (seeded).

    With `plots_dir`, its training curves go to `training/` (dvclive) and `training.png` there;
    without, nothing is logged (the repeated splits only want the head).
    """
    cfg, head_cfg = lookup(params, "train"), lookup(params, "head")
    if head_cfg["type"] not in HEAD_TYPES:
        raise FacetlError(f"head.type must be one of {HEAD_TYPES}, got {head_cfg['type']!r}")
    keras.utils.set_random_seed(seed)
    targets = index["label_index"].to_numpy().astype("float32")
    if head_cfg["type"] == "linear":  # C by cross-validation on the train split: no val carve
        fitted = fit_linear_head(features, targets.astype(int), train, person_groups(index),
                                 head_cfg, seed)
        if plots_dir:
            log_cv_curve(fitted.cv, plots_dir / "training")
            cv_curve_plot(fitted.cv, fitted.c, plots_dir / "training.png")
        print(f"linear head: C={fitted.c:g} by {head_cfg['folds']}-fold CV")
        return fitted.head
    fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
    head = chapter_head(features.shape[1:], get_spec(name).head_blocks, 1, "sigmoid",
                        feature_max(features, fit_rows), cfg["dropout"])
    fit(head, features, targets, fit_rows, val_rows,
        cfg | {"loss": "binary_crossentropy", "metrics": ["accuracy"]}, seed,
        plots_dir / "training" if plots_dir else None)
    if plots_dir:
        training_curves(plots_dir / "training", plots_dir / "training.png")
    return head


def save_models(task: str, name: str, head: keras.Model, meta: dict[str, Any]) -> None:
    """The head alone (for evaluation) and image -> prediction in one file (for inference).

    `model.json` beside them says what the outputs mean (`meta`: classes, point units...).
    """
    extractor = load_model(paths.extractor_path(task, name))
    image = keras.Input(extractor.input_shape[1:], name="image")
    end_to_end = keras.Model(image, head(extractor(image)), name=f"{task}_{name}")
    with atomic_path(paths.model_dir(task)) as tmp:
        tmp.mkdir()
        head.save(tmp / "head.keras")
        end_to_end.save(tmp / "model.keras")
        (tmp / "model.json").write_text(json.dumps({
            "task": task, "backbone": name, "input_size": extractor.input_shape[1],
        } | meta, indent=2) + "\n")


def evaluate_stage(task: str, params: dict[str, Any]) -> None:
    if task == "keypoints":
        return keypoint_stages().evaluate_stage(params)
    name = lookup(params, "backbone")
    out = paths.plots_dir(task)
    features = np.load(paths.features_path(task, name), mmap_mode="r")
    index, _, test = load_split(task)
    head = load_model(paths.model_dir(task) / "head.keras")
    p_positive = head.predict(np.asarray(features[test], dtype="float32"), verbose=0)[:, 0]
    labels = index["label_index"].to_numpy()[test]
    report = binary_report(labels, p_positive)
    classes = json.loads((paths.model_dir(task) / "model.json").read_text())["classes"]
    write_json(paths.metrics_path(task), {"backbone": name} | report)
    roc = roc_points(labels, p_positive)
    write_csv(out / "roc.csv", pd.DataFrame(roc).round(5))
    predicted = (p_positive >= 0.5).astype(int)
    predictions = index.iloc[test][["file", "source", "label", "group"]].assign(
        p_positive=p_positive.round(5), predicted=np.array(classes)[predicted],
        correct=predicted == labels)
    write_csv(out / "predictions.csv", predictions)
    write_csv(out / "confusion.csv", predictions[["label", "predicted"]].rename(
        columns={"label": "actual"}))
    roc_plot(roc["fpr"], roc["tpr"], report["auc"], out / "roc.png")
    confusion_plot(report["confusion"], classes, out / "confusion.png")
    misclassified_gallery(task, test, predictions, classes,
                          lookup(params, "evaluate.gallery_size"), out / "misclassified.png")
    print(f"evaluate {task}: accuracy {report['accuracy']:.4f} "
          f"CI95 [{report['accuracy_ci95'][0]:.4f}, {report['accuracy_ci95'][1]:.4f}] "
          f"AUC {report['auc']} on {report['n_test']} test images")


def misclassified_gallery(task: str, test: np.ndarray, predictions: pd.DataFrame,
                          classes: list[str], size: int, path: Path) -> None:
    images = np.load(paths.prepared_dir(task) / "images.npy", mmap_mode="r")
    wrong = np.flatnonzero(~predictions["correct"].to_numpy())[:size]
    titles = [f"true {row.label}, p({classes[1]})={row.p_positive:.2f}"
              for row in predictions.iloc[wrong].itertuples()]
    image_grid([images[test[i]] for i in wrong], titles, path, columns=4,
               suptitle=f"misclassified test photos ({len(wrong)} shown)")
