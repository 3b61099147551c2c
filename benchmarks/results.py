"""Results files: every measured figure lives in one file under benchmarks/results/, with the
command that produced it, the machine, the commit and the date, so docs tables can be generated
from it (docs/tables.py) and checked against it (tests/test_docs_tables.py)."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]
SHARED = REPO.parent / "shared"  # the research data beside the repository (never committed)
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/>])/[^\s'\",:;]+")


def cpu_machine() -> str:
    """The CPU model as `lscpu` names it, with the instruction sets that decide conv speed."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in lines.splitlines() if ":" in line)
    model = fields.get("Model name", "?").strip()
    flags = fields.get("Flags", "").split()
    extras = [name for flag, name in (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16"))
              if flag in flags]
    return f"{model}, {os.cpu_count()} cores" + (f", {' '.join(extras)}" if extras else "")


def commit() -> str:
    """HEAD of the repository the benchmark ran from; `+changes` when its code was not clean
    (results files aside: a benchmark recording several entries changes them itself)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", f":!{RESULTS.relative_to(root)}"],
                               cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty.strip() else "")


def provenance(machine: str | None = None, command: str | None = None,
               code: str | None = None) -> dict[str, str]:
    """Where figures come from; `machine` and `command` name another machine's run (a GPU's)
    when the figures were measured there and are recorded here; `code`: the commit that ran
    when it is not this checkout's working tree (a workspace exported from one commit)."""
    return {"command": command or " ".join(["python", *sys.argv]),
            "machine": machine or cpu_machine(), "commit": code or commit(),
            "date": datetime.date.today().isoformat()}


def portable_path(match: re.Match) -> str:
    """A path as the project may speak of it: the shared data as `../shared/...`, the
    repository's own files relative to it, anything else (a scratch folder) as `<tmp>/name`."""
    path = Path(match.group(0))
    for root, shown in ((SHARED, "../shared"), (REPO, ".")):
        if path == root or root in path.parents:
            return str(Path(shown) / path.relative_to(root))
    return f"<tmp>/{path.name}"


def plain(value: Any) -> Any:
    """`value` as strict JSON can hold it: numpy scalars and arrays as Python numbers and lists,
    tuples as lists, NaN and infinities as null (a group with no photo has no accuracy), and
    no machine's own paths (results files are committed)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return ABSOLUTE_PATH.sub(portable_path, value)
    return value


def record(benchmark: str, key: str, figures: dict[str, Any], folder: Path = RESULTS, *,
           machine: str | None = None, command: str | None = None,
           code: str | None = None) -> Path:
    """Store `figures` as entry `key` of benchmarks/results/<benchmark>.json with its provenance;
    other entries stay, so rerunning one experiment replaces only its own figures. `folder`:
    another results folder (a test's own, a smoke run's); `machine`, `command`: the run's own
    where it ran elsewhere (default: this CPU as lscpu names it, this process's command); `code`:
    the commit that ran (default: this checkout's HEAD)."""
    path = folder / f"{benchmark}.json"
    entries = json.loads(path.read_text())["entries"] if path.is_file() else {}
    entries[key] = plain({"provenance": provenance(machine, command, code), "figures": figures})
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": benchmark, "entries": entries}, indent=1,
                              sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def add_results_dir(parser: argparse.ArgumentParser) -> None:
    """The `--results-dir` option of every recording benchmark: a smoke run writes elsewhere."""
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="folder of the results files (default: benchmarks/results)")


def load(benchmark: str, folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    path = folder / f"{benchmark}.json"
    return json.loads(path.read_text())["entries"] if path.is_file() else {}
