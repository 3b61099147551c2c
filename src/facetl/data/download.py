"""Fetching a source's images into one folder under content-derived names, with a manifest.

Each source row ends as one manifest row whose `status` says what happened (`ok`, `http_404`,
`timeout`, `not_an_image`, `too_large`, ...). A rerun reuses files already fetched and verified.
"""

from __future__ import annotations

import hashlib
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from tqdm import tqdm

from facetl.core import settings
from facetl.core.atomic import write_bytes, write_csv
from facetl.core.errors import FacetlError
from facetl.data.images import ImageDecodeError, decode_image, image_format
from facetl.data.sources import is_url

TRANSIENT = {"timeout", "connection_error", "http_429", "http_500", "http_502", "http_503",
             "http_504"}
MANIFEST_COLUMNS = ["row", "source", "label", "group", "status", "bytes", "sha256", "file",
                    "detail"]
USER_AGENT = "facetl/0.1 (+dataset download)"


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    max_bytes: int = 20 * 2**20


def fetch_policy(max_mb: float) -> FetchPolicy:
    """The size cap is a param (it decides which images exist); the rest are settings."""
    return FetchPolicy(timeout_s=settings.number("FACETL_DOWNLOAD_TIMEOUT_S"),
                       retries=int(settings.number("FACETL_DOWNLOAD_RETRIES")),
                       backoff_s=settings.number("FACETL_DOWNLOAD_BACKOFF_S"),
                       max_bytes=int(max_mb * 2**20))


class FetchError(Exception):
    def __init__(self, status: str, detail: str = "") -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


def _read_capped(response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} > {max_bytes}")
    data = response.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FetchError("too_large", f"body over {max_bytes} bytes")
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
        raise FetchError(f"http_{exc.code}", str(exc.reason)) from exc
    except TimeoutError as exc:
        raise FetchError("timeout", f"no answer within {policy.timeout_s}s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise FetchError("timeout", f"no answer within {policy.timeout_s}s") from exc
        raise FetchError("connection_error", str(exc.reason)) from exc
    except (ConnectionError, OSError, ValueError) as exc:
        raise FetchError("connection_error", str(exc)) from exc


def fetch_with_retries(url: str, policy: FetchPolicy) -> bytes:
    """Retry transient failures (timeouts, 5xx, 429) with exponential backoff."""
    for attempt in range(policy.retries + 1):
        try:
            return fetch_once(url, policy)
        except FetchError as exc:
            if exc.status not in TRANSIENT or attempt == policy.retries:
                raise
            time.sleep(policy.backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def read_local(path: str, policy: FetchPolicy) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise FetchError("missing", f"no such file: {path}")
    if file.stat().st_size > policy.max_bytes:
        raise FetchError("too_large", f"{file.stat().st_size} bytes > {policy.max_bytes}")
    return file.read_bytes()


def fetch_text(url: str, policy: FetchPolicy) -> bytes:
    """Fetch a source CSV; failing here means the whole source is unreachable."""
    try:
        return fetch_with_retries(url, FetchPolicy(policy.timeout_s, policy.retries,
                                                   policy.backoff_s, 512 * 2**20))
    except FetchError as exc:
        raise FacetlError(
            f"cannot fetch the data source {url} ({exc.status}: {exc.detail}). Offline? Point "
            "the pipeline at local data: `dvc exp run -S data.gender.source=PATH` with a CSV of "
            "file paths or a folder per class, and local weights with "
            "`-S backbones.<name>.weights=FILE` (or `none`); see the README."
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


def previous_manifest(out_dir: Path) -> dict[str, dict]:
    if not (out_dir / "manifest.csv").is_file():
        return {}
    frame = read_manifest(out_dir)
    ok = frame[frame["status"] == "ok"]
    return {row["source"]: row for row in ok.to_dict("records")}


def download(rows: pd.DataFrame, out_dir: Path, policy: FetchPolicy,
             workers: int | None = None) -> pd.DataFrame:
    """Fetch every row concurrently (bounded pool); write and return the manifest."""
    workers = workers or int(settings.number("FACETL_DOWNLOAD_WORKERS"))
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = previous_manifest(out_dir)

    def one(source: str) -> dict:
        reused = _reusable(previous, source, out_dir)
        if reused is not None:
            return {k: reused[k] for k in ("status", "bytes", "sha256", "file")} | {"detail": ""}
        return fetch_row(source, out_dir, policy)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(one, rows["source"]), total=len(rows), desc="download",
                            unit="img"))
    manifest = pd.concat([rows.reset_index(drop=True), pd.DataFrame(results)], axis=1)
    # A task's own columns (e.g. keypoint coordinates) ride along after the standard ones.
    manifest = manifest[MANIFEST_COLUMNS + [c for c in rows if c not in MANIFEST_COLUMNS]]
    write_csv(out_dir / "manifest.csv", manifest)
    return manifest


def check_statuses(manifest: pd.DataFrame, task: str) -> None:
    """Print the statuses counted; fail here, not two stages later, when no row succeeded."""
    counts = manifest["status"].value_counts().to_dict()
    print(f"download {task}: {len(manifest)} rows, statuses {counts}")
    for row in manifest[manifest["status"] != "ok"].head(5).itertuples():
        print(f"  e.g. {row.source}: {row.status} {row.detail}")
    if counts.get("ok", 0) == 0:
        raise FacetlError(
            f"download {task}: none of the {len(manifest)} rows gave an image (statuses "
            f"{counts}); check data.{task} in params.yaml (paths, columns, network) and the "
            "manifest's `detail` column"
        )
