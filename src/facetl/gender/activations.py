"""Views inside the networks, as PNGs under plots/activations/.

The chapter's "visualising intermediate layers" on the active backbone's extractor (the first
convolution's first channels for one photo, one of its channels across many photos, the last
convolution's channels for one photo), and beyond the chapter, Grad-CAM of the trained gender
model over misclassified and correctly classified test photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from keras import ops

from facetl.core import paths
from facetl.core.atomic import atomic_path
from facetl.core.errors import FacetlError
from facetl.core.params import load_params, lookup
from facetl.core.plots import image_grid
from facetl.data.splits import load_split
from facetl.inspect.gradcam import gradcam, overlay
from facetl.inspect.taps import LayerPath, intermediate_model, resolve_conv_layer
from facetl.models.backbones import load_model
from facetl.models.saving import load_task_model


def pick_test_row(index: pd.DataFrame, test: np.ndarray, choice: int | str) -> int:
    """The images.npy row of a test photo: its position in the test split, or its file name."""
    if isinstance(choice, int):
        if not 0 <= choice < len(test):
            raise FacetlError(f"activations: test photo #{choice} does not exist; the test "
                              f"split has {len(test)} photos (0 to {len(test) - 1})")
        return int(test[choice])
    names = index.iloc[test]
    hits = np.flatnonzero((names["file"] == choice) | (names["source"] == choice)
                          | (names["source"].map(lambda s: Path(s).name) == choice))
    if not len(hits):
        examples = ", ".join(names["source"].map(lambda s: Path(s).name).head(5))
        raise FacetlError(f"activations: {choice!r} is not a test photo; give a position in the "
                          f"test split or a file name from it (e.g. {examples})")
    return int(test[hits[0]])


def pick_test_rows(index: pd.DataFrame, test: np.ndarray, choice: int | list) -> np.ndarray:
    """A count (the first test photos) or a list of positions or file names -> rows."""
    if isinstance(choice, int):
        return test[:choice]
    return np.array([pick_test_row(index, test, item) for item in choice], dtype=int)


def layer_maps(model: keras.Model, path: LayerPath, images: np.ndarray,
               channels: np.ndarray | None = None, batch_size: int = 4) -> np.ndarray:
    """The layer's output (N, h, w, channels) in float32, a few photos at a time.

    Keeping only the wanted channels per batch keeps memory small: a 300 px photo's first
    VGG layer alone is 23 MB.
    """
    tap = intermediate_model(model, path)
    maps = []
    for start in range(0, len(images), batch_size):
        # Cast before leaving the backend: a bfloat16 torch tensor has no numpy form.
        out = ops.convert_to_numpy(ops.cast(tap(np.asarray(images[start:start + batch_size]),
                                                training=False), "float32"))
        maps.append(out if channels is None else out[..., channels])
    return np.concatenate(maps)


def layer_views(extractor: keras.Model, images: np.ndarray, index: pd.DataFrame,
                test: np.ndarray, cfg: dict[str, Any], out: Path) -> None:
    """The chapter's three figures: first layer on one photo, one channel, last layer."""
    one = pick_test_row(index, test, cfg["image"])
    label = index["label"].iloc[one]
    first = resolve_conv_layer(extractor, cfg["first_layer"])
    maps = layer_maps(extractor, first, images[[one]])[0]
    shown = range(min(cfg["channels"], maps.shape[-1]))
    image_grid([maps[..., c] for c in shown], [f"channel {c}" for c in shown],
               out / "first_layer.png", cmap="viridis",
               suptitle=f"{first[-1]} {maps.shape}: first {len(shown)} channels, one {label} "
                        "test photo")

    many = pick_test_rows(index, test, cfg["images"])
    if not 0 <= cfg["channel"] < maps.shape[-1]:
        raise FacetlError(f"activations.channel: layer {first[-1]} has {maps.shape[-1]} "
                          f"channels (0 to {maps.shape[-1] - 1}), not {cfg['channel']}")
    across = layer_maps(extractor, first, images[many], np.array([cfg["channel"]]))[..., 0]
    image_grid(list(across), list(index["label"].iloc[many]), out / "channel_across_images.png",
               cmap="viridis", suptitle=f"{first[-1]} channel {cfg['channel']} on "
                                        f"{len(many)} test photos")

    last = resolve_conv_layer(extractor, cfg["last_layer"])
    maps = layer_maps(extractor, last, images[[one]])[0]
    strongest = np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:cfg["channels"]]
    image_grid([maps[..., c] for c in strongest], [f"channel {c}" for c in strongest],
               out / "last_layer.png", cmap="viridis",
               suptitle=f"{last[-1]} {maps.shape}: the {len(strongest)} most active channels, "
                        f"same {label} photo")


def gradcam_views(task: str, extractor: keras.Model, images: np.ndarray, index: pd.DataFrame,
                  test: np.ndarray, cfg: dict[str, Any], out: Path) -> None:
    """Grad-CAM of the trained end-to-end model over wrong and right test predictions."""
    model, meta = load_task_model(task)
    predictions = pd.read_csv(paths.plots_dir(task) / "predictions.csv", dtype={"file": str},
                              keep_default_na=False)
    if predictions["file"].tolist() != index["file"].iloc[test].tolist():
        raise FacetlError(f"{paths.plots_dir(task) / 'predictions.csv'} does not list the test "
                          f"split of {paths.prepared_dir(task)}; rerun `dvc repro`")
    path = (extractor.name, *resolve_conv_layer(extractor, cfg["gradcam_layer"]))
    correct = predictions["correct"].astype(str).str.lower().eq("true").to_numpy()
    for kind, rows in (("misclassified", test[~correct]), ("correct", test[correct])):
        rows = rows[:cfg["gradcam_images"]]
        shown, titles = [], []
        if len(rows):
            heatmaps, p_positive = gradcam(model, path, np.asarray(images[rows]),
                                           cfg["gradcam_method"])
            shown = [overlay(images[r], h, cfg["gradcam_alpha"])
                     for r, h in zip(rows, heatmaps, strict=True)]
            titles = [f"true {index['label'].iloc[r]}, p({meta['classes'][1]})={p:.2f}"
                      for r, p in zip(rows, p_positive, strict=True)]
        image_grid(shown, titles, out / f"gradcam_{kind}.png", columns=4,
                   suptitle=f"{cfg['gradcam_method']} at {path[-1]}: {len(rows)} {kind} "
                            "test photos")


def main() -> None:
    """Stage activations: the chapter's layer grids, then Grad-CAM of the gender model."""
    task = "gender"
    params = load_params()
    cfg = lookup(params, "activations")
    name = lookup(params, "backbone")
    images = np.load(paths.prepared_dir(task) / "images.npy", mmap_mode="r")
    index, _, test = load_split(task)
    extractor = load_model(paths.extractor_path(task, name))
    out = paths.plots_dir("activations")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        layer_views(extractor, images, index, test, cfg, tmp)
        gradcam_views(task, extractor, images, index, test, cfg, tmp)
    print(f"activations {task}: {name}'s layers and Grad-CAM written to {out}/")
