"""Turning a data source (URL CSV, local CSV, or class folders) into one table of rows.

Every source becomes the same frame: `source` (an http(s) URL or a local file path),
`label` (class name) and `group` (person id, or "" when unknown).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from facetl.core.errors import FacetlError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def is_url(text: str) -> bool:
    return "://" in text


def read_csv_table(text_or_path: str | Path | bytes, where: str) -> pd.DataFrame:
    """Read a CSV, turning pandas' parser errors into one message that names the file."""
    source = io.BytesIO(text_or_path) if isinstance(text_or_path, bytes) else text_or_path
    try:
        with warnings.catch_warnings():
            # index_col=False: a first row wider than the header is an error, not an index.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(source, dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise FacetlError(f"{where}: not a readable CSV ({exc})") from exc


def require_columns(frame: pd.DataFrame, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FacetlError(
            f"{where}: missing column {', '.join(repr(c) for c in missing)}; "
            f"the file has {list(frame.columns)}. Set the column names in params.yaml."
        )


def rows_from_csv(frame: pd.DataFrame, cfg: dict[str, Any], where: str,
                  base: Path | None) -> pd.DataFrame:
    """Rows of a CSV with a path-or-URL column and a label column (and optional group)."""
    path_col, label_col = cfg["path_column"], cfg["label_column"]
    group_col = cfg.get("group_column") or ""
    require_columns(frame, [path_col, label_col] + ([group_col] if group_col else []), where)
    sources = frame[path_col].str.strip()
    if base is not None:
        sources = sources.map(lambda s: s if is_url(s) or not s else str(base / s))
    return pd.DataFrame(
        {
            "source": sources,
            "label": frame[label_col].str.strip().str.lower(),
            "group": frame[group_col].astype(str) if group_col else "",
        }
    )


def class_folders(folder: Path, classes: list[str]) -> dict[str, Path]:
    """Each class's subfolder, its name matched ignoring case (`Female/` holds class female).

    Two subfolders of one class (`female/` and `Female/`, possible where names are
    case-sensitive) are an error: quietly taking one would leave the other's photos out.
    """
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    matches = {c: [p for p in subfolders if p.name.lower() == c] for c in classes}
    for label, found in matches.items():
        if len(found) > 1:
            raise FacetlError(
                f"{folder}: subfolders {' and '.join(repr(p.name) for p in found)} are both "
                f"class {label!r} (folder names are matched ignoring case); merge them into one"
            )
    missing = [c for c in classes if not matches[c]]
    if missing:
        raise FacetlError(
            f"{folder}: no subfolder for class {missing}; found {[p.name for p in subfolders]}. "
            "A folder source needs one subfolder per class named as in data.<task>.classes "
            "(ignoring case)."
        )
    return {label: found[0] for label, found in matches.items()}


def rows_from_folder(folder: Path, classes: list[str]) -> pd.DataFrame:
    """One subfolder per class: `folder/male/*.jpg`, `folder/Female/*.jpg`."""
    rows = [
        {"source": str(path), "label": label, "group": ""}
        for label, subfolder in class_folders(folder, classes).items()
        for path in sorted(subfolder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return pd.DataFrame(rows, columns=["source", "label", "group"])


def select_rows(rows: pd.DataFrame, classes: list[str], per_class: int | None) -> pd.DataFrame:
    """Keep known classes (drops e.g. "unsure"), the first `per_class` of each, like the chapter."""
    kept = rows[rows["label"].isin(classes) & (rows["source"] != "")]
    if per_class:
        kept = kept.groupby("label", sort=False).head(per_class)
    return kept.reset_index(names="row")


def selection_counts(rows: pd.DataFrame, selected: pd.DataFrame,
                     classes: list[str]) -> dict[str, Any]:
    """What select_rows left out, so a cap or a misspelt label is seen, not silently applied.

    Per class: rows in the source with a path (`in_source`), `kept`, and `dropped` by
    per_class; beside them the rows of other labels and the rows of a class with no path.
    """
    usable = rows[rows["source"] != ""]["label"].value_counts()
    kept = selected["label"].value_counts()
    known = rows["label"].isin(classes)
    return {
        "classes": {c: {"in_source": int(usable.get(c, 0)), "kept": int(kept.get(c, 0)),
                        "dropped": int(usable.get(c, 0) - kept.get(c, 0))} for c in classes},
        "other_labels": int((~known).sum()),
        "no_source": int((known & (rows["source"] == "")).sum()),
    }


def class_names(cfg: dict[str, Any]) -> list[str]:
    """data.<task>.classes as the labels are compared: lower case."""
    return [str(c).lower() for c in cfg["classes"]]


def source_rows(cfg: dict[str, Any], fetch_text: Any) -> pd.DataFrame:
    """Every row of the source named by `cfg["source"]`, before any selection.

    `fetch_text(url)` fetches a remote CSV. Relative paths in a local CSV are taken from
    `cfg["images"]`, the folder DVC tracks.
    """
    source = str(cfg["source"])
    if is_url(source):
        return rows_from_csv(read_csv_table(fetch_text(source), source), cfg, source, None)
    path = Path(source)
    if path.is_dir():
        return rows_from_folder(path, class_names(cfg))
    if path.is_file():
        return rows_from_csv(read_csv_table(path, source), cfg, source, images_folder(cfg))
    raise FacetlError(
        f"data source {source!r} does not exist; set data.<task>.source to a CSV "
        "(URL or local path) or to a folder with one subfolder per class"
    )


def load_rows(cfg: dict[str, Any], fetch_text: Any) -> pd.DataFrame:
    """The source's rows of the configured classes, at most `per_class` of each."""
    return select_rows(source_rows(cfg, fetch_text), class_names(cfg), cfg.get("per_class"))


def images_folder(cfg: dict[str, Any]) -> Path:
    """The folder a local CSV's relative paths are in: a DVC dependency, so it must be named."""
    folder = Path(str(cfg.get("images") or ""))
    if not str(cfg.get("images") or "") or not folder.is_dir():
        raise FacetlError(
            f"data.<task>.images = {cfg.get('images')!r} is not a folder; set it to the folder "
            f"that the relative paths in {cfg['source']} start from (e.g. the CSV's own folder, "
            f"{Path(str(cfg['source'])).parent}): DVC tracks that folder, so a replaced photo "
            "reruns the pipeline"
        )
    return folder
