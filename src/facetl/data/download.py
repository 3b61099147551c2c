"""Fetching a source's images into one folder under content-derived names, with a manifest.

Each source row ends as one manifest row whose `status` says what happened (`ok`, `http_404`,
`timeout`, `incomplete`, `bad_response`, `ssl_error`, `not_an_image`, `too_large`, ...): no
single bad answer stops the stage. Rows are journaled as they finish, so a rerun after a kill,
like any rerun, reuses the files already fetched and verified.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import http.client
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from tqdm import tqdm

from facetl.core import environment
from facetl.core.atomic import TMP_MARK, write_bytes, write_csv
from facetl.core.errors import FacetlError
from facetl.data.images import ImageDecodeError, decode_image, image_format
from facetl.data.sources import is_url

TRANSIENT = {"timeout", "connection_error", "incomplete", "bad_response", "http_429",
             "http_500", "http_502", "http_503", "http_504"}
RETRY_AFTER_CODES = (429, 503)  # the answers whose Retry-After says when to come back
MANIFEST_COLUMNS = ["row", "source", "label", "group", "status", "bytes", "sha256", "file",
                    "detail"]
JOURNAL = "progress.jsonl"  # rows as they finish; removed once manifest.csv is written
USER_AGENT = "facetl/0.1 (+dataset download)"


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    max_bytes: int = 20 * 2**20
    # A Retry-After longer than this ends the row's retries instead of holding a worker (and,
    # with 429s, usually every worker) idle for hours: the row keeps its http_429/503 status,
    # and a rerun later resumes with the rows already fetched. A minute covers the short
    # pauses rate limiters ask for.
    max_retry_after_s: float = 60.0


def fetch_policy(max_mb: float) -> FetchPolicy:
    """The size cap is a param (it decides which images exist); the rest, environment variables."""
    return FetchPolicy(timeout_s=environment.number("FACETL_DOWNLOAD_TIMEOUT_S"),
                       retries=int(environment.number("FACETL_DOWNLOAD_RETRIES")),
                       backoff_s=environment.number("FACETL_DOWNLOAD_BACKOFF_S"),
                       max_bytes=int(max_mb * 2**20))


class FetchError(Exception):
    def __init__(self, status: str, detail: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail, self.retry_after_s = status, detail, retry_after_s


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a Retry-After header asks for (delay-seconds or an HTTP-date); None if unusable."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP-dates are GMT
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def network_failure(exc: BaseException, timeout_s: float) -> FetchError:
    """The manifest status of an exception raised while talking to a server."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason  # urlopen wraps what fails while connecting
    if isinstance(exc, TimeoutError):
        return FetchError("timeout", f"no answer within {timeout_s}s")
    if isinstance(exc, ssl.SSLError):  # before OSError and ValueError, which it also is
        return FetchError("ssl_error", str(exc))
    if isinstance(exc, ConnectionError):  # resets, and a server closing without an answer
        return FetchError("connection_error", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, http.client.IncompleteRead):
        return FetchError("incomplete", f"body cut short: {exc!r}")
    if isinstance(exc, http.client.HTTPException):  # a status line or header that is not HTTP
        return FetchError("bad_response", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):  # a URL http.client refuses (spaces, control characters)
        return FetchError("bad_url", str(exc))
    return FetchError("connection_error", f"{type(exc).__name__}: {exc}")  # DNS, sockets


def _read_capped(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} > {max_bytes}")
    data = response.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FetchError("too_large", f"body over {max_bytes} bytes")
    if declared and declared.isdigit() and len(data) < int(declared):
        # http.client returns a short body without complaint when a length is asked for.
        raise FetchError("incomplete", f"{len(data)} of {declared} bytes before the end")
    return data


