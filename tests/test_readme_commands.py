"""Every command in the README runs as written: each `-S key=value` names a key of
params.yaml, and each stage or pipeline file it names exists. A renamed key breaks this test,
not the user."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.e2e import REPO
from tests.test_stage_deps import stages


def readme_commands() -> list[list[str]]:
    """`dvc ...` commands of the README's code blocks, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "README.md").read_text())
    commands = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("dvc "):
            commands.append(shlex.split(line))
    return commands


def has_key(params: dict, dotted: str) -> bool:
    node = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def overrides(command: list[str]) -> list[str]:
    keys = []
    for flag, value in zip(command, command[1:], strict=False):
        if flag in ("-S", "--set-param"):
            keys.append(value.split("=", 1)[0])
    return keys


def test_the_readme_has_commands_to_check() -> None:
    assert sum(len(overrides(c)) for c in readme_commands()) >= 10


def test_every_readme_override_names_a_param() -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    unknown = [(" ".join(c), key) for c in readme_commands() for key in overrides(c)
               if not has_key(params, key)]
    assert not unknown, f"README commands override keys params.yaml lacks: {unknown}"


def test_every_readme_repro_target_exists() -> None:
    names = {name for name, _, _ in stages()} | {name.split("@")[0] for name, _, _ in stages()}
    for command in readme_commands():
        if command[:2] != ["dvc", "repro"]:
            continue
        for target in (arg for arg in command[2:] if not arg.startswith("-")):
            assert target in names or (REPO / target).is_file(), f"{' '.join(command)}: {target}"


def test_the_check_catches_a_renamed_key() -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert has_key(params, "train.gender.epochs") and not has_key(params, "train.epochs")
