"""Face crops for the finetune recipe: points and pixels move together, flips swap sides, and
the second pass crops around the first pass's points."""

from __future__ import annotations

import numpy as np
import pytest

from facetl.keypoints.crops import (
    DetectorCalibration,
    box_from_points,
    crop_image,
    fit_detector_calibration,
    fit_prior,
    from_crop,
    landmark_square,
    prior_square,
    to_crop,
)
from facetl.keypoints.layout import MIRROR, mirror_points
from facetl.keypoints.locate import first_boxes, locate, predict_crops
from facetl.keypoints.train import point_augmenter
from facetl.models.augment import AugmentSettings
from tests.synthetic import face_template


def face(scale: float = 60.0, offset=(30.0, 40.0)) -> np.ndarray:
    return face_template() * scale + np.asarray(offset)


def test_crop_and_uncrop_round_trip_exactly():
    rng = np.random.default_rng(0)
    points = rng.uniform(-20, 300, (5, 68, 2))
    boxes = np.column_stack([rng.uniform(-50, 100, (5, 2)), rng.uniform(10, 400, 5)])
    for size in (32, 160, 224):
        back = from_crop(to_crop(points, boxes, size), boxes, size)
        np.testing.assert_allclose(back, points, rtol=0, atol=1e-9)
    # one box, one point set: the same rule
    np.testing.assert_allclose(from_crop(to_crop(points[0], boxes[0], 64), boxes[0], 64),
                               points[0], atol=1e-9)


def test_box_from_points_frames_the_points_with_the_margin():
    points = face()
    box = box_from_points(points, 1.25)
    crop = to_crop(points, box, 100)
    spread = crop.max(axis=0) - crop.min(axis=0)
    assert spread.max() == pytest.approx(100 / 1.25)
    centre = (crop.max(axis=0) + crop.min(axis=0)) / 2
    np.testing.assert_allclose(centre, [50, 50], atol=1e-9)


@pytest.mark.parametrize("side", [40.0, 90.0, 300.0])  # enlarged, shrunk, shrunk with a pre-filter
def test_crop_pixels_land_where_to_crop_puts_the_points(side):
    """A bright blob in the photo lands on the point `to_crop` computes, for every scale."""
    image = np.zeros((400, 500, 3), dtype=np.uint8)
    point = np.array([[230.0, 170.0]])
    image[165:176, 225:236] = 255  # an 11 px square centred on the point
    box = np.array([230.0 - 0.4 * side, 170.0 - 0.55 * side, side])
    crop = crop_image(image, box, 64).astype(float)[..., 0]
    expected = to_crop(point, box, 64)[0]
    ys, xs = np.nonzero(crop)
    found = np.array([np.average(xs, weights=crop[ys, xs]), np.average(ys, weights=crop[ys, xs])])
    np.testing.assert_allclose(found, expected, atol=0.3)


def test_outside_the_photo_is_black():
    image = np.full((50, 50, 3), 200, dtype=np.uint8)
    crop = crop_image(image, np.array([-50.0, -50.0, 100.0]), 20)
    assert (crop[:9, :9] == 0).all() and (crop[11:, 11:] == 200).all()


def test_augmented_flip_moves_pixels_and_swaps_sides_with_the_mirror_map():
    """Flip only: every crop is either unchanged or mirrored, and its points with it (in crop
    units, as the trainer passes them), the left eye's corner becoming the right one's."""
    size = 32
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (16, size, size, 3), dtype=np.uint8)
    targets = (face(20.0, (5.0, 4.0)) / size).reshape(1, -1).repeat(16, axis=0)
    augment = point_augmenter(AugmentSettings(flip=True), size)
    out_images, out_targets = augment(images, targets.astype("float32"), rng)
    flipped = 0
    for i in range(16):
        points = out_targets[i].reshape(68, 2) * size
        if (out_images[i] == images[i]).all():
            np.testing.assert_allclose(points, targets[i].reshape(68, 2) * size, atol=1e-4)
        else:
            flipped += 1
            assert (out_images[i] == images[i][:, ::-1]).all()
            expected = mirror_points(targets[i].reshape(68, 2) * size, size)
            np.testing.assert_allclose(points, expected, atol=1e-4)
            assert points[36, 0] < points[45, 0]  # 36 is still the corner on the left
    assert 0 < flipped < 16