def fetch_once(url: str, policy: FetchPolicy) -> bytes:
    """One GET of an http(s) URL; every failure becomes a FetchError with a manifest status."""
    if urlparse(url).scheme.lower() not in ("http", "https"):
        raise FetchError("bad_scheme", f"only http and https are fetched: {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=policy.timeout_s) as response:
            return _read_capped(response, policy.max_bytes)
    except urllib.error.HTTPError as exc:
        wait = (retry_after_s(exc.headers.get("Retry-After"))
                if exc.code in RETRY_AFTER_CODES and exc.headers else None)
        raise FetchError(f"http_{exc.code}", str(exc.reason), wait) from exc
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise network_failure(exc, policy.timeout_s) from exc


def _retry_wait(exc: FetchError, attempt: int, policy: FetchPolicy) -> float:
    """As long as the server's Retry-After asks (up to the cap), else exponential backoff."""
    if exc.retry_after_s is None:
        return policy.backoff_s * 2**attempt
    if exc.retry_after_s > policy.max_retry_after_s:
        raise FetchError(
            exc.status, f"{exc.detail}; the server asks to wait {exc.retry_after_s:.0f} s, over "
            f"the {policy.max_retry_after_s:.0f} s a download waits: rerun later (rows already "
            "fetched are kept)") from exc
    return exc.retry_after_s


def fetch_with_retries(url: str, policy: FetchPolicy) -> bytes:
    """Retry transient failures (timeouts, 5xx, 429, cut bodies) after a wait."""
    for attempt in range(policy.retries + 1):
        try:
            return fetch_once(url, policy)
        except FetchError as exc:
            if exc.status not in TRANSIENT or attempt == policy.retries:
                raise
            time.sleep(_retry_wait(exc, attempt, policy))
    raise AssertionError("unreachable")


def read_local(path: str, policy: FetchPolicy) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise FetchError("missing", f"no such file: {path}")
    if file.stat().st_size > policy.max_bytes:
        raise FetchError("too_large", f"{file.stat().st_size} bytes > {policy.max_bytes}")
    return file.read_bytes()


def fetch_text(url: str, policy: FetchPolicy, source_param: str) -> bytes:
    """Fetch a source CSV; failing here means the whole source is unreachable, and the error
    says how to point `source_param` (the dotted param naming it) at local data instead."""
    try:
        return fetch_with_retries(url, dataclasses.replace(policy, max_bytes=512 * 2**20))
    except FetchError as exc:
        raise FacetlError(
            f"cannot fetch the data source {url} ({exc.status}: {exc.detail}). Offline? Point "
            f"the pipeline at local data: `dvc exp run -S {source_param}=PATH` with a CSV of "
            "file paths or a folder per class, and local weights with "
            "`-S backbones.<name>.weights=FILE` (or `none`); README, \"First run\"."
        ) from exc


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _holds(file: Path, digest: str) -> bool:
    """Whether `file` exists with exactly the content of `digest` (not truncated, not rotted)."""
    return file.is_file() and sha256_of(file.read_bytes()) == digest


def _reusable(previous: dict[str, dict], source: str, out_dir: Path) -> dict | None:
    """A previous `ok` row of a URL whose file still exists with the same content.

    Local files are always read again: a photo replaced at the same path must be seen, and
    reading a local file costs no more than checking the stored copy.
    """
    if not is_url(source):
        return None
    row = previous.get(source)
    if row is not None and _holds(out_dir / str(row["file"]), row["sha256"]):
        return row
    return None


def fetch_row(source: str, out_dir: Path, policy: FetchPolicy) -> dict:
    """Fetch one image, verify it decodes, store it as images/<sha256>.<real format>."""
    try:
        data = fetch_with_retries(source, policy) if is_url(source) else read_local(source, policy)
        decode_image(data)
    except FetchError as exc:
        return {"status": exc.status, "bytes": 0, "sha256": "", "file": "", "detail": exc.detail}
    except ImageDecodeError as exc:
        return {"status": exc.status, "bytes": len(data), "sha256": sha256_of(data), "file": "",
                "detail": str(exc)}
    digest = sha256_of(data)
    name = f"images/{digest}.{image_format(data)}"
    if not _holds(out_dir / name, digest):
        write_bytes(out_dir / name, data)
    return {"status": "ok", "bytes": len(data), "sha256": digest, "file": name, "detail": ""}


def read_manifest(folder: Path) -> pd.DataFrame:
    """A stage's manifest as text columns ("" for empty cells, never NaN)."""
    return pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)


