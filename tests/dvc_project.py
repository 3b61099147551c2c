"""A throwaway DVC project holding the real pipeline files and params.yaml, every file dep and
out a placeholder: DVC's own code (stage loading, params reading, lock entries, run-cache keys,
status) runs on the real stage definitions in seconds, with no stage run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from benchmarks.workspace import REPO

PIPELINES = ("dvc.yaml", "pipelines/keypoints/dvc.yaml", "pipelines/gender_ood/dvc.yaml")


def placeholder_project(dest: Path, pipelines: tuple[str, ...] = PIPELINES) -> Repo:
    """`pipelines` and params.yaml copied into `dest`, a new DVC project (no git), with a small
    file for each local file dep and out the stages name (a folder holding one when the path
    has no suffix); returns the opened Repo (the caller closes it)."""
    for name in (*pipelines, "params.yaml"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, dest / name)
    Repo.init(dest, no_scm=True)
    repo = Repo(dest)
    files = {Path(item.fs_path) for stage in repo.index.stages
             for item in (*stage.deps, *stage.outs)
             if item.protocol == "local" and not isinstance(item, ParamsDependency)}
    for path in sorted(files):  # a folder before the files named inside it
        if path.exists():
            continue
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(path.name)
        else:
            path.mkdir(parents=True)
            (path / "placeholder").write_text(path.name)
    return repo


def write_params(root: Path, params: dict[str, Any]) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def leaves(tree: Any, name: str = "") -> dict[str, Any]:
    """Every leaf of a params tree by its dotted name (a list is one leaf, as in `-S`)."""
    if not isinstance(tree, dict) or not tree:
        return {name: tree}
    found: dict[str, Any] = {}
    for key, child in tree.items():
        found |= leaves(child, f"{name}.{key}" if name else str(key))
    return found
