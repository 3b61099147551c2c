"""The Udacity facial-keypoints layout: a CSV of image names and 68 points, beside the images.

The CSV's first column (often unnamed) is an image file name; the next 136 columns are
x0, y0, x1, y1, ..., x67, y67 in pixels of that image. Rows whose points cannot be used are
reported and left out (written to `rejected.csv` beside the manifest) instead of stopping the
pipeline; the good rows become download rows that carry their coordinates.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from facetl.core.atomic import write_csv
from facetl.core.errors import FacetlError
from facetl.data.sources import is_url, read_csv_table
from facetl.keypoints.layout import OUTER_EYE_CORNERS, POINTS

COORDINATE_COLUMNS = [f"{axis}{i}" for i in range(POINTS) for axis in "xy"]


def person_of(file_name: str) -> str:
    """`Luis_Fonsi_21.jpg` -> `Luis_Fonsi`: a person's frames share all before the last `_`."""
    stem = PurePath(file_name).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def image_source(images: str, file_name: str) -> str:
    """Where a CSV's file name is: under a base URL, or in a local folder."""
    if is_url(images):
        return f"{images.rstrip('/')}/{quote(file_name)}"
    return str(Path(images) / file_name)


def read_keypoint_csv(path: Path) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """(file names, coordinates as floats (NaN where unreadable), the raw text of each cell)."""
    frame = read_csv_table(path, str(path))
    if frame.shape[1] != 1 + len(COORDINATE_COLUMNS):
        raise FacetlError(
            f"{path}: expected an image file name column then {len(COORDINATE_COLUMNS)} "
            f"coordinate columns (x0, y0, ..., x67, y67), found {frame.shape[1]} columns; "
            "data.keypoints.csv must be in the Udacity facial-keypoints layout"
        )
    raw = frame.iloc[:, 1:].set_axis(COORDINATE_COLUMNS, axis=1)
    coordinates = raw.apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    return frame.iloc[:, 0].str.strip(), coordinates, raw


def rejection_reasons(names: pd.Series, coordinates: pd.DataFrame,
                      raw: pd.DataFrame) -> pd.Series:
    """Why each row is unusable ("" for good rows): the first problem found."""
    values = coordinates.to_numpy(dtype="float64")
    finite = np.isfinite(values)
    a, b = OUTER_EYE_CORNERS
    with np.errstate(invalid="ignore"):
        same_corners = ((values[:, 2 * a] == values[:, 2 * b])
                        & (values[:, 2 * a + 1] == values[:, 2 * b + 1]))
    reasons = []
    for i, name in enumerate(names):
        path = PurePath(name)
        if not name:
            reasons.append("no image file name")
        elif path.is_absolute() or ".." in path.parts:
            reasons.append(f"file name {name!r} is not inside data.keypoints.images")
        elif not finite[i].all():
            column = COORDINATE_COLUMNS[int(np.argmin(finite[i]))]
            text = raw.iat[i, int(np.argmin(finite[i]))]
            reasons.append(f"{column} is {'missing' if not text.strip() else repr(text)}")
        elif same_corners[i]:
            reasons.append(f"outer eye corners (points {a} and {b}) coincide: NME undefined")
        else:
            reasons.append("")
    return pd.Series(reasons, index=names.index, dtype=str)


def keypoint_rows(cfg: dict[str, Any], report_dir: Path) -> pd.DataFrame:
    """Download rows (row, source, label, group, x0..y67) of the usable CSV rows.

    The unusable ones are printed and written to `report_dir/rejected.csv` with their reason.
    """
    csv = Path(str(cfg["csv"]))
    if is_url(str(cfg["csv"])) or not csv.is_file():
        raise FacetlError(
            f"data.keypoints.csv: no such local file {str(cfg['csv'])!r}; point it at the "
            "facial-keypoints CSV (first column the image name, then x0,y0,...,x67,y67) and "
            "data.keypoints.images at its image folder or base URL"
        )
    images = str(cfg.get("images") or csv.parent)
    names, coordinates, raw = read_keypoint_csv(csv)
    reasons = rejection_reasons(names, coordinates, raw)
    bad = reasons != ""
    rejected = pd.DataFrame({"row": np.flatnonzero(bad), "file_name": names[bad],
                             "reason": reasons[bad]})
    write_csv(report_dir / "rejected.csv", rejected)
    if len(rejected):
        print(f"skipped {len(rejected)} of {len(names)} rows of {csv} (see "
              f"{report_dir / 'rejected.csv'}), e.g.:")
        for row in rejected.head(5).itertuples():
            print(f"  row {row.row} ({row.file_name}): {row.reason}")
    good = ~bad.to_numpy()
    rows = pd.DataFrame({
        "row": np.flatnonzero(good),
        "source": [image_source(images, name) for name in names[good]],
        "label": "",
        "group": [person_of(name) for name in names[good]],
    })
    return pd.concat([rows, coordinates[good].reset_index(drop=True)], axis=1)
