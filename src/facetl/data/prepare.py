"""From a download manifest to a uint8 image array, labels and a train/test split.

Images are decoded in parallel (both cores) and written straight into a preallocated `.npy`,
so memory stays flat however many images there are.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap
from tqdm import tqdm

from facetl.core.atomic import atomic_path, write_csv
from facetl.core.errors import FacetlError
from facetl.data.images import ImageDecodeError, mirror_image, read_image, resize_square
from facetl.data.splits import holdout_mask, person_groups

STAGING = "staging.npy"


def decode_all(files: list[Path], size: int, out: np.ndarray, workers: int,
               shapes: np.ndarray | None = None) -> list[str]:
    """Decode and resize each file into `out[i]`; return an error message per file ("" if ok).

    `shapes[i]`, when given, receives the original (height, width): keypoints need it.
    """

    def one(i: int) -> str:
        try:
            image = read_image(files[i])
        except (ImageDecodeError, OSError) as exc:
            return f"{exc}"
        out[i] = resize_square(image, size)
        if shapes is not None:
            shapes[i] = image.shape[:2]
        return ""

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(one, range(len(files))), total=len(files), desc="decode",
                         unit="img"))


def decode_to_staging(files: list[Path], names: list[str], folder: Path, size: int,
                      shapes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize every file into `folder/staging.npy` on all cores.

    Returns the staging array and a mask of the files that decoded: the others are printed
    (as `names` calls them) and skipped, not fatal. `shapes` as in `decode_all`.
    """
    staging = open_memmap(folder / STAGING, mode="w+", dtype=np.uint8,
                          shape=(len(files), size, size, 3))
    errors = decode_all(files, size, staging, os.cpu_count() or 1, shapes)
    for name, error in zip(names, errors, strict=True):
        if error:
            print(f"skipped {name}: cannot decode ({error})")
    return staging, np.array([not error for error in errors], dtype=bool)


def write_images(staging: np.ndarray, rows: np.ndarray, folder: Path,
                 mirrored: np.ndarray | None = None, chunk: int = 256) -> None:
    """`folder/images.npy` = staging[rows], flipped left-right where `mirrored`, a chunk at a time.

    The staging file is removed afterwards: only the final array stays in the prepared folder.
    """
    images = open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8,
                         shape=(len(rows), *staging.shape[1:]))
    for start in range(0, len(rows), chunk):
        block = staging[rows[start:start + chunk]]
        if mirrored is not None:
            flip = mirrored[start:start + chunk]
            block[flip] = mirror_image(block[flip])
        images[start:start + len(block)] = block
    images.flush()
    del images
    (folder / STAGING).unlink()


def balance(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices keeping an equal number of each class (a seeded sample of the larger ones)."""
    rng = np.random.default_rng(seed)
    smallest = np.bincount(labels).min()
    keep = [rng.choice(np.flatnonzero(labels == c), smallest, replace=False)
            for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def check_classes(labels: pd.Series, classes: list[str]) -> None:
    counts = labels.value_counts()
    empty = [c for c in classes if counts.get(c, 0) == 0]
    if empty:
        raise FacetlError(
            f"no usable image of class {empty} (counts: {counts.to_dict()}); check the source's "
            "label column and data.<task>.classes, and the download manifest's statuses"
        )


def prepare(manifest: pd.DataFrame, raw_dir: Path, out_dir: Path, classes: list[str],
            input_size: int, test_size: float, seed: int, balanced: bool = True) -> pd.DataFrame:
    """Write `images.npy` (N, S, S, 3) uint8 and `index.csv` (label, group, split) to out_dir."""
    ok = manifest[manifest["status"] == "ok"].drop_duplicates("sha256").reset_index(drop=True)
    check_classes(ok["label"], classes)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        staging, decoded = decode_to_staging([raw_dir / f for f in ok["file"]],
                                             list(ok["file"]), tmp, input_size)
        usable = ok[decoded].copy()
        check_classes(usable["label"], classes)
        usable["label_index"] = usable["label"].map(classes.index)
        labels = usable["label_index"].to_numpy()
        chosen = balance(labels, seed) if balanced else np.arange(len(usable))
        index = usable.iloc[chosen].reset_index()  # keeps the staging row as column "index"
        test = holdout_mask(index["label_index"].to_numpy(), person_groups(index), test_size,
                            seed)
        index["split"] = np.where(test, "test", "train")
        write_images(staging, index["index"].to_numpy(), tmp)
        index = index.drop(columns="index")
        # `face`: what the face front end did for the photo, when it ran (faces_gender)
        columns = ["file", "source", "label", "label_index", "group", "split"]
        write_csv(tmp / "index.csv", index[columns + (["face"] if "face" in index else [])])
    return index
