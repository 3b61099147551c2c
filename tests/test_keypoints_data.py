"""From a keypoint CSV in the Udacity layout to prepared images, points and a person split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facetl.core.errors import FacetlError
from facetl.data.download import FetchPolicy, download
from facetl.data.images import mirror_image, read_image, resize_square
from facetl.keypoints.layout import mirror_points
from facetl.keypoints.prepare import normalised_targets, pixel_points, prepare_keypoints
from facetl.keypoints.source import COORDINATE_COLUMNS, image_source, keypoint_rows, person_of
from tests.synthetic import write_keypoints_source


@pytest.fixture
def source(tmp_path: Path) -> dict:
    csv = write_keypoints_source(tmp_path / "source", people=6, frames=5)
    return {"csv": str(csv), "images": str(csv.parent / "images")}


def csv_points(cfg: dict) -> pd.DataFrame:
    frame = pd.read_csv(cfg["csv"], index_col=0)
    return frame.set_axis(COORDINATE_COLUMNS, axis=1)


def fetched(cfg: dict, raw: Path) -> pd.DataFrame:
    return download(keypoint_rows(cfg, raw), raw, FetchPolicy(), workers=2)


@pytest.mark.parametrize(("name", "person"), [("Luis_Fonsi_21.jpg", "Luis_Fonsi"),
                                              ("Abdel_Aziz_Al-Hakim_00.jpg",
                                               "Abdel_Aziz_Al-Hakim"),
                                              ("sub/Jo_3.png", "Jo"), ("single.png", "single")])
def test_person_is_the_name_before_the_last_underscore(name, person):
    assert person_of(name) == person


def test_image_source_joins_folder_or_base_url():
    assert image_source("faces", "A_1.jpg") == str(Path("faces") / "A_1.jpg")
    assert image_source("https://h/x/", "Ann Lee_1.jpg") == "https://h/x/Ann%20Lee_1.jpg"


def test_rows_carry_points_and_person(source, tmp_path):
    rows = keypoint_rows(source, tmp_path / "raw")
    expected = csv_points(source)
    assert len(rows) == 30
    assert rows["group"].nunique() == 6 and rows["group"].iloc[0] == "Person_A"
    assert rows["source"].iloc[0] == str(Path(source["images"]) / expected.index[0])
    np.testing.assert_allclose(rows[COORDINATE_COLUMNS].to_numpy(), expected.to_numpy())
    assert rows["x0"].min() < 0  # a point outside the image is kept as it is


def test_bad_rows_are_reported_and_skipped(source, tmp_path, capsys):
    csv = Path(source["csv"])
    good = csv.read_text().splitlines()[1].split(",")
    bad = {
        "missing": [good[0], "", *good[2:]],
        "text": [good[0], *good[1:10], "abc", *good[11:]],
        "corners": [good[0], *good[1:73], *good[91:93], *good[75:]],  # 36 moved onto 45
        "escape": ["../secret_1.jpg", *good[1:]],
        "nameless": ["", *good[1:]],
    }
    with csv.open("a") as out:
        for cells in bad.values():
            out.write(",".join(cells) + "\n")
    rows = keypoint_rows(source, tmp_path / "raw")
    assert len(rows) == 30 and rows["row"].max() == 29
    rejected = pd.read_csv(tmp_path / "raw" / "rejected.csv", keep_default_na=False)
    assert rejected["row"].tolist() == [30, 31, 32, 33, 34]
    reasons = rejected["reason"].tolist()
    assert reasons[0] == "x0 is missing"
    assert reasons[1] == "y4 is 'abc'"
    assert "points 36 and 45" in reasons[2]
    assert "not inside data.keypoints.images" in reasons[3]
    assert reasons[4] == "no image file name"
    assert "skipped 5 of 35 rows" in capsys.readouterr().out


def test_a_csv_of_the_wrong_shape_is_a_clear_error(tmp_path):
    csv = tmp_path / "points.csv"
    csv.write_text("name,x,y\nA_1.jpg,1,2\n")
    with pytest.raises(FacetlError, match="136 coordinate columns"):
        keypoint_rows({"csv": str(csv), "images": ""}, tmp_path / "raw")
    with pytest.raises(FacetlError, match="data.keypoints.csv"):
        keypoint_rows({"csv": str(tmp_path / "absent.csv"), "images": ""}, tmp_path / "raw")


def test_manifest_keeps_the_points_and_statuses(source, tmp_path):
    Path(source["images"], "Person_B_01.jpg").write_text("<html>not an image</html>")
    Path(source["images"], "Person_B_02.jpg").unlink()
    manifest = fetched(source, tmp_path / "raw")
    assert manifest["status"].value_counts().to_dict() == {"ok": 28, "not_an_image": 1,
                                                           "missing": 1}
    np.testing.assert_allclose(manifest[COORDINATE_COLUMNS].to_numpy(),
                               csv_points(source).to_numpy())


def test_images_can_come_from_a_base_url(server, tmp_path):
    """The loopback server stands in for a web folder of the CSV's images."""
    points = ",".join(["10"] * 72 + ["30", "10"] + ["10"] * 62)  # eye corners 20 px apart
    csv = tmp_path / "points.csv"
    csv.write_text("," + ",".join(map(str, range(136))) + "\n"
                   + "".join(f"{name},{points}\n" for name in ("good.jpg", "missing.jpg")))
    cfg = {"csv": str(csv), "images": server.url("/")}
    manifest = fetched(cfg, tmp_path / "raw")
    assert manifest["status"].tolist() == ["ok", "http_404"]
    assert manifest["source"][0] == server.url("/good.jpg")


