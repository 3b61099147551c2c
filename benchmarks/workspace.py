"""Throwaway workspaces, the one harness of benchmarks and end-to-end tests: a copy of this
repository (one commit, or the working tree under test), its params overridden, its pipelines
run with this environment's Python. Tests import it; it imports nothing of tests."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


class CommandFailed(Exception):
    """A workspace command exited non-zero: its command line, status and output."""


def run(cmd: list[str], cwd: Path, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`cmd` in `cwd` with this Python first on PATH (DVC stages' `python`) and the workspace's
    own src/ on PYTHONPATH (an editable install would otherwise run this checkout's code);
    `env` adds to the environment."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "PYTHONPATH": str(Path(cwd) / "src")} | (env or {})
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise CommandFailed(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n"
                            f"{result.stderr}")
    return result


def head() -> str:
    return run(["git", "rev-parse", "--short=10", "HEAD"], REPO).stdout.strip()


def export_commit(dest: Path, commit: str) -> None:
    """The files of `commit` (never a working tree's uncommitted edits) into a new git repo."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO,
                             capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    run(["git", "init", "-q"], dest)
    commit_all(dest, f"facetl {commit}")


def copy_repository(dest: Path) -> Path:
    """The files git would commit (tracked and new, not ignored: the working tree under test)
    into a new git repo at `dest`."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).stdout
    for name in listed.splitlines():
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    run(["git", "init", "-q"], dest)
    commit_all(dest, "init")
    return dest


def commit_all(repo: Path, message: str) -> None:
    """Commit everything in the workspace (`dvc exp run` needs a commit to start from)."""
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost", "commit",
         "-qm", message], repo)


def set_params(repo: Path, overrides: dict[str, object], commit: str | None = None) -> dict:
    """Write dotted overrides ("a.b.c": value) into the workspace's params.yaml (into `commit`'s
    params.yaml, when given: nothing a previous run set stays); returns all the params."""
    path = repo / "params.yaml"
    text = (run(["git", "show", f"{commit}:params.yaml"], REPO).stdout if commit
            else path.read_text())
    params = override(yaml.safe_load(text), overrides)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def override(params: dict, overrides: dict[str, object]) -> dict:
    """`params` with each dotted key ("a.b.c": value) set, in place."""
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return params


def stages_run(output: str) -> list[str]:
    """The stages `dvc repro` (or `dvc exp run`) really ran, in order, from its output."""
    return re.findall(r"Running stage '([^']+)'", output)


def stage_seconds(output: str) -> dict[str, float]:
    """Each stage's own time, from the `stage-time` line every stage prints."""
    return {label: float(seconds) for label, seconds in
            re.findall(r"^stage-time (.+) ([\d.]+) s$", output, re.MULTILINE)}
