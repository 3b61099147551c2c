"""Downloading against the loopback server: every failure ends as a manifest status."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from facetl.core.errors import FacetlError
from facetl.data.download import MANIFEST_COLUMNS, FetchPolicy, download, fetch_text
from tests.conftest import ImageServer

FAST = FetchPolicy(timeout_s=0.3, retries=0, backoff_s=0.01, max_bytes=16 * 1024)


def rows_of(sources: list[str]) -> pd.DataFrame:
    """Source rows as load_rows makes them."""
    return pd.DataFrame({"row": range(len(sources)), "source": sources,
                         "label": "female", "group": ""})


def fetch(sources: list[str], out_dir: Path, policy: FetchPolicy = FAST) -> pd.DataFrame:
    return download(rows_of(sources), out_dir, policy, workers=4)


def status_of(server: ImageServer, path: str, out_dir: Path, policy: FetchPolicy = FAST) -> str:
    return fetch([server.url(path)], out_dir, policy)["status"].iloc[0]


@pytest.mark.parametrize("path", ["/good.jpg", "/good.png", "/png-named.jpg", "/gray.jpg",
                                  "/rgba.png", "/cmyk.jpg"])
def test_every_image_format_is_ok(server, tmp_path, path):
    assert status_of(server, path, tmp_path) == "ok"


@pytest.mark.parametrize(("path", "status"), [
    ("/missing.jpg", "http_404"),
    ("/page.jpg", "not_an_image"),
    ("/truncated.jpg", "corrupt_image"),
    ("/huge.jpg", "too_large"),
    ("/huge-unsized.jpg", "too_large"),
    ("/bomb.png", "too_large"),  # a few bytes that decode to 900 megapixels
    ("/slow.jpg", "timeout"),
])
def test_bad_urls_get_their_status(server, tmp_path, path, status):
    started = time.perf_counter()
    assert status_of(server, path, tmp_path) == status
    assert time.perf_counter() - started < 1.5  # a stall costs the timeout, not the stall
    assert not list(tmp_path.glob("images/*"))  # nothing stored for a failed row


@pytest.mark.parametrize("source", ["ftp://127.0.0.1/a.jpg", "file:///etc/hostname"])
def test_non_http_schemes_are_refused(tmp_path, source):
    manifest = fetch([source], tmp_path)
    assert manifest["status"].iloc[0] == "bad_scheme"


def test_local_files_are_read_or_reported_missing(tmp_path, samples):
    (tmp_path / "here.png").write_bytes(samples["png"])
    manifest = fetch([str(tmp_path / "here.png"), str(tmp_path / "gone.png")], tmp_path / "out")
    assert manifest["status"].tolist() == ["ok", "missing"]


def test_manifest_has_one_row_per_source_in_order(server, tmp_path):
    paths = ["/good.jpg", "/missing.jpg", "/page.jpg", "/good.png"]
    manifest = fetch([server.url(p) for p in paths], tmp_path)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["source"].tolist() == [server.url(p) for p in paths]
    assert manifest["status"].tolist() == ["ok", "http_404", "not_an_image", "ok"]
    on_disk = pd.read_csv(tmp_path / "manifest.csv", dtype=str, keep_default_na=False)
    assert on_disk["status"].tolist() == manifest["status"].tolist()


def test_files_are_named_by_content_and_format_never_by_url(server, tmp_path, samples):
    server.routes["/people/../../escape.jpg"] = server.routes["/png-named.jpg"]
    manifest = fetch([server.url("/people/../../escape.jpg"), server.url("/good.jpg")],
                     tmp_path / "raw")
    digest = hashlib.sha256(samples["png"]).hexdigest()
    assert manifest["file"].tolist() == [
        f"images/{digest}.png",  # the real format, not the .jpg of the URL
        f"images/{hashlib.sha256(samples['jpeg']).hexdigest()}.jpg",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"{digest}.png", f"{hashlib.sha256(samples['jpeg']).hexdigest()}.jpg", "manifest.csv"])


def test_sha256_and_size_describe_the_stored_bytes(server, tmp_path):
    manifest = fetch([server.url("/cmyk.jpg")], tmp_path)
    row = manifest.iloc[0]
    data = (tmp_path / row["file"]).read_bytes()
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert int(row["bytes"]) == len(data)


def test_rerun_reuses_verified_files_without_fetching(server, tmp_path):
    urls = [server.url("/good.jpg"), server.url("/good.png"), server.url("/missing.jpg")]
    first = fetch(urls, tmp_path)
    second = fetch(urls, tmp_path)
    assert server.hits["/good.jpg"] == 1 and server.hits["/good.png"] == 1
    assert server.hits["/missing.jpg"] == 2  # failures are retried on a rerun
    columns = ["source", "status", "sha256", "file"]
    assert second[columns].equals(first[columns])


def test_a_corrupted_stored_file_is_fetched_again(server, tmp_path, samples):
    url = server.url("/good.jpg")
    stored = tmp_path / fetch([url], tmp_path)["file"].iloc[0]
    stored.write_bytes(b"bit rot")
    manifest = fetch([url], tmp_path)
    assert server.hits["/good.jpg"] == 2
    assert manifest["status"].iloc[0] == "ok"
    assert stored.read_bytes() == samples["jpeg"]


def test_transient_errors_are_retried_with_backoff(server, tmp_path):
    policy = FetchPolicy(timeout_s=0.3, retries=3, backoff_s=0.05, max_bytes=16 * 1024)
    started = time.perf_counter()
    assert status_of(server, "/flaky.jpg", tmp_path, policy) == "ok"
    assert server.hits["/flaky.jpg"] == 3  # two 503s, then the image
    assert time.perf_counter() - started >= 0.05 + 0.10  # waits doubled between tries


def test_retries_stop_after_the_limit(server, tmp_path):
    policy = FetchPolicy(timeout_s=0.3, retries=1, backoff_s=0.01, max_bytes=16 * 1024)
    assert status_of(server, "/flaky.jpg", tmp_path, policy) == "http_503"
    assert server.hits["/flaky.jpg"] == 2


def test_permanent_errors_are_not_retried(server, tmp_path):
    policy = FetchPolicy(timeout_s=0.3, retries=3, backoff_s=0.01, max_bytes=16 * 1024)
    assert status_of(server, "/missing.jpg", tmp_path, policy) == "http_404"
    assert server.hits["/missing.jpg"] == 1


def test_an_unreachable_source_csv_says_how_to_use_local_data(server):
    with pytest.raises(FacetlError) as caught:
        fetch_text(server.url("/missing.csv"), FAST)
    message = str(caught.value)
    assert server.url("/missing.csv") in message and "http_404" in message
    assert "data.gender.source=" in message and "weights=" in message


def test_a_local_photo_replaced_at_the_same_path_is_read_again(tmp_path):
    """Reuse is for URLs only: a local source's edit must reach the manifest."""
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (10, 10, 10)).save(photo)
    rows = pd.DataFrame({"row": [0], "source": [str(photo)], "label": ["x"], "group": [""]})
    first = download(rows, tmp_path / "out", FetchPolicy(), workers=1)
    Image.new("RGB", (8, 8), (250, 10, 10)).save(photo)
    second = download(rows, tmp_path / "out", FetchPolicy(), workers=1)
    assert first["sha256"][0] != second["sha256"][0]
