"""Issue 5's memory check: peak RSS of the real features stage at N=1000 and N=4000 images.

Each run is the stage script itself (`stages/features_gender.py`) in a scratch workspace whose
prepared array holds N random 224x224 images; peak RSS comes from the kernel (wait4).
Flat memory means the N=4000 peak stays within ~10% of the N=1000 one.

    PYTHONPATH=. python benchmarks/features_memory.py [--sizes 1000 4000] [--backbone mobilenet_v2]
        [--input-size 224] [--results-dir DIR]

Records benchmarks/results/features_memory.json, entry `<backbone>-<input size>`: each N's peak
RSS and wall time, and the last N's peak over the first's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from numpy.lib.format import open_memmap

from benchmarks.results import add_results_dir, record

REPO = Path(__file__).resolve().parents[1]


def workspace(root: Path, count: int, size: int, backbone: str) -> Path:
    (root / "data/prepared/gender").mkdir(parents=True)
    images = open_memmap(root / "data/prepared/gender/images.npy", mode="w+", dtype=np.uint8,
                         shape=(count, size, size, 3))
    rng = np.random.default_rng(0)
    for start in range(0, count, 500):  # written in chunks: the benchmark stays flat too
        stop = min(count, start + 500)
        images[start:stop] = rng.integers(0, 256, (stop - start, size, size, 3), dtype=np.uint8)
    images.flush()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["backbone"] = backbone
    params["backbones"][backbone]["weights"] = "none"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def peak_rss_mb(cwd: Path) -> tuple[float, float]:
    """Run the features stage in `cwd`; return (peak RSS in MB, wall seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(REPO / "stages/features_gender.py")],
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the features stage failed in {cwd}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--input-size", type=int, default=224)
    add_results_dir(parser)
    args = parser.parse_args()
    runs = []
    for count in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = workspace(Path(tmp), count, args.input_size, args.backbone)
            peak, seconds = peak_rss_mb(cwd)
            runs.append({"images": count, "peak_rss_mb": peak, "seconds": seconds})
            print(f"N={count}: peak RSS {peak:.0f} MB, {seconds:.0f} s", flush=True)
    ratio = runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"]
    print(f"peak RSS N={args.sizes[-1]} / N={args.sizes[0]}: {ratio:.3f}")
    path = record("features_memory", f"{args.backbone}-{args.input_size}",
                  {"runs": runs, "peak_ratio_last_over_first": ratio}, args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
