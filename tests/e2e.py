"""Helpers for end-to-end tests: a throwaway copy of the repository with tiny params."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run with the test's Python first on PATH, so DVC stages' `python` is this environment."""
    cwd = Path(cwd)
    # The copy's own src/ first: the editable install would otherwise run this checkout's code.
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "PYTHONPATH": str(cwd / "src")} | (env or {})
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


def copy_repository(dest: Path) -> Path:
    """Copy the files git would commit (tracked and new, not ignored) into a fresh git repo."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).stdout
    for name in listed.splitlines():
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    run(["git", "init", "-q"], dest)
    commit_all(dest, "init")
    return dest


def set_params(repo: Path, overrides: dict[str, object]) -> None:
    """Write dotted overrides ("a.b.c": value) into the copy's params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def stages_run(output: str) -> list[str]:
    """The stages `dvc repro` (or `dvc exp run`) really ran, in order, from its output."""
    return re.findall(r"Running stage '([^']+)'", output)


def stage_seconds(output: str) -> dict[str, float]:
    """Each stage's own time, from the `stage-time` line `run_stage` prints."""
    return {label: float(seconds) for label, seconds in
            re.findall(r"^stage-time (.+) ([\d.]+) s$", output, re.MULTILINE)}


def commit_all(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)
