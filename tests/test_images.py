"""Decoding any common format to RGB uint8, with failures sorted into manifest statuses."""

from __future__ import annotations

import numpy as np
import pytest

from facetl.data.images import (
    ImageDecodeError,
    decode_image,
    image_format,
    read_image,
    resize_square,
)


@pytest.mark.parametrize("kind", ["jpeg", "png", "gray_jpeg", "rgba_png", "cmyk_jpeg",
                                  "palette_png"])
def test_every_format_decodes_to_rgb_uint8(samples, rgb, kind):
    image = decode_image(samples[kind])
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    if kind in ("gray_jpeg", "palette_png"):
        return  # colour is reduced by the format itself
    # The same picture (an inverted CMYK would be ~180 off): the JPEGs' loss is a few levels.
    assert np.abs(image.astype(int) - rgb).mean() < 5


@pytest.mark.parametrize("kind", ["png", "rgba_png"])
def test_lossless_formats_decode_exactly(samples, rgb, kind):
    np.testing.assert_array_equal(decode_image(samples[kind]), rgb)


def test_grayscale_becomes_three_equal_channels(samples):
    image = decode_image(samples["gray_jpeg"])
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


def test_format_is_sniffed_from_content_not_name(tmp_path, samples, rgb):
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes(samples["png"])
    np.testing.assert_array_equal(read_image(disguised), rgb)
    assert image_format(samples["png"]) == "png"
    assert image_format(samples["cmyk_jpeg"]) == "jpg"


def test_truncated_jpeg_is_a_corrupt_image(samples):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(samples["truncated_jpeg"])
    assert caught.value.status == "corrupt_image"


@pytest.mark.parametrize("data", [b"", b"\x00" * 100, b"GIF89a"],
                         ids=["empty", "zeros", "gif-magic-only"])
def test_non_images_are_not_an_image(data):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data)
    assert caught.value.status == "not_an_image"


def test_html_page_is_not_an_image(samples):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(samples["html"])
    assert caught.value.status == "not_an_image"


def test_decompression_bomb_is_refused_not_a_crash(samples):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(samples["bomb_png"])
    assert caught.value.status == "too_large"


@pytest.mark.parametrize(("shape", "size"), [
    ((32, 32, 3), 16),  # shrink
    ((32, 32, 3), 75),  # enlarge
    ((40, 24, 3), 32),  # not square: aspect not kept, like the chapter
    ((1, 1, 3), 8),
])
def test_resize_square_shapes(shape, size):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    resized = resize_square(image, size)
    assert resized.shape == (size, size, 3) and resized.dtype == np.uint8


def test_resize_square_keeps_a_flat_colour():
    flat = np.full((40, 24, 3), (10, 120, 250), dtype=np.uint8)
    for size in (8, 64):
        np.testing.assert_array_equal(resize_square(flat, size),
                                      np.full((size, size, 3), (10, 120, 250), dtype=np.uint8))
