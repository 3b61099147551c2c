"""The figures of README.md and docs/**/*.md, generated from benchmarks/results/*.json.

A page marks where a table goes with two lines, `<!-- table: NAME -->` and `<!-- end table -->`,
and a figure inside prose with `<!-- value: BENCHMARK | ENTRY | KEY.PATH | FORMAT -->` before
it and `<!-- end value -->` after it; this script rewrites what lies between. A figure is typed
nowhere by hand: it lives in one results file (with the command, machine, commit and date that
produced it), and tests/test_docs_tables.py fails when a page and its results file disagree.
Each table is rendered by the benchmark that measures it (its `table`); this script only finds
the markers. The `stage_graph` block is drawn from the pipeline files (docs/stage_graph.py).

    python docs/tables.py           # rewrite the tables and values
    python docs/tables.py --check   # exit 1 and name the stale pages
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks` and `docs` as packages when run as a script

from benchmarks import (  # noqa: E402
    calibration_methods,
    combined_route,
    export_parity,
    face_finetune,
    face_network,
    flip_average,
    head_only,
    keypoint_routes,
    latency,
    no_face,
    patch_equivalence,
    real_experiments,
    temperature_transfer,
    training_precision,
    training_speed,
    web_half,
)
from benchmarks.results import load  # noqa: E402
from benchmarks.tables_format import Results  # noqa: E402
from docs.stage_graph import stage_graph  # noqa: E402

MARKER = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.DOTALL)
VALUE = re.compile(r"(<!-- value: ([^|]+?) \| ([^|]+?) \| ([^|]+?) \| (\w+) -->)(.*?)"
                   r"(<!-- end value -->)", re.DOTALL)

TABLES: dict[str, Callable[[Results], str]] = {
    "routes": real_experiments.routes_table, "headline": real_experiments.headline_table,
    "route_groups": real_experiments.route_groups_table,
    "route_calibration": real_experiments.route_calibration_table,
    "keypoints": keypoint_routes.table, "latency": latency.table,
    "export_parity": export_parity.table, "training_precision": training_precision.table,
    "head_only": head_only.table, "combined_route": combined_route.table,
    "web_half": web_half.table, "no_face": no_face.table,
    "calibration_methods": calibration_methods.table,
    "temperature_transfer": temperature_transfer.table, "flip_average": flip_average.table,
    "face_network": face_network.table, "face_finetune": face_finetune.table,
    "training_speed": training_speed.table, "patch_equivalence": patch_equivalence.table,
    "stage_graph": stage_graph,
}

VALUE_FORMATS: dict[str, Callable[[Any], str]] = {
    "percent": lambda v: f"{100 * v:.2f}%", "percent1": lambda v: f"{100 * v:.1f}%",
    "number2": lambda v: f"{v:.2f}", "number4": lambda v: f"{v:.4f}",
    "int": lambda v: f"{v:d}", "p": lambda v: f"{v:.2g}",
}


def value(results: Results, benchmark: str, entry: str, path: str, form: str) -> str:
    """One figure of a results file, as a page's prose shows it."""
    entries = results(benchmark)
    if entry not in entries:
        raise KeyError(f"{benchmark}.json has no entry {entry!r}")
    figure = reduce(lambda node, key: node[key], path.split("."), entries[entry]["figures"])
    return VALUE_FORMATS[form](figure)


def render(page: str, results: Results = load) -> str:
    """The page with every marked table and value regenerated; an unknown table name, or a
    value no results file holds, is an error."""
    def table(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name](results) + match.group(4)

    def figure(match: re.Match) -> str:
        return match.group(1) + value(results, *match.group(2, 3, 4, 5)) + match.group(7)

    return VALUE.sub(figure, MARKER.sub(table, page))


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale tables")
    args = parser.parse_args()
    stale = []
    for page in pages():
        text = page.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(page.relative_to(ROOT))
            if not args.check:
                page.write_text(fresh)
    if args.check and stale:
        sys.exit(f"stale tables in {', '.join(map(str, stale))}: run python docs/tables.py")
    print(f"{'stale' if args.check else 'rewritten'}: {[str(p) for p in stale]}")


if __name__ == "__main__":
    main()