def test_flip_averaging_maps_the_mirrored_prediction_back():
    """A model that is exactly right on both the crop and its mirror: averaging must give the
    same points back (it would not if the mirrored prediction were not un-mirrored)."""
    size = 32
    crop = np.random.default_rng(2).integers(0, 255, (1, size, size, 3), dtype=np.uint8)
    truth = face(20.0, (4.0, 6.0)) + np.linspace(0, 3, 68)[:, None]  # asymmetric

    def predict(crops):
        mirrored = (crops == crop[:, :, ::-1]).all()
        points = mirror_points(truth, size) if mirrored else truth
        return (points / size).reshape(1, -1)

    np.testing.assert_allclose(predict_crops(predict, crop, flip_tta=True)[0], truth,
                               atol=1e-9)
    assert MIRROR[36] == 45


def test_the_second_pass_crops_around_the_first_pass_points(monkeypatch):
    """A model that predicts the truth inside any crop that shows it: from a poor first box,
    the second pass's box is the box of the (true) points, as training crops are made."""
    truth = face(80.0, (60.0, 50.0))
    photo = np.zeros((240, 260, 3), dtype=np.uint8)
    boxes_seen = []

    def recording_crop(image, box, size):
        boxes_seen.append(np.array(box))
        return crop_image(image, box, size)

    monkeypatch.setattr("facetl.keypoints.locate.crop_image", recording_crop)

    def predict(crops):
        return (to_crop(truth, boxes_seen[-1], 32) / 32).reshape(1, -1)

    first = np.array([[20.0, 10.0, 200.0]])
    located = locate(predict, [photo], first, ["prior"], 32, 1.25, passes=2, flip_tta=False)
    np.testing.assert_allclose(boxes_seen[0], first[0])
    np.testing.assert_allclose(boxes_seen[1], box_from_points(truth, 1.25), atol=1e-9)
    np.testing.assert_allclose(located.points[0], truth, atol=1e-9)
    np.testing.assert_allclose(located.boxes[0], box_from_points(truth, 1.25), atol=1e-9)
    assert len(located.passes) == 2 and located.sources == ["prior"]


def test_detector_calibration_recovers_offsets_and_inverts():
    rng = np.random.default_rng(3)
    squares = np.column_stack([rng.uniform(50, 150, (20, 2)), rng.uniform(40, 90, 20)])
    side = squares[:, 2] / 1.1
    centre = squares[:, :2] - np.column_stack([0.02 * side, 0.15 * side])
    detections = [(cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)
                  for (cx, cy), s in zip(centre, side, strict=True)]
    calibration = fit_detector_calibration(detections, squares)
    assert (calibration.dx, calibration.dy, calibration.ratio) == pytest.approx((0.02, 0.15, 1.1))
    np.testing.assert_allclose(calibration.square(detections[0]), squares[0], atol=1e-9)
    np.testing.assert_allclose(calibration.detection(squares[0]), detections[0], atol=1e-9)
    assert fit_detector_calibration(detections[:2], squares[:2]) == DetectorCalibration(fitted_on=2)


def test_no_face_found_falls_back_to_the_prior_box():
    points = np.stack([face(40.0, (20.0, 30.0)), face(50.0, (30.0, 20.0))])
    prior = fit_prior(landmark_square(points), np.array([[100, 120], [100, 120]]))
    photos = [np.zeros((120, 100, 3), np.uint8), np.zeros((240, 200, 3), np.uint8)]
    boxes, sources = first_boxes(photos, [None, (10, 10, 90, 90)], DetectorCalibration(),
                                 prior, 1.25)
    assert sources == ["prior", "dlib"]
    square = prior_square(prior, 100, 120)
    np.testing.assert_allclose(boxes[0, 2], square[2] * 1.25)
    np.testing.assert_allclose(boxes[1], [10 - 0.125 * 80, 10 - 0.125 * 80, 100.0])
