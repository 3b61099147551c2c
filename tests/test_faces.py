"""The face front end on a real photo (scikit-image's astronaut), a tight crop of her face, and
photos with no face."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from facetl.core.errors import FacetlError
from facetl.data.download import MANIFEST_COLUMNS
from facetl.data.images import read_image, resize_square
from facetl.faces import crops as crops_module
from facetl.faces import detect as front_end
from facetl.faces.crops import crop_faces
from facetl.faces.detect import (
    check_settings,
    detect,
    detection_view,
    eye_centres,
    face_crop,
    landmarks,
    largest,
    to_photo,
)

SIZE = 150
SETTINGS = {"align": True, "upsample": 1, "detect_long_side": 240, "pad": 0.3, "cnn": False,
            "crop_size": SIZE, "margin": 0.25}
ASTRONAUT_FACE = (179, 77, 271, 169)  # where the chain finds her face in the 512 x 512 photo
TIGHT = (189, 93, 256, 166)  # x0, y0, x1, y1: inside that box, so her face fills the frame
MIRRORED_POINTS = [2, 3, 0, 1, 4]  # dlib's 5 points: one eye's two corners, the other's, nose


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def tight(astronaut) -> np.ndarray:
    """Her face cropped so tightly that HOG misses it without a border (checked below)."""
    x0, y0, x1, y1 = TIGHT
    return np.ascontiguousarray(astronaut[y0:y1, x0:x1])


def points(image: np.ndarray) -> np.ndarray:
    """dlib's 5 landmarks of the largest face in `image` (it must have one), as (5, 2)."""
    status, boxes = detect(image, SETTINGS)
    assert status == "found"
    return np.array([(p.x, p.y) for p in landmarks(image, largest(boxes)).parts()], float)


def eye_line_degrees(image: np.ndarray) -> float:
    status, boxes = detect(image, SETTINGS)
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


def test_boxes_are_in_the_photos_pixels_whatever_its_size(astronaut):
    # every photo is detected at the same long side: twice the photo, twice the box
    twice = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    status, [box] = detect(twice, SETTINGS)
    assert status == "found"
    np.testing.assert_allclose(box, 2 * np.array(face_crop(astronaut, SETTINGS).box), atol=3)
    assert face_crop(astronaut, SETTINGS).box == pytest.approx(ASTRONAUT_FACE, abs=3)


def test_a_box_seen_in_the_padded_view_maps_back_and_one_in_the_border_is_dropped():
    photo = np.zeros((100, 50, 3), np.uint8)
    view, scale = detection_view(photo, 200, 0.5)  # 200 x 100, then a border of 100 px
    assert view.shape == (400, 300, 3) and scale == 2
    face_in_photo = (100 + 2 * 10, 100 + 2 * 20, 100 + 2 * 40, 100 + 2 * 60)
    in_border = (10, 10, 90, 90)  # centre (50, 50): in the black border, above-left the photo
    assert to_photo([face_in_photo, in_border], view, scale, photo) == [(10, 20, 40, 60)]


def test_a_face_that_fills_the_frame_is_found_by_the_padded_retry(astronaut, tight):
    assert detect(tight, SETTINGS | {"pad": 0}) == ("none", [])  # HOG alone misses it
    crop = face_crop(tight, SETTINGS)
    assert (crop.status, crop.faces) == ("fallback", 1)
    # the box is in the tight photo's pixels (partly outside it): her face in the astronaut
    in_astronaut = np.add(crop.box, TIGHT[:2] * 2)
    np.testing.assert_allclose(in_astronaut, ASTRONAUT_FACE, atol=15)
    assert crop.image.shape == (SIZE, SIZE, 3)


