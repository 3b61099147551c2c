"""The 68 iBUG points: their count, regions, eye corners, and how a mirror image swaps them.

Mirroring a face with 68 iBUG points: the image flips, and left and right points swap.

A mirrored right eye is a left eye, so the mirrored point set is not just x -> width - 1 - x:
point 36 (one outer eye corner) must become point 45 (the other), and so on. Training on
mirrored images without the swap teaches the model to mix up the sides of the face.
"""

from __future__ import annotations

import numpy as np

POINTS = 68
OUTER_EYE_CORNERS = (36, 45)  # their distance normalises the error (NME)
REGIONS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}

# Pairs that trade places in a mirror image (0-based iBUG indices); the rest map to themselves
# (nose bridge 27-30, nose tip 33, lip centres 51, 57, 62, 66, chin 8).
MIRROR_PAIRS = (
    *((i, 16 - i) for i in range(8)),  # jaw, ear to ear
    *((17 + i, 26 - i) for i in range(5)),  # brows, outer end to outer end
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes: corners, lids
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lips
    (60, 64), (61, 63), (65, 67),  # inner lips
)


def mirror_map() -> np.ndarray:
    """`mirrored_points = points[MIRROR]` reorders a point set into its mirror's order."""
    order = np.arange(POINTS)
    for a, b in MIRROR_PAIRS:
        order[a], order[b] = b, a
    return order


MIRROR = mirror_map()


def mirror_points(points: np.ndarray, width: float | np.ndarray) -> np.ndarray:
    """Points (..., 68, 2) in pixels of images `width` wide -> the points of the mirrored images.

    Pixel column c lands on column width - 1 - c when an image is flipped, so a point given as
    a pixel position moves the same way; `width` may hold one width per point set.
    """
    mirrored = np.array(points, dtype="float64")[..., MIRROR, :]
    mirrored[..., 0] = np.expand_dims(np.asarray(width, dtype="float64"), -1) - 1 - mirrored[..., 0]
    return mirrored
