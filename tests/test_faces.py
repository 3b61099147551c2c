"""The face front end on a real photo (scikit-image's astronaut) and on photos with no face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from facetl.core.errors import FacetlError
from facetl.data.download import MANIFEST_COLUMNS
from facetl.data.images import read_image
from facetl.faces.crops import crop_faces
from facetl.faces.detect import check_settings, detect, eye_centres, face_crop, landmarks, largest

SIZE = 150
SETTINGS = {"align": True, "upsample": 0, "fallback": "cascade", "size": SIZE, "margin": 0.25}
MIRRORED_POINTS = [2, 3, 0, 1, 4]  # dlib's 5 points: one eye's two corners, the other's, nose


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def points(image: np.ndarray) -> np.ndarray:
    """dlib's 5 landmarks of the largest face in `image` (it must have one), as (5, 2)."""
    status, boxes = detect(image, 1, "image")
    assert status == "found"
    return np.array([(p.x, p.y) for p in landmarks(image, largest(boxes)).parts()], float)


def eye_line_degrees(image: np.ndarray) -> float:
    status, boxes = detect(image, 1, "image")
    assert status == "found"
    left, right = sorted(eye_centres(landmarks(image, largest(boxes))), key=lambda e: e[0])
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REFLECT)


def test_the_astronaut_has_one_face_found_by_dlib(astronaut):
    crop = face_crop(astronaut, SETTINGS)
    assert (crop.status, crop.faces) == ("found", 1)
    x0, y0, x1, y1 = crop.box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # her face, not the suit or the flag
    assert crop.image.shape == (SIZE, SIZE, 3) and crop.image.dtype == np.uint8


def test_alignment_makes_the_eye_line_horizontal(astronaut):
    tilted = rotated(astronaut, 15)
    assert abs(eye_line_degrees(tilted)) > 10
    crop = face_crop(tilted, SETTINGS)
    assert crop.status == "found"
    assert abs(eye_line_degrees(crop.image)) < 3


def test_a_mirrored_photo_gives_the_mirrored_crop(astronaut):
    crop = face_crop(astronaut, SETTINGS).image
    mirrored = face_crop(astronaut[:, ::-1], SETTINGS).image
    back = points(mirrored)
    back[:, 0] = SIZE - 1 - back[:, 0]
    np.testing.assert_allclose(back[MIRRORED_POINTS], points(crop), atol=4)  # px of 150
    same = np.corrcoef(crop.ravel(), mirrored[:, ::-1].ravel())[0, 1]
    unflipped = np.corrcoef(crop.ravel(), mirrored.ravel())[0, 1]
    assert same > 0.9 and unflipped < 0.6


def write_photos(root: Path, photos: dict[str, np.ndarray]) -> pd.DataFrame:
    """A download manifest of `photos` saved as PNGs under root/images, plus a failed row."""
    (root / "images").mkdir(parents=True)
    rows = []
    for number, (name, image) in enumerate(photos.items()):
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        rows.append({"row": number, "source": f"{name}.png", "label": "female", "group": "",
                     "status": "ok", "bytes": 1, "sha256": name, "file": f"images/{name}.png",
                     "detail": ""})
    rows.append({"row": len(rows), "source": "http://x/gone.jpg", "label": "male", "group": "",
                 "status": "http_404", "bytes": 0, "sha256": "", "file": "", "detail": "gone"})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


@pytest.fixture(scope="module")
def photos(astronaut) -> dict[str, np.ndarray]:
    """A face dlib finds, one too small for it that the cascade finds, and no face at all."""
    return {"astronaut": astronaut,
            "small": cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA),
            "blank": np.full((64, 64, 3), 128, np.uint8)}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_photo_gets_a_crop_and_a_recorded_status(tmp_path, photos, workers):
    raw = tmp_path / "raw"
    manifest = write_photos(raw, photos)
    manifest = pd.concat([manifest, manifest.iloc[[0]]], ignore_index=True)  # listed twice
    out = tmp_path / "faces"
    out.mkdir()
    faces = crop_faces(manifest, raw, out, SETTINGS, workers=workers)
    assert len(faces) == len(manifest)  # nothing dropped
    assert list(faces["face"]) == ["found", "fallback", "none", "", "found"]
    assert list(faces["status"]) == list(manifest["status"])
    assert faces["faces"].tolist() == [1, 1, 0, 0, 1]
    assert faces["box"].iloc[2] == "" and len(faces["box"].iloc[1].split()) == 4
    for file in faces["file"].iloc[[0, 1, 2]]:
        assert read_image(out / file).shape == (SIZE, SIZE, 3)
    assert len(list((out / "images").iterdir())) == 3  # the duplicate was cropped once


def test_without_the_cascade_an_undetected_face_keeps_the_whole_photo(photos):
    crop = face_crop(photos["small"], SETTINGS | {"fallback": "image"})
    assert (crop.status, crop.faces, crop.box) == ("none", 0, None)
    assert crop.image.shape == (SIZE, SIZE, 3)


def test_alignment_off_passes_the_photos_through(tmp_path, photos):
    raw = tmp_path / "raw"
    manifest = write_photos(raw, photos)
    out = tmp_path / "faces"
    out.mkdir()
    faces = crop_faces(manifest, raw, out, SETTINGS | {"align": False})
    assert list(faces["face"]) == ["off", "off", "off", ""]
    assert not (out / "images").exists()
    for file, name in zip(faces["file"].iloc[:3], photos, strict=True):
        np.testing.assert_array_equal(read_image(out / file), photos[name])  # unchanged
    assert face_crop(photos["small"], {"align": False}).image is photos["small"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("align", "yes", "faces.align"), ("fallback", "haar", "faces.fallback"),
    ("upsample", 5, "faces.upsample"), ("size", 8, "faces.size"), ("margin", -1, "faces.margin"),
])
def test_bad_face_settings_are_errors_naming_the_param(key, value, message):
    with pytest.raises(FacetlError, match=message):
        check_settings(SETTINGS | {key: value})
    with pytest.raises(FacetlError, match=f"lacks \\['{key}'\\]"):
        check_settings({k: v for k, v in SETTINGS.items() if k != key})
