"""What every DVC stage entry shares: user errors exit 2 with one line, and a timing line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from facetl.core.errors import FacetlError


def run_stage(main: Callable[..., None], *args: str) -> None:
    """Run a stage's `main(*args)`; a FacetlError is the user's to fix, so no traceback."""
    start = time.perf_counter()
    try:
        main(*args)
    except FacetlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    # One parseable line per stage: benchmarks collect stage wall times from it.
    label = " ".join([main.__module__, *args])
    print(f"stage-time {label} {time.perf_counter() - start:.1f} s")
