"""The faces stage's speed: photos per second with one process and with every core, how busy
the cores were, and whether both ways give the same crops (issue 33, point 4).

Runs `facetl.faces.crops.crop_faces` (the stage's own code) on the first --n photos of a folder
with the `faces` settings of params.yaml, once in-process and once with a worker per core, and
records the figures in benchmarks/results/faces_speed.json under --label.

    PYTHONPATH=. python benchmarks/faces_speed.py --n 400 --label after
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import CELEBA
from facetl.core.params import load_params, lookup
from facetl.data.download import MANIFEST_COLUMNS
from facetl.faces.crops import crop_faces, usable_cores
from facetl.faces.detect import check_settings

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def photo_manifest(images: Path, n: int) -> pd.DataFrame:
    """A download manifest of the first `n` photos of `images` (as the download stage writes)."""
    files = sorted(p.name for p in images.iterdir() if p.is_file())[:n]
    return pd.DataFrame([{"row": i, "source": name, "label": "", "group": "", "status": "ok",
                          "bytes": 0, "sha256": Path(name).stem, "file": name, "detail": ""}
                         for i, name in enumerate(files)], columns=MANIFEST_COLUMNS)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers, once joined)."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def timed_run(manifest: pd.DataFrame, images: Path, settings: dict, workers: int
              ) -> tuple[dict[str, float], list[str]]:
    """Photos/s, the share of the cores kept busy and the CPU time per photo (which other work
    on the machine changes least) of one crop_faces run; and each crop's sha256 in order."""
    with tempfile.TemporaryDirectory() as folder:
        start, cpu = time.perf_counter(), cpu_seconds()
        faces = crop_faces(manifest, images, Path(folder), settings, workers=workers)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        digests = [hashlib.sha256((Path(folder) / f).read_bytes()).hexdigest()
                   for f in faces["file"]]
    figures = {"workers": workers, "seconds": round(seconds, 2),
               "photos_per_s": round(len(manifest) / seconds, 2),
               "cores_busy": round(cpu / seconds / usable_cores(), 2),
               "cpu_ms_per_photo": round(1000 * cpu / len(manifest), 1)}
    return figures, digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=CELEBA / "images")
    parser.add_argument("--n", type=int, default=400, help="photos (the first n, sorted)")
    parser.add_argument("--label", default="after", help="the entry's name in the results file")
    parser.add_argument("--note", default="", help="what code ran, when not this checkout's")
    add_results_dir(parser)
    args = parser.parse_args()
    settings = check_settings(lookup(load_params(PARAMS), "faces"))
    manifest = photo_manifest(args.images, args.n)
    load_before = os.getloadavg()[0]  # other work on the machine takes cores from this one
    serial, serial_crops = timed_run(manifest, args.images, settings, 1)
    parallel, parallel_crops = timed_run(manifest, args.images, settings, usable_cores())
    figures = {"photos": len(manifest), "cores": usable_cores(), "serial": serial,
               "parallel": parallel, "speedup": round(serial["seconds"] / parallel["seconds"], 2),
               "same_crops": serial_crops == parallel_crops,
               "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
               "note": args.note}
    print(figures)
    print(record("faces_speed", args.label, figures, args.results_dir))


if __name__ == "__main__":
    main()
