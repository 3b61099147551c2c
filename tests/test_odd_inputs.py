"""Odd but real photos through every path that reads a user's photos: `facetl predict`,
`facetl serve` and the faces stage. Each photo gets an answer or its own error; one odd photo
never takes the others down (issue 31).

The photos are made here: 1 x 1, 4000 x 8 and 8 x 4000, 16-bit grayscale PNG, CMYK JPEG,
palette and animated GIF, a JPEG stored sideways with its EXIF orientation tag, RGBA,
grayscale, a truncated JPEG and a 24-megapixel photo. Most show scikit-image's astronaut, whose
face the front end must still find where it is: an odd encoding that decodes wrong (16-bit
clipped to white, the EXIF turn ignored) loses the face, not just some pixels.

`facetl predict` and `facetl serve` run the real front end and a stand-in for the trained
network (the mean brightness of the crop): these tests are about the photos, not the model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image
from skimage import data

from facetl import cli, predict, serve
from facetl.core import paths
from facetl.data.images import ImageDecodeError, decode_image
from facetl.faces import detect as front_end
from facetl.faces.crops import crop_faces
from facetl.faces.detect import face_crops
from facetl.gender import download, faces
from facetl.gender import predict as gender_predict
from tests.conftest import encode
from tests.test_faces import write_photos
from tests.test_serve import Running
from tests.tiny_pipeline import tiny_params

SETTINGS = {"align": True, "upsample": 1, "detect_long_side": 240, "pad": 0.3, "cnn": False,
            "crop_size": 64, "margin": 0.25}
ASTRONAUT_FACE = (179, 77, 271, 169)  # where the front end finds her face (tests/test_faces.py)
ASTRONAUT = data.astronaut()[:, :400]  # not square: a photo turned the wrong way shows it
HUGE = (6000, 4000)  # 24 megapixels, a camera's photo: under the 100-megapixel bomb limit
TRUNCATED = "truncated.jpg"


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def sideways_with_exif_tag() -> bytes:
    """The astronaut stored turned a quarter left, with the tag (6) that says to turn it
    back: as a phone held upright writes its photos."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = Image.fromarray(ASTRONAUT).transpose(Image.Transpose.ROTATE_90)
    return saved(stored, "JPEG", quality=95, exif=exif.tobytes())


def animated() -> bytes:
    """Two frames: the astronaut, then grey; the first frame is the photo."""
    frames = [Image.fromarray(ASTRONAUT).convert("P"), Image.new("P", (400, 512), 128)]
    return saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200)


def huge() -> bytes:
    """A smooth 24-megapixel JPEG (cheap to make, a camera's pixel count)."""
    width, height = HUGE
    ramp = np.linspace(40, 220, width, dtype=np.float32)[None, :, None]
    shade = np.linspace(0.8, 1.0, height, dtype=np.float32)[:, None, None]
    return encode((ramp * shade * np.ones(3, np.float32)).astype(np.uint8), "JPEG")


