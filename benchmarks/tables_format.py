"""How the docs' tables write a figure and where it was measured, shared by every benchmark's
`table` renderer (docs/tables.py puts the tables in the pages), so that a share, an interval or
a provenance line reads the same on every page."""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from benchmarks.results import REPO

# A benchmark's entries by its name: benchmarks.results.load, or a test's own figures.
Results = Callable[[str], dict[str, dict[str, Any]]]
NOT_MEASURED = "Not measured yet"  # what a table says when its results file has no entry


def percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.2f}%"


def interval(ci: list[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def mean_sd(values: list[float]) -> str:
    spread = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.2f}{spread}"


def calibration_cell(metrics: dict[str, Any]) -> str:
    if metrics.get("ece") is None:
        return "—"
    return f"{percent(metrics['ece'])}{interval(metrics.get('ece_ci95'))}"


def groups_cell(metrics: dict[str, Any]) -> str:
    """Accuracy (and ECE, where measured) per front-end group: found, fallback, none."""
    groups = metrics.get("by_face") or {}
    return "; ".join(f"{group} {percent(row['accuracy'])} (n={row['n']}"
                     + (f", ECE {percent(row['ece'])}" if row.get("ece") is not None else "")
                     + ")" for group, row in groups.items()) or "—"


def weights_words(weights: str) -> str:
    """A backbone's `weights` setting in words, for a route's label."""
    if weights == "imagenet":
        return "ImageNet weights, downloaded by Keras"
    if weights == "none":
        return "random weights"
    if weights == "face_recognition_models":
        return "the file the face_recognition_models package installs"
    return f"local weights file `{Path(weights).name}`"


@cache
def commit_time(commit: str) -> float:
    """When `commit` was made (its `+changes` suffix aside), to order a range; unknown: last."""
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%ct", commit.split("+")[0]],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
        return float(out.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        return float("inf")


def provenance_line(entries: list[dict[str, Any]]) -> str:
    """One short line for a table: the machines, the date range and the commit range."""
    sources = [entry["provenance"] for entry in entries]
    machines = sorted({source["machine"] for source in sources})
    dates = sorted({source["date"] for source in sources})
    commits = sorted({source["commit"].split("+")[0] for source in sources},
                     key=lambda c: (commit_time(c), c))
    dirty = sum(source["commit"].endswith("+changes") for source in sources)
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    code = (f"commit {commits[0]}" if len(commits) == 1
            else f"commits {commits[0]} to {commits[-1]}")
    changes = f", {dirty} of them with uncommitted changes" if dirty else ""
    runs = f"{len(sources)} run{'s' if len(sources) > 1 else ''}"
    return f"{'; '.join(machines)}; {when}; {code} ({runs}{changes})"


def per_route_table(results: Results, benchmark: str, command: str, header: list[str],
                    rows: Callable[[str, dict], list[str]], note: Callable[[dict], str]) -> str:
    """A benchmark's table, one group of `rows` per results entry (a route folder, an exported
    file...), then `note` (given the first entry's figures) and where it was measured."""
    entries = results(benchmark)
    if not entries:
        return f"{NOT_MEASURED}: run `{command}`.\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in sorted(entries.items()):
        lines.extend(rows(f"`{name}`", entry["figures"]))
    first = next(iter(entries.values()))["figures"]
    return ("\n".join(lines) + f"\n\n{note(first)} Measured with `{command}` on: "
            f"{provenance_line(list(entries.values()))}.\n")