def _journal_rows(journal: Path) -> list[dict]:
    """The rows a killed run had finished; a line cut short by the kill is skipped."""
    rows = []
    for line in journal.read_text().splitlines() if journal.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def previous_rows(out_dir: Path) -> dict[str, dict]:
    """The `ok` rows, by source, of the last manifest and of a killed run's journal."""
    rows = read_manifest(out_dir).to_dict("records") if (out_dir / "manifest.csv").is_file() else []
    rows += _journal_rows(out_dir / JOURNAL)
    return {row["source"]: row for row in rows if row.get("status") == "ok"}


def _clean_killed_writes(out_dir: Path) -> None:
    """Remove images a killed run left half written (temp names no manifest row points to)."""
    for stale in (out_dir / "images").glob(f".*{TMP_MARK}*"):
        stale.unlink()


def download(rows: pd.DataFrame, out_dir: Path, policy: FetchPolicy,
             workers: int | None = None) -> pd.DataFrame:
    """Fetch every row concurrently (bounded pool); write and return the manifest.

    Each row is appended to the journal when it finishes, after its image is on disk, so a
    killed run resumes where it stopped; manifest.csv itself is written once, whole, in
    source order, and only then is the journal removed.
    """
    workers = workers or int(environment.number("FACETL_DOWNLOAD_WORKERS"))
    out_dir.mkdir(parents=True, exist_ok=True)
    _clean_killed_writes(out_dir)
    previous = previous_rows(out_dir)
    journal_path = out_dir / JOURNAL
    lock = threading.Lock()

    with journal_path.open("a") as journal:
        if journal.tell():
            journal.write("\n")  # ends a line a kill may have cut (blank lines are skipped)

        def one(source: str) -> dict:
            reused = _reusable(previous, source, out_dir)
            if reused is None:
                result = fetch_row(source, out_dir, policy)
            else:
                result = {"status": "ok", "bytes": int(reused["bytes"]),
                          "sha256": reused["sha256"], "file": reused["file"], "detail": ""}
            with lock:
                journal.write(json.dumps({"source": source} | result) + "\n")
                journal.flush()
            return result

        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        try:
            results = list(tqdm(pool.map(one, rows["source"]), total=len(rows),
                                desc="download", unit="img"))
        finally:
            pool.shutdown(cancel_futures=True)  # Ctrl-C: no new fetches, the journal kept
    manifest = pd.concat([rows.reset_index(drop=True), pd.DataFrame(results)], axis=1)
    # A task's own columns (e.g. keypoint coordinates) ride along after the standard ones.
    manifest = manifest[MANIFEST_COLUMNS + [c for c in rows if c not in MANIFEST_COLUMNS]]
    write_csv(out_dir / "manifest.csv", manifest)
    journal_path.unlink()
    return manifest


def status_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """How many rows ended with each status, most frequent first."""
    return {str(k): int(v) for k, v in manifest["status"].value_counts().items()}


def check_statuses(manifest: pd.DataFrame, task: str) -> None:
    """Print the statuses counted; fail here, not two stages later, when no row succeeded."""
    counts = status_counts(manifest)
    print(f"download {task}: {len(manifest)} rows, statuses {counts}")
    for row in manifest[manifest["status"] != "ok"].head(5).itertuples():
        print(f"  e.g. {row.source}: {row.status} {row.detail}")
    if counts.get("ok", 0) == 0:
        raise FacetlError(
            f"download {task}: none of the {len(manifest)} rows gave an image (statuses "
            f"{counts}); check data.{task} in params.yaml (paths, columns, network) and the "
            "manifest's `detail` column"
        )
