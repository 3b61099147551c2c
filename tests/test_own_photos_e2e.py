"""The README's "Your own photos" commands, run word for word on a synthetic folder of photos.

The commands are read from README.md itself, so the page and the test cannot drift apart: a
user who copies them gets what this test checks (a trained model, its metrics, the kept and
dropped counts, and `facetl predict` answering).
"""

from __future__ import annotations

import json
import re
import shlex

import pandas as pd
import pytest

from benchmarks.workspace import REPO, commit_all, copy_repository, run, set_params
from tests.synthetic import write_class_folder
from tests.test_pipeline_e2e import TINY

pytestmark = pytest.mark.e2e


def own_photo_commands() -> list[str]:
    """The `dvc` commands in the README's "Your own photos" section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own photos", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("dvc ")]


def csv_example() -> str:
    """The README's example labels.csv (the block that starts with its header)."""
    section = (REPO / "README.md").read_text().split("## Your own photos", 1)[1]
    return next(block for block in re.findall(r"```\n(.*?)```", section, re.DOTALL)
                if block.startswith("path,"))


def test_the_readme_has_both_layouts():
    commands = own_photo_commands()
    assert len(commands) == 2
    assert "data.gender.source=data/external/gender " in commands[0] + " "
    assert "labels.csv" in commands[1]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the repository with tiny model settings; data comes from the README's commands."""
    repo = copy_repository(tmp_path_factory.mktemp("own"))
    set_params(repo, {key: value for key, value in TINY.items()
                      if not key.startswith("data.gender")})
    commit_all(repo, "tiny model settings")
    return repo


def test_a_folder_per_class_word_for_word(repo):
    photos = repo / "data/external/gender"
    # Class folders as people name them: capitalised (matched without regard to case).
    write_class_folder(photos, classes=("Female", "Male"), per_class=24)
    run(shlex.split(own_photo_commands()[0]), repo)

    gender = json.loads((repo / "metrics/gender.json").read_text())
    assert gender["n_test"] > 0 and 0 <= gender["accuracy"] <= 1
    download = json.loads((repo / "metrics/download_gender.json").read_text())
    assert {name: (row["kept"], row["dropped"]) for name, row in download["classes"].items()
            } == {"female": (24, 0), "male": (24, 0)}, download

    answer = run(["facetl", "predict", "--task", "gender", "--json",
                  str(photos / "Male/001.png")], repo)
    [entry] = json.loads(answer.stdout)
    assert entry["gender"] in ("female", "male") and "error" not in entry


def test_a_csv_of_paths_word_for_word(repo):
    photos = repo / "data/external/gender"
    header, *examples = csv_example().splitlines()
    assert header == "path,gender,person"
    rows = [header]
    # The README's people (alice, bob) and more like them, each with several photos.
    for person in range(12):
        for label, folder in ((0, "Female"), (1, "Male")):
            name = f"{('alice', 'bob')[label]}{person}"
            (photos / name).mkdir(parents=True, exist_ok=True)
            shots = sorted((photos / folder).iterdir())[2 * person:2 * person + 2]
            for shot, source in enumerate(shots):
                (photos / name / f"{shot:03d}.png").write_bytes(source.read_bytes())
                rows.append(f"{name}/{shot:03d}.png,{('female', 'male')[label]},{name}")
    (photos / "labels.csv").write_text("\n".join(rows) + "\n")
    assert len(examples) == 2

    run(shlex.split(own_photo_commands()[1]), repo)
    gender = json.loads((repo / "metrics/gender.json").read_text())
    index = pd.read_csv(repo / "data/prepared/gender/index.csv", dtype={"group": str})
    assert gender["n_test"] > 0 and set(index["group"]) == {
        f"{name}{person}" for name in ("alice", "bob") for person in range(12)}
    # Grouped by person: nobody is on both sides of the split.
    assert (index.groupby("group")["split"].nunique() == 1).all()
