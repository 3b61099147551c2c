"""The keypoint task's columns in `facetl report`: NME and failure rate on the held-out
frames."""

from __future__ import annotations

from typing import Any

from facetl.core.comparison import Comparison, Run, plain
from facetl.core.params import find


def row(run: Run) -> dict[str, Any]:
    """A run's figures, or blanks where its metrics are another run's keypoint model (both
    recipes name theirs in `keypoints.backbone`)."""
    found = run.metrics.get("keypoints", {})
    if found.get("backbone") and found["backbone"] != find(run.params, "keypoints.backbone"):
        found = {}
    return {"nme": found.get("nme"), "failure_rate": found.get("failure_rate")}


COMPARISON = Comparison(metrics={"keypoints": "metrics/keypoints.json"},
                        rows=lambda runs: [row(run) for run in runs],
                        columns={"score": (plain("NME", "nme", 4),
                                           plain("failure rate", "failure_rate"))})
