"""Pictures with no face in them: what a model is shown when the front end finds no face and
a user gave it something other than a face photo. The no-face group's calibration is fitted on
them and measured on others.

Drawn with numpy from a seed (no data file: the same pictures on every machine), in kinds that
cover what a classifier of photos sees least: noise, smooth blobs, gradients, stripes and flat
shapes, each at a random size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SIZES = (32, 320)  # pixels per side, drawn uniformly: tiny thumbnails to photo crops


def noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.uniform(0, 255, (h, w, 3))


def smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Noise on a coarse grid, enlarged: soft colour blobs."""
    coarse = rng.uniform(0, 255, (rng.integers(2, 8), rng.integers(2, 8), 3))
    rows = np.linspace(0, coarse.shape[0] - 1, h).round().astype(int)
    cols = np.linspace(0, coarse.shape[1] - 1, w).round().astype(int)
    return coarse[rows][:, cols]


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w]
    t = (x * np.cos(angle) + y * np.sin(angle)) / (h + w)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return start + (end - start) * t[..., None]


def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    period = rng.uniform(4, max(h, w) / 2)
    wave = np.sin((x if rng.random() < 0.5 else y) * 2 * np.pi / period)[..., None]
    return 127.5 + 127.5 * wave * rng.uniform(0.2, 1, 3)


def shapes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Flat rectangles on a flat background."""
    picture = np.broadcast_to(rng.uniform(0, 255, 3), (h, w, 3)).copy()
    for _ in range(rng.integers(1, 6)):
        top, left = rng.integers(0, h), rng.integers(0, w)
        picture[top:top + rng.integers(4, h), left:left + rng.integers(4, w)] = \
            rng.uniform(0, 255, 3)
    return picture


KINDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "noise": noise, "smooth": smooth, "gradient": gradient, "stripes": stripes,
    "shapes": shapes}


def faceless_pictures(count: int, seed: int, kinds: tuple[str, ...] = tuple(KINDS)
                      ) -> list[np.ndarray]:
    """`count` uint8 RGB pictures, the kinds in turn, each of a random height and width."""
    rng = np.random.default_rng(seed)
    pictures = []
    for i in range(count):
        h, w = rng.integers(*SIZES, size=2)
        drawn = KINDS[kinds[i % len(kinds)]](rng, int(h), int(w))
        pictures.append(np.clip(drawn, 0, 255).astype(np.uint8))
    return pictures
