"""Atomic writes: a failed or killed writer leaves the old output or the new, never a part."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from facetl.core.atomic import atomic_path, write_bytes, write_csv, write_json


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writers_round_trip(tmp_path):
    write_json(tmp_path / "m.json", {"b": 1, "a": [0.5]})
    write_csv(tmp_path / "t.csv", pd.DataFrame({"x": [1, 2]}))
    write_bytes(tmp_path / "deep" / "b.bin", b"\x00\x01")
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": [0.5], "b": 1}
    assert pd.read_csv(tmp_path / "t.csv")["x"].tolist() == [1, 2]
    assert (tmp_path / "deep" / "b.bin").read_bytes() == b"\x00\x01"
    assert names(tmp_path) == ["deep", "m.json", "t.csv"]  # no temp files beside them


def test_a_block_that_raises_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.9})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"accuracy": ')
        raise RuntimeError("killed half way")
    assert json.loads(target.read_text()) == {"accuracy": 0.9}
    assert names(tmp_path) == ["metrics.json"]


def test_a_stale_temp_from_a_killed_run_is_cleaned(tmp_path):
    stale_file = tmp_path / ".features.tmp-12345.npy"
    stale_file.write_bytes(b"half an array")
    stale_dir = tmp_path / ".prepared.tmp-54321"
    stale_dir.mkdir()
    (stale_dir / "images.npy").write_bytes(b"half")
    write_bytes(tmp_path / "features.npy", b"whole")
    with atomic_path(tmp_path / "prepared") as tmp:
        tmp.mkdir()
    assert names(tmp_path) == ["features.npy", "prepared"]


def test_directories_are_replaced_whole(tmp_path):
    target = tmp_path / "prepared"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "old.npy").write_bytes(b"old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.npy").write_bytes(b"new")
    assert names(target) == ["new.npy"]  # no file of the old version survives
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "newer.npy").write_bytes(b"part")
        raise ValueError("failed")
    assert names(target) == ["new.npy"] and names(tmp_path) == ["prepared"]


def test_a_killed_process_leaves_the_old_output_and_the_rerun_completes(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"version": 1})
    writer = textwrap.dedent(f"""
        import os, signal
        from facetl.core.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text('{{"version": 2, "trunc')
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", writer], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"version": 1}
    assert len(names(tmp_path)) == 2  # the old file and the killed run's temp
    write_json(target, {"version": 2})
    assert json.loads(target.read_text()) == {"version": 2}
    assert names(tmp_path) == ["out.json"]
