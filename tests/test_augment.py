"""Augmentation: identity when off, points that follow the pixels, and the photo blemishes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facetl.models.augment import AugmentSettings, augment_batch

SIZE = 48


def noise_images(count: int = 4, seed: int = 0) -> np.ndarray:
    """Smooth random pictures: blur, JPEG and downscaling all visibly change them."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, SIZE // 4, SIZE // 4, 3), dtype=np.uint8)
    return np.stack([cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
                     + rng.integers(0, 40, (SIZE, SIZE, 3), dtype=np.uint8) for image in small])


def dot_image(x: int, y: int) -> np.ndarray:
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    cv2.circle(image, (x, y), 2, (255, 255, 255), thickness=-1)
    return image


def centroid(image: np.ndarray) -> np.ndarray:
    weights = image[..., 0].astype("float64")
    rows, cols = np.indices(weights.shape)
    return np.array([(cols * weights).sum(), (rows * weights).sum()]) / weights.sum()


def test_identity_settings_leave_images_unchanged() -> None:
    images = noise_images()
    points = np.random.default_rng(1).uniform(0, SIZE, (4, 5, 2))
    out, moved = augment_batch(images, np.random.default_rng(0), AugmentSettings(), points)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(moved, points)
    assert out is not images


def test_points_follow_the_pixels() -> None:
    rng = np.random.default_rng(3)
    settings = AugmentSettings(flip=True, rotate_deg=30, scale=0.15, shift=0.1)
    dots = rng.integers(SIZE // 3, 2 * SIZE // 3, (16, 1, 2))
    images = np.stack([dot_image(int(x), int(y)) for (x, y), in dots])
    out, moved = augment_batch(images, rng, settings, dots, mirror=np.array([0]))
    found = np.stack([centroid(image) for image in out])
    np.testing.assert_allclose(found, moved[:, 0], atol=1.5)
    assert not np.allclose(moved, dots)


def test_flip_swaps_left_and_right_points() -> None:
    images = noise_images(8)
    points = np.tile(np.array([[5.0, 10.0], [40.0, 12.0]]), (8, 1, 1))  # left eye, right eye
    out, moved = augment_batch(images, np.random.default_rng(0), AugmentSettings(flip=True),
                               points, mirror=np.array([1, 0]))
    flipped = (out != images).any(axis=(1, 2, 3))
    assert flipped.any() and not flipped.all()
    np.testing.assert_array_equal(out[flipped], images[flipped][:, :, ::-1])
    expected = np.array([[SIZE - 1 - 40.0, 12.0], [SIZE - 1 - 5.0, 10.0]])
    np.testing.assert_allclose(moved[flipped], np.broadcast_to(expected, (flipped.sum(), 2, 2)))
    np.testing.assert_array_equal(moved[~flipped], points[~flipped])


def test_flip_with_points_needs_a_mirror_map() -> None:
    points = np.zeros((4, 2, 2))
    with pytest.raises(ValueError, match="mirror"):
        augment_batch(noise_images(), np.random.default_rng(0), AugmentSettings(flip=True), points)
    with pytest.raises(ValueError, match="permutation"):
        augment_batch(noise_images(), np.random.default_rng(0), AugmentSettings(flip=True), points,
                      mirror=np.array([0, 0]))


@pytest.mark.parametrize("settings", [
    AugmentSettings(downscale_p=1.0, downscale_min=0.3),
    AugmentSettings(blur_p=1.0, blur_sigma=2.0),
    AugmentSettings(jpeg_p=1.0, jpeg_quality_min=10),
    AugmentSettings(brightness=0.3, contrast=0.3, saturation=0.3, grayscale_p=0.5),
], ids=["downscale", "blur", "jpeg", "colour"])
def test_degradations_keep_dtype_and_shape_and_change_pixels(settings: AugmentSettings) -> None:
    images = noise_images()
    out, points = augment_batch(images, np.random.default_rng(0), settings)
    assert out.dtype == np.uint8 and out.shape == images.shape and points is None
    assert (out != images).any(axis=(1, 2, 3)).all()


def test_grayscale_makes_channels_equal() -> None:
    out, _ = augment_batch(noise_images(), np.random.default_rng(0),
                           AugmentSettings(grayscale_p=1.0))
    assert (out == out[..., :1]).all()


def test_same_seed_same_output() -> None:
    settings = AugmentSettings(flip=True, rotate_deg=20, scale=0.1, shift=0.05, brightness=0.2,
                               contrast=0.2, saturation=0.2, grayscale_p=0.2, downscale_p=0.5,
                               blur_p=0.5, jpeg_p=0.5)
    points = np.random.default_rng(1).uniform(0, SIZE, (4, 2, 2))
    runs = [augment_batch(noise_images(), np.random.default_rng(seed), settings, points, [1, 0])
            for seed in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert (runs[0][0] != runs[2][0]).any()


def test_settings_from_params() -> None:
    assert AugmentSettings.from_params(None) == AugmentSettings()
    assert AugmentSettings.from_params({"flip": True, "rotate_deg": 10}).rotate_deg == 10
    with pytest.raises(ValueError, match=r"'rotation'.*rotate_deg"):
        AugmentSettings.from_params({"rotation": 10})
    with pytest.raises(ValueError, match="probability"):
        AugmentSettings.from_params({"blur_p": 2})
