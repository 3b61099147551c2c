"""Stage prepare_keypoints: from the keypoint download manifest to images, points and a
split grouped by person.

Each image is resized to a square like the chapter, while its points stay in pixels of the
original image beside its original width and height: the model learns x / width and
y / height, and predictions map back to pixels of any input. With `flip`, mirrored copies of
the train images are appended (left and right points swapped), so the feature stage extracts
their features like any other image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facetl.core import paths
from facetl.core.atomic import atomic_path, write_csv
from facetl.core.errors import FacetlError
from facetl.core.params import load_params, lookup
from facetl.data.download import read_manifest
from facetl.data.prepare import decode_to_staging, write_images
from facetl.data.splits import holdout_mask
from facetl.keypoints.schema import POINTS, mirror_points
from facetl.keypoints.source import COORDINATE_COLUMNS

INDEX_COLUMNS = ["file", "source", "row", "group", "split", "mirrored", "width", "height",
                 *COORDINATE_COLUMNS]

TASK = "keypoints"


def pixel_points(index: pd.DataFrame) -> np.ndarray:
    """(N, 68, 2) points in pixels of each original image."""
    return index[COORDINATE_COLUMNS].to_numpy(dtype="float64").reshape(-1, POINTS, 2)


def image_sizes(index: pd.DataFrame) -> np.ndarray:
    """(N, 1, 2) width and height of each original image, shaped to scale point sets."""
    return index[["width", "height"]].to_numpy(dtype="float64")[:, None, :]


def normalised_targets(index: pd.DataFrame) -> np.ndarray:
    """(N, 136) float32 x / width, y / height: what the head learns (the chapter's units)."""
    return (pixel_points(index) / image_sizes(index)).reshape(len(index), -1).astype("float32")


def mirrored_copies(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the mirrored images: points flipped in x and reordered left <-> right."""
    mirrored = rows.copy()
    points = mirror_points(pixel_points(rows), rows["width"].to_numpy())
    mirrored[COORDINATE_COLUMNS] = points.reshape(len(rows), -1)
    mirrored["mirrored"] = True
    return mirrored


def prepare_keypoints(manifest: pd.DataFrame, raw_dir: Path, out_dir: Path, input_size: int,
                      test_size: float, seed: int, flip: bool = False) -> pd.DataFrame:
    """Write `images.npy` (N, S, S, 3) uint8 and `index.csv` (points, sizes, split) to out_dir."""
    ok = manifest[manifest["status"] == "ok"].drop_duplicates("sha256").reset_index(drop=True)
    ok = ok.astype(dict.fromkeys(COORDINATE_COLUMNS, "float64")).copy()  # copy: one block
    if ok.empty:
        raise FacetlError(f"no keypoint image was fetched; see the statuses in "
                          f"{raw_dir / 'manifest.csv'} and data.keypoints.images")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        shapes = np.zeros((len(ok), 2), dtype=int)
        staging, decoded = decode_to_staging([raw_dir / f for f in ok["file"]],
                                             list(ok["source"]), tmp, input_size, shapes)
        index = ok[decoded].reset_index(names="staging")
        index["height"], index["width"] = shapes[index["staging"]].T
        test = holdout_mask(np.zeros(len(index), dtype=int), index["group"].to_numpy(),
                            test_size, seed)
        index["split"] = np.where(test, "test", "train")
        index["mirrored"] = False
        if flip:
            index = pd.concat([index, mirrored_copies(index[~test])], ignore_index=True)
        write_images(staging, index["staging"].to_numpy(), tmp,
                     index["mirrored"].to_numpy(dtype=bool))
        write_csv(tmp / "index.csv", index[INDEX_COLUMNS])
    return index[INDEX_COLUMNS]


def main() -> None:
    params = load_params()
    cfg = lookup(params, "prepare.keypoints")
    index = prepare_keypoints(read_manifest(paths.raw_dir(TASK)), paths.raw_dir(TASK),
                              paths.prepared_dir(TASK), cfg["input_size"], cfg["test_size"],
                              lookup(params, "seed"), bool(cfg["flip"]))
    counts = index.groupby(["split", "mirrored"]).size().to_dict()
    print(f"prepare {TASK}: {index['group'].nunique()} people, images by (split, mirrored) "
          f"{counts}")
