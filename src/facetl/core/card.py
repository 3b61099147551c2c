"""What a task's model-card lines are made of, in the layer below the tasks (ship/card.py
assembles the card): the workspace's metrics files, and shares written as percentages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_metrics(folder: Path, name: str) -> dict[str, Any] | None:
    """metrics/<name>.json of the workspace, or None where that stage has not run."""
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"