def odd_photos() -> dict[str, tuple[bytes, tuple[int, int] | None]]:
    """File name -> (bytes, (width, height) a viewer shows; None: it must not decode)."""
    gray = np.asarray(Image.fromarray(ASTRONAUT).convert("L"))
    astronaut_jpeg = encode(ASTRONAUT, "JPEG")
    shown = (400, 512)
    return {
        "one_pixel.png": (encode(np.full((1, 1, 3), 200, np.uint8), "PNG"), (1, 1)),
        "banner_4000x8.png": (encode(np.full((8, 4000, 3), 90, np.uint8), "PNG"), (4000, 8)),
        "tower_8x4000.png": (encode(np.full((4000, 8, 3), 90, np.uint8), "PNG"), (8, 4000)),
        "gray16.png": (saved(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"), shown),
        "cmyk.jpg": (encode(ASTRONAUT, "JPEG", "CMYK"), shown),
        "palette.gif": (encode(ASTRONAUT, "GIF", "P"), shown),
        "animated.gif": (animated(), shown),
        "exif_rotated.jpg": (sideways_with_exif_tag(), shown),
        "rgba.png": (encode(ASTRONAUT, "PNG", "RGBA"), shown),
        "gray.jpg": (encode(ASTRONAUT, "JPEG", "L"), shown),
        TRUNCATED: (astronaut_jpeg[: len(astronaut_jpeg) // 2], None),
        "huge.jpg": (huge(), HUGE),
    }


PHOTOS = odd_photos()
ASTRONAUTS = {name for name, (_, size) in PHOTOS.items() if size == (400, 512)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The odd photos as files, and a good photo first: it must keep its answer."""
    root = tmp_path_factory.mktemp("odd")
    (root / "good.jpg").write_bytes(encode(ASTRONAUT, "JPEG"))
    for name, (body, _) in PHOTOS.items():
        (root / name).write_bytes(body)
    return root


def files(folder: Path) -> list[Path]:
    return [folder / "good.jpg", *(folder / name for name in PHOTOS)]


# --- decoding and the face front end ------------------------------------------------------

@pytest.mark.parametrize("name", PHOTOS)
def test_each_odd_photo_decodes_as_a_viewer_shows_it_or_is_its_own_error(name):
    body, size = PHOTOS[name]
    if size is None:
        with pytest.raises(ImageDecodeError, match="truncated"):
            decode_image(body)
        return
    image = decode_image(body)
    assert image.dtype == np.uint8 and image.shape == (size[1], size[0], 3)
    if name in ASTRONAUTS:  # the same picture: a web palette's dithering is 15 levels off,
        # a picture clipped to white or with inverted CMYK well over 100
        reference = ASTRONAUT if name not in ("gray16.png", "gray.jpg") else np.repeat(
            np.asarray(Image.fromarray(ASTRONAUT).convert("L"))[..., None], 3, axis=2)
        assert np.abs(image.astype(int) - reference).mean() < 25, name
    crops = face_crops(image, SETTINGS)
    assert crops[0].image.shape == (64, 64, 3)
    if name in ASTRONAUTS:
        assert crops[0].status == "found"
        np.testing.assert_allclose(crops[0].box, ASTRONAUT_FACE, atol=8)


def test_sixteen_bits_become_eight_by_scaling_not_clipping():
    gray = np.asarray(Image.fromarray(ASTRONAUT).convert("L"))
    np.testing.assert_array_equal(decode_image(PHOTOS["gray16.png"][0])[..., 1], gray)


def test_a_photo_over_the_pixel_limit_is_refused_from_its_header():
    from benchmarks.odd_inputs import png_bomb

    # 1.2 x the limit: PIL itself only warns there, and would decode 430 MB
    with pytest.raises(ImageDecodeError, match="over the limit of 100,000,000") as caught:
        decode_image(png_bomb(12_000, 10_000))
    assert caught.value.status == "too_large"


# --- facetl predict and facetl serve ------------------------------------------------------

class MeanBrightness:
    """Stands in for the trained network: p_male is the crop's mean brightness."""

    def predict(self, x: np.ndarray, batch_size: int | None = None, verbose: object = 0
                ) -> np.ndarray:
        return x.reshape(len(x), -1).mean(axis=1, keepdims=True) / 255


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Iterator[Path]:
    """A models folder whose gender model is the stand-in, behind the real front end."""
    root = tmp_path_factory.mktemp("models")
    (root / "gender").mkdir()
    (root / "gender" / "model.keras").touch()  # what `facetl serve` looks for at start
    meta = {"faces": SETTINGS, "classes": ["female", "male"], "input_size": 32}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gender_predict, "load_task_model", lambda task, root: (MeanBrightness(),
                                                                             meta))
        yield root


def test_facetl_predict_answers_every_photo_or_gives_it_its_own_error(folder, models, capsys):
    with pytest.raises(SystemExit) as ended:
        cli.main(["predict", "--json", "--models", str(models), *map(str, files(folder))])
    assert ended.value.code == 1  # a file failed: after every other file got its answer
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [Path(r["image"]).name for r in results] == ["good.jpg", *PHOTOS]
    for result in results:
        name = Path(result["image"]).name
        if name == TRUNCATED:
            assert result.keys() == {"image", "error"}
            assert f"{folder / name}: cannot read as an image" in result["error"]
            assert "truncated" in result["error"] and result["error"] in captured.err
            continue
        assert result["gender"] in ("female", "male") and 0 <= result["p_male"] <= 1, result
        assert result["face"] == ("found" if name in ASTRONAUTS | {"good.jpg"} else "none")


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[str]:
    app = serve.create_app(serve.Service(models), 20 << 20)  # the default --max-mb, 20 MiB
    with Running(app) as running:
        yield running.url


@pytest.mark.parametrize("name", PHOTOS)
def test_facetl_serve_answers_each_odd_photo_or_refuses_it_with_a_4xx(server, folder, models,
                                                                      name):
    answer = requests.post(f"{server}/predict", timeout=120,
                           files=[("image", (name, PHOTOS[name][0]))])
    if name == TRUNCATED:
        assert answer.status_code == 422 and name in answer.json()["error"]
    else:
        assert answer.status_code == 200, answer.text
        [expected] = predict.predict(["gender"], [str(folder / name)], models)
        assert answer.json() == [expected | {"image": name}]
    good = requests.post(f"{server}/predict", timeout=120,
                         files=[("image", ("good.jpg", (folder / "good.jpg").read_bytes()))])
    assert good.status_code == 200 and good.json()[0]["face"] == "found"  # still serving


@pytest.fixture
def opencv_fails_on_banners(monkeypatch):
    """The front end's resize as it was before issue 31: OpenCV's own assertion on the
    banners' short side, which rounds to 0 pixels. Any such library failure must stay the
    one photo's error."""
    def old_resized(image: np.ndarray, scale: float) -> np.ndarray:
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    monkeypatch.setattr(front_end, "resized", old_resized)


def test_a_library_failure_on_one_photo_is_that_photos_error(opencv_fails_on_banners, folder,
                                                             models, server, capsys, tmp_path):
    banner = "banner_4000x8.png"
    with pytest.raises(SystemExit):
        cli.main(["predict", "--json", "--models", str(models), *map(str, files(folder))])
    captured = capsys.readouterr()
    results = {Path(r["image"]).name: r for r in json.loads(captured.out)}
    assert "the face front end failed on this 4000 x 8 photo (error: OpenCV" in \
        results[banner]["error"]
    assert f"error: {folder / banner}: the face front end failed" in captured.err  # which photo
    assert results["good.jpg"]["face"] == "found" and "gender" in results["huge.jpg"]

    answer = requests.post(f"{server}/predict", timeout=120,
                           files=[("image", (banner, PHOTOS[banner][0]))])
    assert answer.status_code == 422 and banner in answer.json()["error"]
    assert "4000 x 8 photo" in answer.json()["error"]

    manifest = write_photos(tmp_path / "raw", {"good.jpg": ASTRONAUT,
                                               banner: decode_image(PHOTOS[banner][0])})
    (tmp_path / "faces").mkdir()
    cropped = crop_faces(manifest, tmp_path / "raw", tmp_path / "faces", SETTINGS, workers=1)
    assert list(cropped["status"]) == ["ok", "face_error", "http_404"]
    assert "4000 x 8 photo" in cropped["detail"].iloc[1] and cropped["face"].iloc[0] == "found"


# --- the faces stage ----------------------------------------------------------------------

def test_the_faces_stage_crops_every_odd_photo_and_records_those_it_drops(tmp_path,
                                                                          monkeypatch):
    """Through the download and faces stages as `dvc repro` runs them; one photo is damaged
    on disk after the download (it changed since): the stage drops it alone, and says why."""
    tiny_params(tmp_path, {"faces.align": True, "faces.cnn": False, "faces.crop_size": 64},
                per_class=2, people=2)
    source = tmp_path / "source"
    with (source / "labels.csv").open("a") as labels:
        for number, (name, (body, _)) in enumerate(PHOTOS.items()):
            (source / "images" / name).write_bytes(body)
            labels.write(f"{name},{('female', 'male')[number % 2]},{50 + number}\n")
    monkeypatch.chdir(tmp_path)
    download.main()
    raw = pd.read_csv(paths.raw_dir("gender") / "manifest.csv", keep_default_na=False)
    by_name = raw.set_index(raw["source"].map(lambda s: Path(s).name))
    assert by_name.loc[TRUNCATED, "status"] == "corrupt_image"  # the download's own drop
    damaged = paths.raw_dir("gender") / by_name.loc["cmyk.jpg", "file"]
    damaged.write_bytes(damaged.read_bytes()[:2000])

    faces.main()
    crops = pd.read_csv(paths.faces_dir("gender") / "manifest.csv", keep_default_na=False)
    crops = crops.set_index(crops["source"].map(lambda s: Path(s).name))
    answered = [name for name in PHOTOS if name not in (TRUNCATED, "cmyk.jpg")]
    for name in answered:
        row = crops.loc[name]
        assert row["status"] == "ok" and row["face"] in ("found", "fallback", "none"), name
        crop = np.asarray(Image.open(paths.faces_dir("gender") / row["file"]))
        assert crop.shape == (64, 64, 3), name
    assert {name for name in answered if crops.loc[name, "face"] == "found"} == ASTRONAUTS - {
        "cmyk.jpg"}
    assert crops.loc["cmyk.jpg", "status"] == "corrupt_image" and crops.loc["cmyk.jpg",
                                                                            "file"] == ""
    metrics = json.loads(paths.metrics_path("faces_gender").read_text())
    assert metrics["photos"] == 4 + len(answered)  # the 4 synthetic photos and the odd ones
    assert metrics["dropped"] == 1 and metrics["dropped_by_reason"] == {"corrupt_image": 1}
    [dropped] = metrics["dropped_photos"]
    assert Path(dropped["source"]).name == "cmyk.jpg" and dropped["status"] == "corrupt_image"
    assert "truncated" in dropped["detail"]
