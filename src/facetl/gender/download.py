"""Stage download_gender: every row of the gender source, fetched (URLs) or copied (local
files), verified by decoding, and saved under its sha256, with a manifest of what happened.

What the source held, what `per_class` kept and dropped, and what the download gave are
printed and written to metrics/download_gender.json, so a cap on a user's own photos is seen.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_json
from facetl.core.params import load_params, lookup
from facetl.data.download import (
    check_statuses,
    download,
    fetch_policy,
    fetch_text,
    status_counts,
)
from facetl.data.sources import class_names, select_rows, selection_counts, source_rows

TASK = "gender"


def selection_lines(counts: dict[str, Any], rows: pd.DataFrame,
                    per_class: int | None) -> list[str]:
    """What select_rows left out, in words (examples of the other labels, to spot a typo)."""
    classes = counts["classes"]
    lines = [", ".join(f"{c}: kept {n['kept']} of {n['in_source']}" for c, n in classes.items())]
    if any(n["dropped"] for n in classes.values()):
        lines.append(f"data.{TASK}.per_class = {per_class} dropped "
                     + ", ".join(f"{n['dropped']} {c}" for c, n in classes.items())
                     + f" (set data.{TASK}.per_class: null to keep every photo)")
    if counts["other_labels"]:
        others = rows.loc[~rows["label"].isin(list(classes)), "label"].value_counts().head(5)
        examples = {label: int(n) for label, n in others.items()}
        lines.append(f"left out {counts['other_labels']} rows of other labels (e.g. "
                     f"{examples}; data.{TASK}.classes is {list(classes)})")
    if counts["no_source"]:
        lines.append(f"left out {counts['no_source']} rows with an empty path")
    return lines


def download_metrics(counts: dict[str, Any], manifest: pd.DataFrame) -> dict[str, Any]:
    """The selection counts, with each class's `ok` images and every status counted."""
    ok = manifest.loc[manifest["status"] == "ok", "label"].value_counts()
    return counts | {
        "classes": {c: n | {"ok": int(ok.get(c, 0))} for c, n in counts["classes"].items()},
        "rows": len(manifest),
        "statuses": status_counts(manifest),
    }


def main() -> None:
    params = load_params()
    cfg = lookup(params, f"data.{TASK}")
    policy = fetch_policy(lookup(params, "download.max_mb"))
    rows = source_rows(cfg, lambda url: fetch_text(url, policy, f"data.{TASK}.source"))
    selected = select_rows(rows, class_names(cfg), cfg.get("per_class"))
    counts = selection_counts(rows, selected, class_names(cfg))
    for line in selection_lines(counts, rows, cfg.get("per_class")):
        print(f"download {TASK}: {line}")
    manifest = download(selected, paths.raw_dir(TASK), policy)
    write_json(paths.metrics_path(f"download_{TASK}"), download_metrics(counts, manifest))
    check_statuses(manifest, TASK)
