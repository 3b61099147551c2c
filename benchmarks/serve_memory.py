"""Issue 24's memory check: RSS of `facetl serve` after 10 requests and after 1000.

Starts `python -m facetl serve --port 0` (127.0.0.1 only) on the trained models, sends the
requests from 8 clients at once — the photo with and without `all_faces`, and every tenth
request a bad upload (not an image, a decompression bomb) that must get its 4xx — and reads
the server's resident memory (psutil) after the first 10 and after all of them. Flat memory:
the last figure within 20% of the first. Records benchmarks/results/serve_memory.json.

    PYTHONPATH=. python benchmarks/serve_memory.py [--models models] [--image PHOTO]
        [--requests 1000]

The photo defaults to scikit-image's astronaut (one real face). tests/test_serve.py runs the
same measurement with fewer requests on a tiny model (the e2e tier).
"""

from __future__ import annotations

import argparse
import io
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests
from PIL import Image

from benchmarks.odd_inputs import png_bomb

CLIENTS = 8
START_TIMEOUT_S = 300  # loading TensorFlow and the models on a busy 2-core machine
NOT_AN_IMAGE = b"<!doctype html><title>not a photo</title>"


@contextmanager
def running_server(models: Path, log: Path) -> Iterator[tuple[str, int]]:
    """`facetl serve` on a free port of 127.0.0.1; yields (base URL, process id); stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "facetl", "serve", "--port", "0", "--models", str(models)],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    try:
        try:
            first = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty as exc:
            raise RuntimeError(f"facetl serve did not start; see {log}") from exc
        if not first.startswith("facetl serve: http://"):
            raise RuntimeError(f"facetl serve said {first!r}; see {log}")
        yield first.split()[2].rstrip("/"), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send(url: str, number: int, photo: bytes, bomb: bytes) -> None:
    """Request `number` of the mix; raises where the answer is not the expected one."""
    if number % 10 == 9:
        body, expected = (NOT_AN_IMAGE, 415) if number % 20 == 9 else (bomb, 413)
    else:
        body, expected = photo, 200
    flags = {"all_faces": "1"} if number % 2 else {}
    answer = requests.post(f"{url}/predict", params=flags, timeout=300,
                           files=[("image", (f"photo{number}.jpg", body))])
    if answer.status_code != expected:
        raise RuntimeError(f"request {number}: {answer.status_code} (expected {expected}): "
                           f"{answer.text[:200]}")


def rss_after(url: str, pid: int, photo: bytes, checkpoints: list[int]) -> dict[str, float]:
    """The server's RSS in MB after each number of requests in `checkpoints` (ascending),
    CLIENTS requests in flight at a time, and the requests per second over the whole run."""
    server, bomb = psutil.Process(pid), png_bomb(30_000, 30_000)
    figures: dict[str, float] = {}
    done, start = 0, time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for checkpoint in checkpoints:
            list(pool.map(lambda n: send(url, n, photo, bomb), range(done, checkpoint)))
            done = checkpoint
            figures[f"rss_mb_after_{checkpoint}"] = round(server.memory_info().rss / 2**20, 1)
    figures["requests_per_s"] = round(done / (time.perf_counter() - start), 2)
    return figures


def astronaut_jpeg() -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    from benchmarks.results import record

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--image", type=Path, help="photo to send (default: the astronaut)")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    photo = args.image.read_bytes() if args.image else astronaut_jpeg()
    with tempfile.TemporaryDirectory() as scratch, \
            running_server(args.models, Path(scratch) / "serve.log") as (url, pid):
        figures = rss_after(url, pid, photo, [10, args.requests])
    first, last = figures["rss_mb_after_10"], figures[f"rss_mb_after_{args.requests}"]
    figures |= {"growth": round(last / first - 1, 4), "clients": CLIENTS,
                "models": str(args.models), "image": str(args.image or "astronaut")}
    path = record("serve_memory", f"requests_{args.requests}", figures)
    print(f"RSS {first} MB after 10 requests, {last} MB after {args.requests} "
          f"({figures['growth']:+.1%}), {figures['requests_per_s']} requests/s -> {path}")
    if last > 1.2 * first:
        sys.exit("memory grew by more than 20%")


if __name__ == "__main__":
    main()
