"""The 68-point mirror map, and mirrored images agreeing with their mirrored points."""

from __future__ import annotations

import numpy as np

from facetl.data.images import mirror_image
from facetl.keypoints.layout import MIRROR, mirror_points
from facetl.keypoints.metrics import REGIONS
from tests.synthetic import face_template

LEFT_EYE, RIGHT_EYE = range(36, 42), range(42, 48)


def test_mirroring_twice_is_the_identity():
    assert (MIRROR[MIRROR] == np.arange(68)).all()
    points = np.random.default_rng(0).uniform(-5, 60, (4, 68, 2))
    widths = np.array([50, 60, 71, 64])
    np.testing.assert_allclose(mirror_points(mirror_points(points, widths), widths), points)


def test_eyes_swap_sides():
    assert MIRROR[36] == 45 and MIRROR[45] == 36  # the outer corners
    assert MIRROR[39] == 42  # the inner corners
    assert sorted(MIRROR[list(LEFT_EYE)]) == list(RIGHT_EYE)
    assert sorted(MIRROR[list(RIGHT_EYE)]) == list(LEFT_EYE)


def test_brows_jaw_and_mouth_swap_and_the_midline_stays():
    assert MIRROR[0] == 16 and MIRROR[17] == 26 and MIRROR[21] == 22
    assert MIRROR[48] == 54 and MIRROR[31] == 35 and MIRROR[60] == 64
    for middle in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert MIRROR[middle] == middle
    for points in REGIONS.values():  # a mirrored jaw point is still a jaw point
        assert set(MIRROR[list(points)]) == set(points)


def test_a_symmetric_face_is_its_own_mirror_image():
    width = 101
    face = face_template() * (width - 1)  # symmetric about the middle pixel column
    np.testing.assert_allclose(mirror_points(face, width), face, atol=1e-9)


def test_mirrored_image_and_mirrored_points_agree():
    """A point marked on pixel (2, 1) of a 9 px wide image lands where the flip puts it."""
    points = np.zeros((68, 2))
    points[36] = [2, 1]  # the face's right outer eye corner
    image = np.zeros((5, 9, 3), dtype=np.uint8)
    image[1, 2] = 255
    flipped = mirror_image(image)
    mirrored = mirror_points(points, width=9)
    y, x = np.argwhere(flipped[..., 0] == 255)[0]
    assert tuple(mirrored[45]) == (x, y) == (6, 1)  # and it is now the other eye's corner


def test_mirror_image_flips_batches_too():
    batch = np.arange(2 * 3 * 4 * 3).reshape(2, 3, 4, 3)
    assert (mirror_image(batch)[1] == mirror_image(batch[1])).all()
    assert (mirror_image(batch)[0, :, 0] == batch[0, :, -1]).all()
