"""From a download manifest of synthetic images to images.npy and index.csv."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facetl.core.errors import FacetlError
from facetl.data.download import MANIFEST_COLUMNS
from facetl.data.images import read_image, resize_square
from facetl.data.prepare import prepare
from tests.conftest import encode
from tests.synthetic import class_image

CLASSES = ["female", "male"]
INDEX_COLUMNS = ["file", "source", "label", "label_index", "group", "split"]


def write_manifest(raw_dir: Path, counts: dict[str, int], people: int = 0,
                   seed: int = 0) -> pd.DataFrame:
    """Images under raw_dir/images as download stores them, and their `ok` manifest rows.

    With `people`, each class's images belong to `people` persons of that class.
    """
    rng = np.random.default_rng(seed)
    (raw_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for label, count in counts.items():
        for i in range(count):
            data = encode(class_image(CLASSES.index(label), rng), "PNG")
            digest = hashlib.sha256(data).hexdigest()
            (raw_dir / "images" / f"{digest}.png").write_bytes(data)
            rows.append({"source": f"http://img.example/{label}/{i}.png", "label": label,
                         "group": f"{label}-{i % people}" if people else "", "status": "ok",
                         "bytes": len(data), "sha256": digest, "file": f"images/{digest}.png",
                         "detail": ""})
    manifest = pd.DataFrame(rows).assign(row=range(len(rows)))
    return manifest[MANIFEST_COLUMNS]


def failed_row(source: str, status: str) -> dict:
    return {"row": 99, "source": source, "label": "male", "group": "", "status": status,
            "bytes": 0, "sha256": "", "file": "", "detail": status}


def run_prepare(manifest: pd.DataFrame, tmp_path: Path, size: int = 24,
                balanced: bool = True) -> pd.DataFrame:
    return prepare(manifest, tmp_path / "raw", tmp_path / "prepared", CLASSES, size, 0.25, 42,
                   balanced)


def test_writes_uint8_images_and_an_index_that_match_row_by_row(tmp_path):
    manifest = write_manifest(tmp_path / "raw", {"female": 6, "male": 6})
    index = run_prepare(manifest, tmp_path)
    images = np.load(tmp_path / "prepared" / "images.npy")
    assert images.shape == (12, 24, 24, 3) and images.dtype == np.uint8
    on_disk = pd.read_csv(tmp_path / "prepared" / "index.csv", keep_default_na=False)
    assert list(on_disk.columns) == INDEX_COLUMNS
    assert on_disk["file"].tolist() == index["file"].tolist()
    for row, image in zip(on_disk.itertuples(), images, strict=True):
        np.testing.assert_array_equal(image, resize_square(read_image(tmp_path / "raw" / row.file),
                                                           24))
        assert CLASSES[row.label_index] == row.label
    assert sorted(p.name for p in (tmp_path / "prepared").iterdir()) == ["images.npy",
                                                                         "index.csv"]


def test_classes_are_balanced_unless_asked_not_to(tmp_path):
    manifest = write_manifest(tmp_path / "raw", {"female": 12, "male": 8})
    balanced = run_prepare(manifest, tmp_path)
    assert balanced["label"].value_counts().to_dict() == {"female": 8, "male": 8}
    assert run_prepare(manifest, tmp_path, balanced=False)["label"].value_counts().to_dict() == {
        "female": 12, "male": 8}
    assert np.load(tmp_path / "prepared" / "images.npy").shape[0] == 20


def test_split_is_stratified_and_grouped_by_person(tmp_path):
    manifest = write_manifest(tmp_path / "raw", {"female": 20, "male": 20}, people=5)
    index = run_prepare(manifest, tmp_path)
    test = index[index["split"] == "test"]
    assert set(test["label"]) == set(CLASSES)
    assert 0.1 <= len(test) / len(index) <= 0.4
    sides = index.groupby("group")["split"].nunique()
    assert (sides == 1).all(), "a person is on both sides of the split"


def test_only_ok_rows_are_used_and_duplicates_once(tmp_path):
    manifest = write_manifest(tmp_path / "raw", {"female": 4, "male": 4})
    failed = pd.DataFrame([failed_row("http://x/404.jpg", "http_404"),
                           failed_row("http://x/page.jpg", "not_an_image")])
    duplicate = manifest.iloc[[0]].assign(source="http://img.example/same-bytes.png")
    index = run_prepare(pd.concat([manifest, failed, duplicate], ignore_index=True), tmp_path)
    assert len(index) == 8 and index["sha256"].is_unique
    assert not index["source"].str.contains("x/").any()


def test_an_undecodable_file_is_reported_and_skipped(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "raw", {"female": 5, "male": 4})
    broken = manifest["file"].iloc[0]
    (tmp_path / "raw" / broken).write_bytes(b"\x89PNG\r\n\x1a\n then nothing")
    index = run_prepare(manifest, tmp_path)
    assert f"skipped {broken}" in capsys.readouterr().out
    assert broken not in set(index["file"])
    assert index["label"].value_counts().to_dict() == {"female": 4, "male": 4}


def test_a_class_without_images_is_an_error(tmp_path):
    manifest = write_manifest(tmp_path / "raw", {"female": 4})
    with pytest.raises(FacetlError, match=r"no usable image of class \['male'\]"):
        run_prepare(manifest, tmp_path)


def test_a_class_whose_images_all_fail_is_an_error_and_writes_nothing(tmp_path):
    manifest = write_manifest(tmp_path / "raw", {"female": 4, "male": 2})
    for file in manifest.loc[manifest["label"] == "male", "file"]:
        (tmp_path / "raw" / file).write_bytes(b"<html>gone</html>")
    with pytest.raises(FacetlError, match="male"):
        run_prepare(manifest, tmp_path)
    assert not (tmp_path / "prepared").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temp folder left behind
