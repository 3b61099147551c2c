"""From a download manifest to aligned face crops and a manifest of the same format.

The new manifest has one row per source row, as the download's: `file` points at the crop
(relative to the new manifest's folder), and `face` (found / fallback / none / off), `faces`
(how many the detector saw) and `box` (x0 y0 x1 y1 in the photo: the face aligned, or for
`none` the centred square) say what happened. So `prepare` reads it as it reads a download
manifest. With alignment off, `file` points back at the downloaded photo unchanged.

dlib holds Python's GIL, so the photos are shared out to worker processes, one per core this
process may use (spawned, not forked: the stage's own process has TensorFlow loaded), in chunks,
the results in the photos' order: the same crops as one process (tests/test_faces.py).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from tqdm import tqdm

from facetl.data.images import ImageDecodeError, read_image
from facetl.faces.detect import FaceCrop, FaceFrontEndError, face_crop

NOT_CROPPED = {"face": "", "faces": 0, "box": ""}  # rows the download did not get
# zlib level of the crops: the same pixels as PIL's default 6 for a fifth of the encoding time
# (which had cost as much as HOG), files a fifth larger (benchmarks/results/faces_speed.json)
PNG_LEVEL = 1


def crop_one(job: tuple[Path, Path, str, dict[str, Any]]) -> dict[str, Any]:
    """Crop one photo to `out_dir/name` as PNG; a photo that no longer decodes, or that the
    front end fails on, is reported in its row (`status`, `detail`) and the others go on."""
    source, out_dir, name, settings = job
    try:
        crop = face_crop(read_image(source), settings)
    except (ImageDecodeError, OSError, FaceFrontEndError) as exc:
        status = "face_error" if isinstance(exc, FaceFrontEndError) else "unreadable"
        return {"status": getattr(exc, "status", status), "detail": str(exc),
                "file": ""} | NOT_CROPPED
    Image.fromarray(crop.image).save(out_dir / name, format="PNG", compress_level=PNG_LEVEL)
    return {"file": name} | face_fields(crop)


def face_fields(crop: FaceCrop) -> dict[str, Any]:
    return {"face": crop.status, "faces": crop.faces,
            "box": " ".join(map(str, crop.box)) if crop.box else ""}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's share), else
    every core the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def map_in_workers(function: Callable, jobs: list, workers: int) -> list:
    """`function` over `jobs` in order, in `workers` spawned processes (in-process for one)."""
    progress = {"total": len(jobs), "desc": "faces", "unit": "img"}
    if workers <= 1 or len(jobs) < 2:
        return list(tqdm(map(function, jobs), **progress))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(tqdm(pool.map(function, jobs, chunksize=8), **progress))


def crop_faces(manifest: pd.DataFrame, raw_dir: Path, out_dir: Path, settings: dict[str, Any],
               workers: int | None = None) -> pd.DataFrame:
    """Write `out_dir/images/<sha256>.png` per downloaded photo; return the new manifest.

    `out_dir` must exist (the caller writes it atomically). Each distinct photo is cropped
    once, however many rows list it.
    """
    ok = manifest["status"] == "ok"
    if settings["align"]:
        (out_dir / "images").mkdir()
        photos = manifest[ok].drop_duplicates("sha256")
        jobs = [(raw_dir / file, out_dir, f"images/{digest}.png", settings)
                for file, digest in zip(photos["file"], photos["sha256"], strict=True)]
        results = map_in_workers(crop_one, jobs, workers or usable_cores())
        by_photo = dict(zip(photos["sha256"], results, strict=True))
    else:
        by_photo = {row.sha256: {"file": os.path.relpath(raw_dir / row.file, out_dir),
                                 "face": "off", "faces": 0, "box": ""}
                    for row in manifest[ok].itertuples()}
    rows = [row | (by_photo[row["sha256"]] if row["status"] == "ok" else NOT_CROPPED)
            for row in manifest.to_dict("records")]
    return pd.DataFrame(rows, columns=[*manifest.columns, *NOT_CROPPED])
