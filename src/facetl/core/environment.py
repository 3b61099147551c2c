"""Environment variables: run-time knobs that cannot change a result, unlike params.

Changing them must rerun nothing, so no stage lists them; each has a default that suits
the machine the pipeline runs on.
"""

from __future__ import annotations

import os

from facetl.core.errors import FacetlError

DEFAULTS = {
    "FACETL_DOWNLOAD_WORKERS": "8",  # concurrent fetches
    "FACETL_DOWNLOAD_TIMEOUT_S": "10",  # per request
    "FACETL_DOWNLOAD_RETRIES": "3",  # on timeouts, 5xx and 429
    "FACETL_DOWNLOAD_BACKOFF_S": "0.5",  # first wait between retries, doubled each time
    "FACETL_MULTI_GPU": "0",  # 1: spread extraction over every GPU the backend sees
    "FACETL_WORKERS": "2",  # data-loading (augmentation) threads of the fine-tuning trainers
}


def variable(name: str) -> str:
    return os.environ.get(name, DEFAULTS[name])


def number(name: str) -> float:
    """A numeric variable, with an error naming it when it is not a number."""
    try:
        return float(variable(name))
    except ValueError as exc:
        raise FacetlError(f"environment variable {name}={variable(name)!r} is not a number "
                          f"(default {DEFAULTS[name]})") from exc


def count(name: str) -> int:
    """A whole-number variable >= 1 (threads, workers), with an error naming it."""
    value = number(name)
    if not value.is_integer() or value < 1:
        raise FacetlError(f"environment variable {name}={variable(name)!r} must be a whole "
                          f"number >= 1 (default {DEFAULTS[name]})")
    return int(value)


def flag(name: str) -> bool:
    return variable(name).strip().lower() in ("1", "true", "yes")
