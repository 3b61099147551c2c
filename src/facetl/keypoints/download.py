"""Stage download_keypoints: the images named in the keypoint CSV, fetched or copied and
verified, each manifest row carrying its 136 coordinates; unusable rows listed apart."""

from __future__ import annotations

from facetl.core import paths
from facetl.core.params import load_params, lookup
from facetl.data.download import check_statuses, download, fetch_policy
from facetl.keypoints.source import keypoint_rows

TASK = "keypoints"


def main() -> None:
    params = load_params()
    policy = fetch_policy(lookup(params, "download.max_mb"))
    rows = keypoint_rows(lookup(params, f"data.{TASK}"), paths.raw_dir(TASK))
    manifest = download(rows, paths.raw_dir(TASK), policy)
    check_statuses(manifest, TASK)
