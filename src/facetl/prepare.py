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

from facetl.atomic import atomic_path, write_csv
from facetl.errors import FacetlError
from facetl.images import ImageDecodeError, read_image, resize_square
from facetl.splits import holdout_mask


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
    workers = os.cpu_count() or 1
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        staging = open_memmap(tmp / "staging.npy", mode="w+", dtype=np.uint8,
                              shape=(len(ok), input_size, input_size, 3))
        errors = decode_all([raw_dir / f for f in ok["file"]], input_size, staging, workers)
        for name, error in zip(ok["file"], errors, strict=True):
            if error:
                print(f"skipped {name}: cannot decode ({error})")
        usable = ok[[not e for e in errors]].copy()
        check_classes(usable["label"], classes)
        usable["label_index"] = usable["label"].map(classes.index)
        labels = usable["label_index"].to_numpy()
        chosen = balance(labels, seed) if balanced else np.arange(len(usable))
        index = usable.iloc[chosen].reset_index()  # keeps the staging row as column "index"
        groups = index["group"].to_numpy() if index["group"].astype(bool).any() else None
        test = holdout_mask(index["label_index"].to_numpy(), groups, test_size, seed)
        index["split"] = np.where(test, "test", "train")
        images = open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                             shape=(len(index), input_size, input_size, 3))
        for start in range(0, len(index), 256):
            rows = index["index"].to_numpy()[start:start + 256]
            images[start:start + len(rows)] = staging[rows]
        images.flush()
        del images, staging
        (tmp / "staging.npy").unlink()
        index = index.drop(columns="index")
        write_csv(tmp / "index.csv", index[["file", "source", "label", "label_index", "group",
                                            "split"]])
    return index