def test_with_no_face_found_the_centred_square_is_aligned_by_its_landmarks(tight):
    missed = face_crop(tight, SETTINGS | {"pad": 0})
    x0, y0, x1, y1 = missed.box
    assert (missed.status, missed.faces) == ("none", 0)
    assert (x1 - x0, y1 - y0) == (66, 66) and y0 == 3  # 67 x 73: the centred 67 x 67 square
    assert missed.image.shape == (SIZE, SIZE, 3)
    # aligned like the detected face, unlike the photo merely resized
    found = face_crop(tight, SETTINGS).image

    def correlation(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])

    assert correlation(missed.image, found) > 0.7
    assert correlation(resize_square(tight, SIZE), found) < 0.3


def test_a_photo_with_no_face_still_gets_an_aligned_crop_of_the_set_size():
    crop = face_crop(np.full((64, 100, 3), 128, np.uint8), SETTINGS | {"crop_size": 120})
    assert (crop.status, crop.faces, crop.box) == ("none", 0, (18, 0, 81, 63))
    assert crop.image.shape == (120, 120, 3) and crop.image.dtype == np.uint8


class CountingCnn:
    """Stands in for dlib's CNN detector: counts its calls, sees `rects` (in its view)."""

    def __init__(self, rects: list) -> None:
        self.rects, self.calls = rects, 0

    def __call__(self, view: np.ndarray, upsample: int) -> list:
        import dlib

        self.calls += 1
        return [SimpleNamespace(rect=dlib.rectangle(*r)) for r in self.rects]


@pytest.mark.parametrize("cnn", [False, True])
def test_the_cnn_is_tried_only_when_asked_and_only_when_hog_found_nothing(
        monkeypatch, astronaut, cnn):
    fake = CountingCnn([(50, 50, 150, 150)])  # the view of a 100 x 100 photo is 200 x 200
    monkeypatch.setattr(front_end, "cnn_face_detector", lambda: fake)
    blank = np.full((100, 100, 3), 128, np.uint8)
    crop = face_crop(blank, SETTINGS | {"cnn": cnn})
    assert fake.calls == int(cnn)
    assert (crop.status, crop.box) == (("fallback", (25, 25, 75, 75)) if cnn
                                       else ("none", (0, 0, 99, 99)))
    assert face_crop(astronaut, SETTINGS | {"cnn": cnn}).status == "found"
    assert fake.calls == int(cnn)  # HOG answered: no CNN call


def test_dlibs_cnn_detector_finds_the_tight_face(tight):
    crop = face_crop(tight, SETTINGS | {"pad": 0, "cnn": True})
    assert (crop.status, crop.faces) == ("fallback", 1)
    np.testing.assert_allclose(np.add(crop.box, TIGHT[:2] * 2), ASTRONAUT_FACE, atol=15)


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
def photos(astronaut, tight) -> dict[str, np.ndarray]:
    """A face HOG finds, one the padded retry finds, and no face at all."""
    return {"astronaut": astronaut, "tight": tight, "blank": np.full((64, 64, 3), 128, np.uint8)}


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
    assert faces["box"].iloc[2] == "0 0 63 63" and len(faces["box"].iloc[1].split()) == 4
    for file in faces["file"].iloc[[0, 1, 2]]:
        assert read_image(out / file).shape == (SIZE, SIZE, 3)
    assert len(list((out / "images").iterdir())) == 3  # the duplicate was cropped once


def test_worker_processes_give_the_same_crops_in_the_same_order_as_one(tmp_path, photos):
    """Photos of every status and shape, more than one chunk of them: each row's crop from
    two workers is, pixel for pixel, the one process's crop of that row."""
    astronaut = photos["astronaut"]
    made = photos | {"mirrored": astronaut[:, ::-1], "tilted": rotated(astronaut, 15),
                     "small": cv2.resize(astronaut, (120, 120), interpolation=cv2.INTER_AREA),
                     "banner": np.full((8, 4000, 3), 90, np.uint8),
                     "noise": np.random.default_rng(3).integers(0, 256, (90, 70, 3), np.uint8)}
    made |= {f"{name}_{i}": image for i in range(2) for name, image in made.items()}
    manifest = write_photos(tmp_path / "raw", made)
    crops = {}
    for workers in (1, 2):
        out = tmp_path / f"workers_{workers}"
        out.mkdir()
        faces = crop_faces(manifest, tmp_path / "raw", out, SETTINGS, workers=workers)
        crops[workers] = (faces, [read_image(out / f) if f else None for f in faces["file"]])
    pd.testing.assert_frame_equal(crops[1][0], crops[2][0])
    assert len(set(crops[1][0]["face"]) - {""}) == 3  # found, fallback and none among them
    for one, two in zip(crops[1][1], crops[2][1], strict=True):
        np.testing.assert_array_equal(one, two)



