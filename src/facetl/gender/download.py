"""Stage download_gender: every row of the gender source, fetched (URLs) or copied (local
files), verified by decoding, and saved under its sha256, with a manifest of what happened."""

from __future__ import annotations

from facetl.core import paths
from facetl.core.params import load_params, lookup
from facetl.data.download import check_statuses, download, fetch_policy, fetch_text
from facetl.data.sources import load_rows

TASK = "gender"


def main() -> None:
    params = load_params()
    policy = fetch_policy(lookup(params, "download.max_mb"))
    rows = load_rows(lookup(params, f"data.{TASK}"), lambda url: fetch_text(url, policy))
    manifest = download(rows, paths.raw_dir(TASK), policy)
    check_statuses(manifest, TASK)
