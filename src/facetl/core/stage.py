"""What every DVC stage entry shares: the settings checked first, user errors as one line
each and exit status 2, and a timing line.

A stage entry calls `check_params(SCHEMA)` with its task's schema (facetl.<task>.schema, light)
before it imports its task module: that import loads
TensorFlow (seconds, and log lines on stderr), and a wrong setting should cost neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from facetl.core.errors import FacetlError, exit_with
from facetl.core.params import load_params
from facetl.core.schema import TaskSchema, validate_params


def check_params(task: TaskSchema, path: str | Path = "params.yaml") -> None:
    """params.yaml's shared settings and all of `task`'s (not only this stage's part), before
    any work; another task's sections are its own stages' to check, so that editing its schema
    reruns none of this task's stages."""
    try:
        validate_params(load_params(path), str(path), tasks=[task])
    except FacetlError as exc:
        exit_with(exc)


def run_stage(main: Callable[..., None], *args: str) -> None:
    """Run a stage's `main(*args)`; a FacetlError is the user's to fix, so no traceback."""
    start = time.perf_counter()
    try:
        main(*args)
    except FacetlError as exc:
        exit_with(exc)
    # One parseable line per stage: benchmarks collect stage wall times from it.
    label = " ".join([main.__module__, *args])
    print(f"stage-time {label} {time.perf_counter() - start:.1f} s")
