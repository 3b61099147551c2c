"""Downloading against the loopback server: every failure ends as a manifest status."""

from __future__ import annotations

import email.utils
import hashlib
import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from facetl.core.errors import FacetlError
from facetl.data import download as dl
from facetl.data.download import (
    MANIFEST_COLUMNS,
    FetchPolicy,
    download,
    fetch_text,
    retry_after_s,
)
from facetl.gender import download as gender_download
from tests.conftest import ImageServer, Route
from tests.synthetic import write_class_folder

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
        fetch_text(server.url("/missing.csv"), FAST, "data.gender.source")
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


RESET = b""  # a script answer: reset the connection instead of answering


def http_answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                length: int | None = None) -> bytes:
    """A raw HTTP/1.1 response; `length` may claim more bytes than the body has."""
    head = {"Content-Type": "image/jpeg",
            "Content-Length": str(len(body) if length is None else length)} | (headers or {})
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{k}: {v}" for k, v in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ScriptedServer(ImageServer):
    """Answers raw bytes, a script per path (hit n gets answer n, the last one repeating):
    the malformed responses http.server itself would never send."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                script = server.routes[self.path]
                answer = script[min(server._count(self.path), len(script)) - 1]
                self.close_connection = True
                if answer is RESET:  # linger 0: closing sends RST, not FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler


@pytest.fixture
def scripted(samples) -> Iterator[ScriptedServer]:
    jpeg = samples["jpeg"]
    with ScriptedServer({
        "/good.jpg": [http_answer(200, jpeg)],
        "/cut-body.jpg": [http_answer(200, jpeg[:100], length=len(jpeg))],
        "/bad-chunk.jpg": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        "/not-http.jpg": [b"garbage\r\n\r\n"],
        "/long-header.jpg": [b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"],
        "/reset.jpg": [RESET],
        "/cut-then-good.jpg": [http_answer(200, jpeg[:100], length=len(jpeg)),
                               http_answer(200, jpeg)],
    }) as running:
        yield running


def test_malformed_responses_become_row_statuses_and_the_rest_downloads(scripted, tmp_path):
    expected = {
        "/cut-body.jpg": "incomplete",  # Content-Length not met
        "/bad-chunk.jpg": "incomplete",  # http.client.IncompleteRead
        "/not-http.jpg": "bad_response",  # http.client.BadStatusLine
        "/long-header.jpg": "bad_response",  # http.client.LineTooLong
        "/reset.jpg": "connection_error",  # ConnectionResetError (or RemoteDisconnected)
        "/good.jpg": "ok",
    }
    sources = [scripted.url(p) for p in expected]
    sources.append(scripted.url("/good.jpg").replace("http:", "https:"))  # TLS to plain HTTP
    manifest = fetch(sources, tmp_path)
    assert manifest["status"].tolist() == [*expected.values(), "ssl_error"]
    assert (manifest["file"] != "").tolist() == [False] * 5 + [True, False]


def test_a_body_cut_short_is_retried(scripted, tmp_path):
    policy = FetchPolicy(timeout_s=0.3, retries=1, backoff_s=0.01, max_bytes=16 * 1024)
    assert fetch([scripted.url("/cut-then-good.jpg")], tmp_path, policy)["status"][0] == "ok"
    assert scripted.hits["/cut-then-good.jpg"] == 2


def retry_after_script(scripted: ScriptedServer, status: int, retry_after: str,
                       jpeg: bytes) -> str:
    scripted.routes["/busy.jpg"] = [http_answer(status, b"busy", {"Retry-After": retry_after}),
                                    http_answer(200, jpeg)]
    return scripted.url("/busy.jpg")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_are_waited_before_the_retry(scripted, tmp_path, samples, status):
    url = retry_after_script(scripted, status, "1", samples["jpeg"])
    started = time.perf_counter()
    policy = FetchPolicy(timeout_s=0.3, retries=1, backoff_s=0.01, max_bytes=16 * 1024)
    assert fetch([url], tmp_path, policy)["status"][0] == "ok"
    assert time.perf_counter() - started >= 1.0  # not the 0.01 s backoff
    assert scripted.hits["/busy.jpg"] == 2


def test_retry_after_as_an_http_date_is_waited(scripted, tmp_path, samples):
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    url = retry_after_script(scripted, 429, when, samples["jpeg"])
    started = time.perf_counter()
    policy = FetchPolicy(timeout_s=0.3, retries=1, backoff_s=0.01, max_bytes=16 * 1024)
    assert fetch([url], tmp_path, policy)["status"][0] == "ok"
    assert time.perf_counter() - started >= 1.5  # the date is in whole seconds: 2 to 3 s away


def test_a_retry_after_over_the_cap_ends_the_row_without_waiting(scripted, tmp_path, samples):
    url = retry_after_script(scripted, 429, "3600", samples["jpeg"])
    policy = FetchPolicy(timeout_s=0.3, retries=3, backoff_s=0.01, max_bytes=16 * 1024,
                         max_retry_after_s=5)
    started = time.perf_counter()
    row = fetch([url], tmp_path, policy).iloc[0]
    assert time.perf_counter() - started < 1.0
    assert row["status"] == "http_429" and "3600 s" in row["detail"]
    assert scripted.hits["/busy.jpg"] == 1


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # 30 s after NOW
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
    ("soon", None),
    ("-5", None),
    (None, None),
])
def test_retry_after_header_values(header, seconds):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_s(header, now) == seconds


KILLABLE = """
import sys
from pathlib import Path
import pandas as pd
from facetl.data.download import FetchPolicy, download
rows = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
download(rows, Path(sys.argv[2]), FetchPolicy(timeout_s=60, retries=0), workers=1)
"""


def test_a_killed_download_resumes_without_fetching_its_finished_rows(server, tmp_path,
                                                                       samples):
    """SIGKILL while row 3 waits on a stalled server; the rerun fetches only rows 1 and 3+."""
    server.routes["/stall.png"] = Route(samples["palette_png"], content_type="image/png",
                                        stall_s=60)
    paths = ["/good.jpg", "/missing.jpg", "/good.png", "/stall.png", "/gray.jpg", "/cmyk.jpg"]
    urls = [server.url(p) for p in paths]
    rows_of(urls).to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "raw"
    child = subprocess.Popen([sys.executable, "-c", KILLABLE, str(tmp_path / "rows.csv"),
                              str(out)], cwd=Path(__file__).parents[1])
    try:
        deadline = time.monotonic() + 60
        while not server.hits["/stall.png"]:  # rows 0-2 are done: one worker, in order
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()
    assert not (out / "manifest.csv").exists()  # nothing claims what the killed run had
    server.routes["/stall.png"] = Route(samples["palette_png"], content_type="image/png")

    manifest = fetch(urls, out)
    assert {p: server.hits[p] for p in paths} == {
        "/good.jpg": 1, "/missing.jpg": 2, "/good.png": 1,  # failures are tried again
        "/stall.png": 2, "/gray.jpg": 1, "/cmyk.jpg": 1}
    assert manifest["source"].tolist() == urls
    assert manifest["status"].tolist() == ["ok", "http_404", "ok", "ok", "ok", "ok"]
    on_disk = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert on_disk["source"].tolist() == urls
    for row in on_disk[on_disk["status"] == "ok"].itertuples():
        assert hashlib.sha256((out / row.file).read_bytes()).hexdigest() == row.sha256
    assert not (out / "progress.jsonl").exists()


def test_an_interrupted_run_after_a_cut_journal_line_keeps_its_rows(server, tmp_path,
                                                                     monkeypatch):
    """A kill can cut the journal's last line; the rows journaled after it must still count."""
    urls = [server.url(p) for p in ("/good.jpg", "/good.png", "/gray.jpg")]
    (tmp_path / "progress.jsonl").write_text('{"source": "http://127.0.0.1/x.jpg", "sta')
    real_fetch_row = dl.fetch_row

    def interrupted_at_the_third(source: str, *args: object) -> dict:
        if source == urls[2]:
            raise KeyboardInterrupt
        return real_fetch_row(source, *args)

    monkeypatch.setattr(dl, "fetch_row", interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        download(rows_of(urls), tmp_path, FAST, workers=1)
    monkeypatch.undo()
    assert not (tmp_path / "manifest.csv").exists()
    manifest = fetch(urls, tmp_path)
    assert [server.hits[p] for p in ("/good.jpg", "/good.png", "/gray.jpg")] == [1, 1, 1]
    assert manifest["status"].tolist() == ["ok"] * 3


def test_gender_download_reports_what_per_class_kept_and_dropped(tmp_path, monkeypatch,
                                                                  capsys):
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    folder = write_class_folder(tmp_path / "photos", classes=("Female", "male"), per_class=5)
    for extra in sorted((folder / "male").iterdir())[3:]:
        extra.unlink()  # 5 female, 3 male
    (folder / "Female" / "001.png").write_bytes(b"not an image")
    params["data"]["gender"] |= {"source": str(folder), "per_class": 4}
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    gender_download.main()
    metrics = json.loads(Path("metrics/download_gender.json").read_text())
    assert metrics["classes"] == {
        "female": {"in_source": 5, "kept": 4, "dropped": 1, "ok": 3},
        "male": {"in_source": 3, "kept": 3, "dropped": 0, "ok": 3},
    }
    assert metrics["statuses"] == {"ok": 6, "not_an_image": 1} and metrics["rows"] == 7
    printed = capsys.readouterr().out
    assert "female: kept 4 of 5, male: kept 3 of 3" in printed
    assert "per_class = 4 dropped 1 female, 0 male" in printed
