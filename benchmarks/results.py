"""Results files: every measured figure lives in one file under benchmarks/results/, with the
command that produced it, the machine, the commit and the date, so docs tables can be generated
from it (docs/tables.py) and checked against it (tests/test_docs_tables.py)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
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
    """HEAD of the repository the benchmark ran from; `+changes` when the tree was not clean."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty.strip() else "")


def provenance() -> dict[str, str]:
    return {"command": " ".join(["python", *sys.argv]), "machine": machine(),
            "commit": commit(), "date": datetime.date.today().isoformat()}


def record(benchmark: str, key: str, figures: dict[str, Any], folder: Path = RESULTS) -> Path:
    """Store `figures` as entry `key` of benchmarks/results/<benchmark>.json with its provenance;
    other entries stay, so rerunning one experiment replaces only its own figures. `folder`:
    another results folder (a test's own)."""
    path = folder / f"{benchmark}.json"
    entries = json.loads(path.read_text())["entries"] if path.is_file() else {}
    entries[key] = {"provenance": provenance(), "figures": figures}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": benchmark, "entries": entries}, indent=1,
                              sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load(benchmark: str, folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    path = folder / f"{benchmark}.json"
    return json.loads(path.read_text())["entries"] if path.is_file() else {}
