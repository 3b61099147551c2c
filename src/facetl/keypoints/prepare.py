"""Stage prepare_keypoints: from the keypoint download manifest to images, points and a
split grouped by person (the same split for both recipes: `keypoints.recipe`).

`chapter`: each image is resized to a square like the chapter, while its points stay in pixels
of the original image beside its original width and height: the model learns x / width and
y / height, and predictions map back to pixels of any input. With `flip`, mirrored copies of
the train images are appended (left and right points swapped), so the feature stage extracts
their features like any other image.

`finetune`: each image becomes its face crop, the square around its landmarks times
`keypoints.crop.margin`, at `keypoints.crop.input_size` (the crop box is in the index: the
points stay in original pixels). Inference cannot use the landmarks, so this stage also fits
what it will use instead (`boxes.json`): the mapping from dlib's detector box to the crop box
(on a sample of training images) and the fallback box (where faces sit in training frames).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap

from facetl.core import paths
from facetl.core.atomic import atomic_path, write_csv, write_json
from facetl.core.errors import FacetlError
from facetl.core.params import load_params, lookup
from facetl.data.download import read_manifest
from facetl.data.images import ImageDecodeError, read_image
from facetl.data.prepare import STAGING, decode_to_staging, write_images
from facetl.data.splits import holdout_mask
from facetl.keypoints.config import keypoint_params, recipe
from facetl.keypoints.crops import (
    box_from_points,
    crop_image,
    fit_detector_calibration,
    fit_prior,
    landmark_square,
    to_crop,
)
from facetl.keypoints.layout import POINTS, mirror_points
from facetl.keypoints.locate import detect_largest
from facetl.keypoints.source import COORDINATE_COLUMNS

INDEX_COLUMNS = ["file", "source", "row", "group", "split", "mirrored", "width", "height",
                 *COORDINATE_COLUMNS]
BOX_COLUMNS = ["crop_x0", "crop_y0", "crop_side"]  # the finetune recipe's crop of each image

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


def crop_boxes(index: pd.DataFrame) -> np.ndarray:
    """(N, 3) the crop box (x0, y0, side) of each prepared face crop, in original pixels."""
    return index[BOX_COLUMNS].to_numpy(dtype="float64")


def crop_targets(index: pd.DataFrame, size: int) -> np.ndarray:
    """(N, 136) float32 points in units of the crop side (x / S, y / S): what the finetune
    recipe's model learns."""
    crop = to_crop(pixel_points(index), crop_boxes(index), size) / size
    return crop.reshape(len(index), -1).astype("float32")


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
    ok = usable_rows(manifest, raw_dir)
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


def usable_rows(manifest: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    ok = manifest[manifest["status"] == "ok"].drop_duplicates("sha256").reset_index(drop=True)
    if ok.empty:
        raise FacetlError(f"no keypoint image was fetched; see the statuses in "
                          f"{raw_dir / 'manifest.csv'} and data.keypoints.images")
    return ok.astype(dict.fromkeys(COORDINATE_COLUMNS, "float64")).copy()  # copy: one block


def calibrate_detector(index: pd.DataFrame, raw_dir: Path, rows: np.ndarray, detector: str,
                       upsample: int) -> dict:
    """dlib's detector on the training images `rows`: the median mapping from its box to the
    landmarks' square (identity when it is off or finds too few faces)."""
    detections, squares = [], []
    if detector == "dlib":
        for i in rows:
            found = detect_largest(read_image(raw_dir / index["file"].iat[i]), upsample)
            if found is not None:
                detections.append(found)
                squares.append(landmark_square(pixel_points(index.iloc[[i]]))[0])
    return fit_detector_calibration(detections, np.array(squares).reshape(-1, 3)).as_dict() | {
        "tried": len(rows) if detector == "dlib" else 0}


def prepare_crops(manifest: pd.DataFrame, raw_dir: Path, out_dir: Path, size: int, margin: float,
                  test_size: float, seed: int, detector: str = "dlib", upsample: int = 1,
                  calibration_images: int = 300) -> pd.DataFrame:
    """Write `images.npy` (N, S, S, 3) face crops, `index.csv` (points in original pixels, crop
    boxes, split) and `boxes.json` (detector calibration, fallback prior) to out_dir."""
    ok = usable_rows(manifest, raw_dir)
    boxes = box_from_points(pixel_points(ok), margin)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        staging = open_memmap(tmp / STAGING, mode="w+", dtype=np.uint8,
                              shape=(len(ok), size, size, 3))
        shapes = np.zeros((len(ok), 2), dtype=int)

        def one(i: int) -> str:
            try:
                image = read_image(raw_dir / ok["file"].iat[i])
            except (ImageDecodeError, OSError) as exc:
                print(f"skipped {ok['source'].iat[i]}: cannot decode ({exc})")
                return "x"
            shapes[i] = image.shape[:2]
            staging[i] = crop_image(image, boxes[i], size)
            return ""

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            decoded = np.array([not e for e in pool.map(one, range(len(ok)))], dtype=bool)
        index = ok[decoded].reset_index(names="staging")
        index["height"], index["width"] = shapes[index["staging"]].T
        index[BOX_COLUMNS] = boxes[index["staging"]]
        test = holdout_mask(np.zeros(len(index), dtype=int), index["group"].to_numpy(),
                            test_size, seed)
        index["split"] = np.where(test, "test", "train")
        index["mirrored"] = False  # the finetune recipe flips on the fly (augmentation)
        train = np.flatnonzero(~test)
        sample = np.sort(np.random.default_rng(seed).permutation(train)[:calibration_images])
        write_json(tmp / "boxes.json", {
            "margin": margin, "detector": detector, "upsample": upsample,
            "calibration": calibrate_detector(index, raw_dir, sample, detector, upsample),
            "prior": fit_prior(landmark_square(pixel_points(index.iloc[train])),
                               index[["width", "height"]].to_numpy()[train])})
        write_images(staging, index["staging"].to_numpy(), tmp)
        write_csv(tmp / "index.csv", index[INDEX_COLUMNS + BOX_COLUMNS])
    return index[INDEX_COLUMNS + BOX_COLUMNS]


def main() -> None:
    params = load_params()
    cfg = lookup(params, "prepare.keypoints")
    if recipe(params) == "finetune":
        kp = keypoint_params(params)
        index = prepare_crops(read_manifest(paths.raw_dir(TASK)), paths.raw_dir(TASK),
                              paths.prepared_dir(TASK), kp["crop"]["input_size"],
                              float(kp["crop"]["margin"]), cfg["test_size"], lookup(params, "seed"),
                              kp["inference"]["detector"], int(kp["inference"]["upsample"]),
                              int(kp["crop"]["calibration_images"]))
        boxes = json.loads((paths.prepared_dir(TASK) / "boxes.json").read_text())
        calibration = boxes["calibration"]
        print(f"prepare {TASK} (finetune): {index['group'].nunique()} people, "
              f"{index['split'].value_counts().to_dict()} face crops; detector box -> crop "
              f"fitted on {calibration['fitted_on']} of {calibration['tried']} train images")
        return
    index = prepare_keypoints(read_manifest(paths.raw_dir(TASK)), paths.raw_dir(TASK),
                              paths.prepared_dir(TASK), cfg["input_size"], cfg["test_size"],
                              lookup(params, "seed"), bool(cfg["flip"]))
    counts = index.groupby(["split", "mirrored"]).size().to_dict()
    print(f"prepare {TASK}: {index['group'].nunique()} people, images by (split, mirrored) "
          f"{counts}")
