"""Every kind of data source becomes the same rows: source, label, group (and the CSV row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetl.core.errors import FacetlError
from facetl.data.download import FetchPolicy, fetch_text
from facetl.data.sources import load_rows, selection_counts, source_rows
from tests.conftest import Route
from tests.synthetic import write_class_folder, write_labels_csv

GENDER = "please_select_the_gender_of_the_person_in_the_picture"
CHAPTER_CSV = f"""_unit_id,image_url,{GENDER}
1,http://img.example/a.jpg,male
2,http://img.example/b.jpg,unsure
3,http://img.example/c.jpg,female
4,http://img.example/d.jpg, Male
5,http://img.example/e.jpg,male
6,,female
7,http://img.example/g.jpg,FEMALE
8,http://img.example/h.jpg,female
""".encode()


def config(source: str | Path, **overrides) -> dict:
    """params.yaml's data.gender, pointed at `source`."""
    return {"source": str(source), "images": "", "path_column": "image_url",
            "label_column": GENDER, "group_column": "", "classes": ["female", "male"],
            "per_class": None} | overrides


def local_config(source: Path, **overrides) -> dict:
    """The column names and image folder of tests.synthetic.write_labels_csv."""
    return config(source, path_column="filename", label_column="gender",
                  images=str(source.parent / "images")) | overrides


def no_network(url: str) -> bytes:
    raise AssertionError(f"a local source fetched {url}")


def test_url_csv_in_the_chapters_format(server):
    server.routes["/gender.csv"] = Route(CHAPTER_CSV, content_type="text/csv")
    policy = FetchPolicy(timeout_s=0.3, retries=0)
    rows = load_rows(config(server.url("/gender.csv"), per_class=2),
                     lambda url: fetch_text(url, policy, "data.gender.source"))
    # unsure and empty URLs dropped, labels normalised, the first two of each class in CSV order
    assert rows["source"].tolist() == [f"http://img.example/{c}.jpg" for c in "acdg"]
    assert rows["label"].tolist() == ["male", "female", "male", "female"]
    assert rows["row"].tolist() == [0, 2, 3, 6]  # the row in the source CSV
    assert set(rows["group"]) == {""}


def test_per_class_null_keeps_every_known_label():
    rows = load_rows(config("http://x/gender.csv"), lambda url: CHAPTER_CSV)
    assert sorted(rows["label"].value_counts().items()) == [("female", 3), ("male", 3)]


def test_local_csv_needs_the_images_folder_dvc_tracks(tmp_path):
    labels = write_labels_csv(tmp_path, per_class=3, people=2)
    for images in ("", str(tmp_path / "absent")):
        with pytest.raises(FacetlError, match="data.<task>.images") as caught:
            load_rows(local_config(labels, images=images), no_network)
        assert str(tmp_path) in str(caught.value)  # names the CSV's folder as the likely one


def test_images_param_names_the_folder_of_relative_paths(tmp_path):
    labels = write_labels_csv(tmp_path, per_class=3)
    rows = load_rows(local_config(labels, images=str(tmp_path / "images"), per_class=2),
                     no_network)
    assert rows["source"].tolist() == [str(tmp_path / "images" / f"{i:04d}.jpg")
                                       for i in range(4)]
    assert rows["label"].tolist() == ["female", "male", "female", "male"]


def test_folder_with_one_subfolder_per_class(tmp_path):
    folder = write_class_folder(tmp_path / "faces", per_class=3)
    (folder / "male" / "notes.txt").write_text("not an image")
    rows = load_rows(config(folder), no_network)
    assert rows["label"].tolist() == ["female"] * 3 + ["male"] * 3
    assert [Path(s).name for s in rows["source"]] == ["000.jpg", "001.png", "002.png"] * 2


def test_folder_without_a_class_subfolder_names_it(tmp_path):
    folder = write_class_folder(tmp_path / "faces", classes=("female", "man"), per_class=1)
    with pytest.raises(FacetlError, match=r"no subfolder for class \['male'\]") as caught:
        load_rows(config(folder), no_network)
    assert "man" in str(caught.value) and str(folder) in str(caught.value)


@pytest.mark.parametrize("content", [
    b"filename,gender\na.jpg,male,extra,fields\n",  # a row wider than the header
    b'filename,gender\n"a.jpg,male\n',  # a quote never closed
    b"",  # empty
    b"filename,gender\n\xff\xfe\x00garbage\n",  # not text
], ids=["wide-row", "open-quote", "empty", "binary"])
def test_malformed_csv_names_the_file(tmp_path, content):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content)
    with pytest.raises(FacetlError, match="not a readable CSV") as caught:
        load_rows(local_config(labels), no_network)
    assert str(labels) in str(caught.value)


@pytest.mark.parametrize("missing", ["label_column", "path_column", "group_column"])
def test_missing_column_names_the_column_and_the_file(tmp_path, missing):
    labels = write_labels_csv(tmp_path, per_class=1)
    cfg = local_config(labels, group_column="identity") | {missing: "no_such_column"}
    with pytest.raises(FacetlError) as caught:
        load_rows(cfg, no_network)
    assert "'no_such_column'" in str(caught.value) and str(labels) in str(caught.value)


def test_missing_column_in_a_url_csv_names_the_url():
    url = "http://x/gender.csv"
    with pytest.raises(FacetlError, match="'gender'") as caught:
        load_rows(config(url, label_column="gender"), lambda _: CHAPTER_CSV)
    assert url in str(caught.value)


def test_missing_source_path_says_what_a_source_can_be(tmp_path):
    with pytest.raises(FacetlError, match="does not exist") as caught:
        load_rows(config(tmp_path / "nowhere.csv"), no_network)
    assert "nowhere.csv" in str(caught.value) and "folder" in str(caught.value)


def test_class_folders_are_matched_ignoring_case(tmp_path):
    folder = write_class_folder(tmp_path / "faces", classes=("Female", "MALE"), per_class=2)
    rows = load_rows(config(folder), no_network)
    assert rows["label"].tolist() == ["female", "female", "male", "male"]
    assert [Path(s).parent.name for s in rows["source"]] == ["Female", "Female", "MALE", "MALE"]


def test_two_folders_of_one_class_differing_by_case_are_an_error(tmp_path):
    folder = write_class_folder(tmp_path / "faces", classes=("female", "male"), per_class=1)
    (folder / "Female").mkdir()
    if len({p.name for p in folder.iterdir()}) < 3:
        pytest.skip("this file system does not tell names apart by case")
    with pytest.raises(FacetlError, match="ignoring case") as caught:
        load_rows(config(folder), no_network)
    assert "'Female'" in str(caught.value) and "'female'" in str(caught.value)


def test_selection_counts_say_what_per_class_and_the_labels_left_out():
    cfg = config("http://x/gender.csv", per_class=2)
    rows = source_rows(cfg, lambda url: CHAPTER_CSV)
    counts = selection_counts(rows, load_rows(cfg, lambda url: CHAPTER_CSV), ["female", "male"])
    # Counted by hand in CHAPTER_CSV: female c, g, h (and f without a URL); male a, d, e.
    assert counts == {
        "classes": {"female": {"in_source": 3, "kept": 2, "dropped": 1},
                    "male": {"in_source": 3, "kept": 2, "dropped": 1}},
        "other_labels": 1,  # unsure
        "no_source": 1,  # the female row with an empty URL
    }
