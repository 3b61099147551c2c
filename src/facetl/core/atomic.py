"""Atomic writes: a killed stage leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

TMP_MARK = ".tmp-"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _clean_stale(path: Path) -> None:
    """Remove temp siblings left by an earlier run that was killed before its rename."""
    pattern = f".{glob.escape(path.stem)}{TMP_MARK}*{glob.escape(path.suffix)}"
    for stale in path.parent.glob(pattern):
        _remove(stale)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    Works for files and directories alike: whatever the block creates at the temp path
    replaces `path` in one rename (an old directory is first moved aside, as a temp sibling
    that the next run cleans if this one is killed in between).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(path)
    # The suffix is kept: numpy, Keras and matplotlib choose the format from it.
    tmp = path.parent / f".{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}"
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            old = path.parent / f".{path.stem}{TMP_MARK}old-{os.getpid()}{path.suffix}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            _remove(tmp)


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