def test_the_photos_are_shared_out_to_every_core_this_process_may_use(tmp_path, monkeypatch):
    used = []
    monkeypatch.setattr(crops_module, "map_in_workers",
                        lambda function, jobs, workers: used.append(workers) or [])
    manifest = write_photos(tmp_path / "raw", {})
    (tmp_path / "faces").mkdir()
    crop_faces(manifest, tmp_path / "raw", tmp_path / "faces", SETTINGS)
    assert used == [len(os.sched_getaffinity(0))]


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
    assert face_crop(photos["tight"], {"align": False}).image is photos["tight"]


@pytest.mark.parametrize(("key", "value"), [
    ("align", "yes"), ("upsample", 5), ("upsample", True), ("detect_long_side", 40),
    ("detect_long_side", 240.5), ("pad", -0.1), ("pad", 1.5), ("pad", "0.3"), ("cnn", 1),
    ("crop_size", 8), ("crop_size", True), ("margin", -1), ("margin", "wide"),
])
def test_bad_face_settings_are_errors_naming_the_param(key, value):
    with pytest.raises(FacetlError, match=f"params.yaml: faces.{key} must be .*got"):
        check_settings(SETTINGS | {key: value})
    with pytest.raises(FacetlError, match=f"lacks \\['{key}'\\]"):
        check_settings({k: v for k, v in SETTINGS.items() if k != key})


def test_the_old_fallback_param_is_an_error_saying_what_replaced_it():
    assert check_settings(SETTINGS | {"pad": 0, "cnn": True}) == SETTINGS | {"pad": 0, "cnn": True}
    with pytest.raises(FacetlError, match="faces.fallback is gone.*faces.pad.*faces.cnn"):
        check_settings(SETTINGS | {"fallback": "cascade"})


def test_the_old_size_param_is_an_error_naming_its_new_name():
    with pytest.raises(FacetlError, match="faces.size is renamed faces.crop_size.*10296"):
        check_settings(SETTINGS | {"size": SIZE})


def test_predicting_with_a_model_trained_behind_the_old_front_end_says_to_retrain(monkeypatch):
    from facetl.gender import predict

    old = {"align": True, "upsample": 1, "fallback": "cascade", "size": SIZE, "margin": 0.25}
    monkeypatch.setattr(predict, "load_task_model",
                        lambda task, root: (None, {"faces": old, "classes": ["f", "m"]}))
    with pytest.raises(FacetlError, match="model.json.*faces.fallback is gone.*dvc repro"):
        predict.predict_gender(["photo.jpg"], Path("models"))


def test_the_speed_benchmark_times_the_stages_code_and_compares_its_crops(tmp_path, photos):
    from benchmarks.faces_speed import photo_manifest, timed_run

    for name, image in photos.items():
        Image.fromarray(image).save(tmp_path / f"{name}.png")
    manifest = photo_manifest(tmp_path, 2)
    assert list(manifest["file"]) == ["astronaut.png", "blank.png"]  # the first n, sorted
    figures, crops = timed_run(manifest, tmp_path, SETTINGS, 1)
    assert figures["workers"] == 1 and figures["photos_per_s"] > 0
    assert 0 < figures["cores_busy"] <= 1 and figures["cpu_ms_per_photo"] > 0
    crop = face_crop(photos["astronaut"], SETTINGS).image
    assert crops[0] == hashlib.sha256(encoded_png(crop)).hexdigest()


def encoded_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG", compress_level=crops_module.PNG_LEVEL)
    return buffer.getvalue()
