"""Every setting a stage lists reaches its run-cache key, as DVC itself computes the key.

`dvc repro` restores a changed stage's outputs from its run cache when an earlier run had the
same command, deps and params. DVC 3 hashes that lock entry with every key named `size` or
`nfiles` dropped, at any depth (treeverse/dvc#10296, unfixed): a param of that name shows in
`dvc status`, yet the run cache hands back the outputs of its old value. These tests run DVC's
own `dvc.stage.cache` functions on the real pipeline files, params.yaml changed one leaf at a
time, so no param can slip past them whatever its name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dvc.dependency.param import ParamsDependency
from dvc.stage import Stage
from dvc.stage.cache import _can_hash, _get_stage_hash
from dvc_data.hashfile.meta import Meta

from benchmarks.workspace import REPO
from tests.dvc_project import leaves, placeholder_project, write_params

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
IGNORED = {Meta.PARAM_SIZE, Meta.PARAM_NFILES}  # the keys DVC's run-cache key drops


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[tuple[Path, list[Stage], list[Stage]]]:
    """The placeholder project, its stages, and those DVC run-caches, saved as after a run."""
    root = tmp_path_factory.mktemp("project")
    with placeholder_project(root) as repo:
        stages = list(repo.index.stages)
        cached = [stage for stage in stages if _can_hash(stage)]
        for stage in cached:
            stage.save(run_cache=False)
        yield root, stages, cached


def listed(stage: Stage) -> list[str]:
    """The params.yaml keys in the stage's `params:`, interpolated (`backbones.${backbone}`)."""
    return [key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in dep.params]


def changed(value: Any) -> Any:
    """Another value of the same kind (it need not be valid: no stage runs)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, list):
        return [*value, changed(value[-1]) if value else 1]
    return 1  # null, {}


def with_leaf(params: dict[str, Any], leaf: str, value: Any) -> dict[str, Any]:
    params = copy.deepcopy(params)
    *parents, last = leaf.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value
    return params


def run_cache_key(stage: Stage, root: Path, params: dict[str, Any]) -> str:
    """The stage's run-cache key as `dvc repro` computes it, its params read from `params`
    written as the project's params.yaml."""
    write_params(root, params)
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            dep.save()
    return _get_stage_hash(stage)


def unseen(stage: Stage, root: Path, params: dict[str, Any]) -> list[str]:
    """The leaves of `params` the stage lists whose change leaves its run-cache key as it was:
    the settings `dvc repro` would answer from an earlier run's outputs."""
    keys = listed(stage)
    mine = {leaf: value for leaf, value in leaves(params).items()
            if any(leaf == key or leaf.startswith(f"{key}.") for key in keys)}
    assert mine, f"{stage.addressing} lists no leaf of params.yaml"
    before = run_cache_key(stage, root, params)
    return [leaf for leaf, value in mine.items()
            if run_cache_key(stage, root, with_leaf(params, leaf, changed(value))) == before]


def test_every_listed_setting_changes_its_stages_run_cache_key(project):
    root, stages, cached = project
    # DVC never run-caches a stage with a persisted output or a remote dep: nothing to restore.
    assert all(any(out.persist for out in stage.outs) for stage in stages if stage not in cached)
    assert len(cached) > len(stages) / 2
    blind = {f"{Path(stage.path).relative_to(root)}:{stage.name}": found for stage in cached
             if (found := unseen(stage, root, PARAMS))}
    assert not blind, f"the run cache would restore old outputs when these change: {blind}"


def test_the_check_finds_a_setting_named_size_or_nfiles(project):
    """The fault itself, on the DVC installed: these two names are invisible to the key (if this
    fails, DVC has fixed #10296 and the naming rule could go)."""
    root, _, cached = project
    [faces] = [stage for stage in cached if stage.name == "faces_gender"]
    params = with_leaf(with_leaf(PARAMS, "faces.size", 300), "faces.nfiles", 2)
    assert unseen(faces, root, params) == ["faces.size", "faces.nfiles"]


def key_paths(tree: Any, name: str = "") -> Iterator[str]:
    """Every key at any depth (inside lists too), by its dotted path."""
    if isinstance(tree, dict):
        for key, child in tree.items():
            path = f"{name}.{key}" if name else str(key)
            yield path
            yield from key_paths(child, path)
    elif isinstance(tree, list):
        for i, child in enumerate(tree):
            yield from key_paths(child, f"{name}[{i}]")


def test_no_setting_has_a_name_the_run_cache_ignores():
    bad = [path for path in key_paths(PARAMS) if path.rsplit(".", 1)[-1] in IGNORED]
    assert not bad, f"rename {bad}: DVC's run-cache key drops keys named {sorted(IGNORED)}"
