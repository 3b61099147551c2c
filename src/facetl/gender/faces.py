"""Stage faces_gender: aligned face crops (or, `faces.align: false`, the photos as they are),
with a manifest saying what the front end did for each photo and a gallery to look at."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from facetl.core import paths
from facetl.core.atomic import atomic_path, write_csv, write_json
from facetl.core.params import load_params, lookup
from facetl.core.plots import image_grid
from facetl.data.download import read_manifest
from facetl.data.images import read_image, resize_square
from facetl.faces.crops import crop_faces
from facetl.faces.detect import check_settings

TASK = "gender"
STATUSES = ("found", "fallback", "none", "off")


def main() -> None:
    settings = check_settings(lookup(load_params(), "faces"))
    manifest = read_manifest(paths.raw_dir(TASK))

    start = time.perf_counter()
    with atomic_path(paths.faces_dir(TASK)) as tmp:  # beside the final folder: same depth
        tmp.mkdir()
        faces = crop_faces(manifest, paths.raw_dir(TASK), tmp, settings)
        write_csv(tmp / "manifest.csv", faces)
    seconds = time.perf_counter() - start

    photos = faces[faces["status"] == "ok"].drop_duplicates("sha256")
    counts = {status: int((photos["face"] == status).sum()) for status in STATUSES}

    def rate(count: int) -> float | None:  # share of the photos; none when detection was off
        return round(count / max(1, len(photos)), 4) if settings["align"] else None

    dropped = dropped_photos(manifest, faces)
    write_json(paths.metrics_path(f"faces_{TASK}"), counts | {
        "align": settings["align"], "photos": len(photos), "seconds": round(seconds, 2),
        "ms_per_photo": round(1000 * seconds / max(1, len(photos)), 1),
        "detection_rate": rate(counts["found"]),
        "face_rate": rate(counts["found"] + counts["fallback"])} | dropped)
    face_gallery(photos)
    print(f"faces {TASK}: {counts} of {len(photos)} photos in {seconds:.1f} s")
    for photo in dropped["dropped_photos"]:
        print(f"  dropped {photo['source']}: {photo['status']} {photo['detail']}")


def dropped_photos(manifest: pd.DataFrame, faces: pd.DataFrame, listed: int = 20
                   ) -> dict[str, Any]:
    """The downloaded photos this stage could not crop, counted by reason, the first `listed`
    named with why (a photo changed on disk since the download, or one the front end failed
    on): the rest of the photos went on without them."""
    lost = faces[(manifest["status"] == "ok").to_numpy() & (faces["status"] != "ok").to_numpy()]
    lost = lost.drop_duplicates("sha256")
    return {"dropped": len(lost), "dropped_by_reason": {reason: int(count) for reason, count
                                                  in lost["status"].value_counts().items()},
            "dropped_photos": [{"source": row.source, "status": row.status,
                                "detail": row.detail} for row in lost.head(listed).itertuples()]}


def face_gallery(photos: pd.DataFrame, per_status: int = 6) -> None:
    """A few crops of each status: how the front end framed the photos."""
    shown = photos.groupby("face", sort=True).head(per_status)
    images = [resize_square(read_image(paths.faces_dir(TASK) / f), 96) for f in shown["file"]]
    titles = [f"{row.face} ({row.faces} seen)" for row in shown.itertuples()]
    image_grid(images, titles, paths.plots_dir(TASK) / "faces.png", columns=per_status,
               suptitle="face front end: crops")