def test_prepare_keeps_original_sizes_and_points(source, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    manifest = fetched(source, raw)
    index = prepare_keypoints(manifest, raw, out, 32, 0.2, seed=0)
    images = np.load(out / "images.npy")
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.uint8
    on_disk = pd.read_csv(out / "index.csv", keep_default_na=False)
    assert on_disk.columns.tolist() == index.columns.tolist()
    expected = csv_points(source)
    for i in (0, 17):
        original = read_image(Path(on_disk["source"][i]))
        assert (on_disk["height"][i], on_disk["width"][i]) == original.shape[:2]
        assert (images[i] == resize_square(original, 32)).all()
        name = Path(on_disk["source"][i]).name
        np.testing.assert_allclose(pixel_points(on_disk)[i].ravel(), expected.loc[name])
    sizes = on_disk[["width", "height"]].to_numpy()[:, None, :]
    np.testing.assert_allclose(normalised_targets(on_disk).reshape(-1, 68, 2),
                               pixel_points(on_disk) / sizes, rtol=1e-6)
    assert pixel_points(on_disk).min() == -1.5  # not clipped


def test_split_is_grouped_by_person_and_seeded(source, tmp_path):
    raw = tmp_path / "raw"
    manifest = fetched(source, raw)
    index = prepare_keypoints(manifest, raw, tmp_path / "a", 32, 0.2, seed=3)
    test_people = set(index.loc[index["split"] == "test", "group"])
    train_people = set(index.loc[index["split"] == "train", "group"])
    assert test_people and train_people and not test_people & train_people
    again = prepare_keypoints(manifest, raw, tmp_path / "b", 32, 0.2, seed=3)
    assert again["split"].tolist() == index["split"].tolist()


def test_undecodable_images_are_skipped_by_prepare(source, tmp_path, capsys):
    raw = tmp_path / "raw"
    manifest = fetched(source, raw)
    broken = raw / manifest["file"].iloc[3]
    broken.write_bytes(broken.read_bytes()[:40])  # rotted after the download
    index = prepare_keypoints(manifest, raw, tmp_path / "prepared", 32, 0.2, seed=0)
    assert len(index) == 29 and manifest["source"].iloc[3] not in set(index["source"])
    assert f"skipped {manifest['source'].iloc[3]}: cannot decode" in capsys.readouterr().out


def test_flip_adds_mirrored_train_images_with_swapped_points(source, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    manifest = fetched(source, raw)
    index = prepare_keypoints(manifest, raw, out, 32, 0.2, seed=0, flip=True)
    images = np.load(out / "images.npy")
    originals, mirrored = index[~index["mirrored"]], index[index["mirrored"]]
    train = originals[originals["split"] == "train"]
    assert len(originals) == 30 and len(mirrored) == len(train) == len(images) - 30
    assert set(mirrored["split"]) == {"train"}
    copies = mirrored.index.to_numpy()
    np.testing.assert_array_equal(images[copies], mirror_image(images[train.index]))
    np.testing.assert_allclose(pixel_points(mirrored),
                               mirror_points(pixel_points(train), train["width"].to_numpy()))
    assert mirrored["group"].tolist() == train["group"].tolist()  # same person, same side


def test_prepare_without_any_image_is_a_clear_error(source, tmp_path):
    raw = tmp_path / "raw"
    manifest = fetched(source, raw).assign(status="missing")
    with pytest.raises(FacetlError, match="no keypoint image was fetched"):
        prepare_keypoints(manifest, raw, tmp_path / "prepared", 32, 0.2, seed=0)
    assert not (tmp_path / "prepared").exists()
