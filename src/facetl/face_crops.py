"""From a download manifest to aligned face crops and a manifest of the same format.

The new manifest has one row per source row, as the download's: `file` points at the crop
(relative to the new manifest's folder), and `face` (found / fallback / none / off), `faces`
(how many the detector saw) and `box` (x0 y0 x1 y1 in the photo) say what happened. So
`prepare` reads it as it reads a download manifest. With alignment off, `file` points back at
the downloaded photo unchanged.

dlib holds Python's GIL, so the photos are shared out to worker processes (spawned, not
forked: the stage's own process has TensorFlow loaded).
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

from facetl.faces import FaceCrop, face_crop
from facetl.images import ImageDecodeError, read_image

FACE_COLUMNS = ["face", "faces", "box"]


def crop_one(job: tuple[Path, Path, dict[str, Any]]) -> dict[str, Any]:
    """Crop one photo to `out`, as PNG; a photo that no longer decodes is reported, not fatal."""
    source, out, settings = job
    try:
        crop = face_crop(read_image(source), settings)
    except (ImageDecodeError, OSError) as exc:
        return {"status": getattr(exc, "status", "unreadable"), "detail": str(exc),
                "face": "", "faces": 0, "box": ""}
    Image.fromarray(crop.image).save(out, format="PNG")
    return face_fields(crop)


def face_fields(crop: FaceCrop) -> dict[str, Any]:
    return {"face": crop.status, "faces": crop.faces,
            "box": " ".join(map(str, crop.box)) if crop.box else ""}


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
    """Write `out_dir/images/<sha256>.png` per usable photo; return the new manifest.

    `out_dir` must exist (the caller writes it atomically). Each distinct photo is cropped
    once, however many rows list it.
    """
    manifest = manifest.copy()
    ok = manifest["status"] == "ok"
    if not settings["align"]:
        manifest.loc[ok, "file"] = [os.path.relpath(raw_dir / f, out_dir)
                                    for f in manifest.loc[ok, "file"]]
        return manifest.assign(face=ok.map({True: "off", False: ""}), faces=0, box="")
    (out_dir / "images").mkdir()
    photos = manifest[ok].drop_duplicates("sha256")
    crops = [f"images/{digest}.png" for digest in photos["sha256"]]
    jobs = [(raw_dir / file, out_dir / crop, settings)
            for file, crop in zip(photos["file"], crops, strict=True)]
    results = pd.DataFrame(map_in_workers(crop_one, jobs, workers or os.cpu_count() or 1),
                           index=photos["sha256"])
    results["file"] = crops
    results.loc[results["face"] == "", "file"] = ""
    by_photo = results.reindex(manifest["sha256"].where(ok))
    for column in ["file", *FACE_COLUMNS]:
        manifest[column] = by_photo[column].to_numpy() if column in by_photo else ""
        manifest.loc[~ok, column] = 0 if column == "faces" else ""
    for column in ("status", "detail"):
        if column in by_photo:
            failed = ok.to_numpy() & by_photo[column].notna().to_numpy()
            manifest.loc[failed, column] = by_photo[column].to_numpy()[failed]
    return manifest
