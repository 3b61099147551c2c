"""Issue 5's prepare check: decode + resize on one core vs all cores, in one run.

Uses the shared CelebA photos when present (`../shared`), else synthetic JPEGs.

    PYTHONPATH=. python benchmarks/prepare_speed.py [--size 300] [--images 4000] [--repeats 3]
        [--results-dir DIR]

Records benchmarks/results/prepare_speed.json, entry `<size>px`: images/s of each repeat with
one worker and with every core.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import CELEBA
from facetl.data.prepare import decode_all

PHOTOS = CELEBA / "images"


def photo_files(count: int, scratch: Path) -> list[Path]:
    files = sorted(PHOTOS.glob("*.jpg"))[:count] if PHOTOS.is_dir() else []
    if len(files) == count:
        return files
    rng = np.random.default_rng(0)
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)).save(buffer, "JPEG")
        (scratch / f"{i}.jpg").write_bytes(buffer.getvalue())
    return sorted(scratch.glob("*.jpg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    add_results_dir(parser)
    args = parser.parse_args()
    rates: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = photo_files(args.images, Path(tmp))
        photos = "synthetic" if files[0].is_relative_to(tmp) else PHOTOS.parent.name
        out = np.empty((len(files), args.size, args.size, 3), dtype=np.uint8)
        for workers in sorted({1, os.cpu_count() or 1}) * args.repeats:
            start = time.perf_counter()
            decode_all(files, args.size, out, workers)
            seconds = time.perf_counter() - start
            rates.setdefault(workers, []).append(len(files) / seconds)
            print(f"workers={workers}: {len(files) / seconds:.0f} img/s", flush=True)
    figures = {"images": len(files), "photos": photos,
               "by_workers": [{"workers": workers, "images_per_s": values,
                               "median_images_per_s": float(np.median(values))}
                              for workers, values in rates.items()]}
    path = record("prepare_speed", f"{args.size}px", figures, args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
