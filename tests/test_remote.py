"""A team shares a tiny run through a DVC remote and a git remote, as README's
"Sharing with a team" tells it to.

One engineer runs the gender pipeline up to `evaluate_gender`, `dvc push`es its outputs to a
local directory remote (standing in for S3/GCS/SSH) and pushes the commit to a shared bare git
repository; a teammate clones it afresh, `dvc pull`s, and has nothing to run. Then an
experiment goes the same way: `dvc exp push` by the one who ran it, `dvc exp pull` by the
other, with the same metrics and outputs on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.workspace import commit_all, copy_repository, run, set_params, stages_run
from tests.synthetic import write_labels_csv
from tests.test_pipeline_e2e import TINY

pytestmark = pytest.mark.e2e

TARGET = "evaluate_gender"  # download, faces, prepare, features, train, finetune, evaluate
STAGES = {"download_gender", "faces_gender", "prepare_gender", "features_gender",
          "train_gender", "finetune_gender", "evaluate_gender"}
OUTPUTS = ("data/raw/gender/manifest.csv", "data/prepared/gender/images.npy",
           "data/features/gender/vgg16.npy", "data/features/gender/vgg16.keras",
           "models/gender_head/head.keras", "models/gender/model.keras")
EXPERIMENT = "one-epoch"


def ran(output: str) -> set[str]:
    return set(stages_run(output))


def up_to_date(repo: Path) -> str:
    """`dvc status` of the stages that ran (the whole of dvc.yaml also lists those that never
    did: repeats, activations, scratch; and `dvc status` alone the keypoint pipeline)."""
    return run(["dvc", "status", "--with-deps", TARGET], repo).stdout


def experiments(repo: Path) -> dict[str, dict]:
    """Experiment name -> its `data` ({"params", "metrics", ...}) from `dvc exp show --json`."""
    found: dict[str, dict] = {}

    def visit(node: object) -> None:
        if isinstance(node, dict):
            if node.get("name") and isinstance(node.get("data"), dict) and node.get("rev") \
                    and node["rev"] != "workspace":
                found[node["name"]] = node["data"]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout))
    return found


def gender_metrics(data: dict) -> dict:
    return data["metrics"]["metrics/gender.json"]["data"]


def only_never_run_keypoints(stderr: str) -> bool:
    """A whole-repository checkout (`dvc exp apply`, `dvc checkout`, a bare `dvc pull`) exits
    non-zero while pipelines/keypoints/dvc.yaml has never run: its outputs have no hashes. True
    when those are the only targets it failed on."""
    failed = stderr.partition("Checkout failed for following targets:")[2]
    targets = failed.split("Is your cache up to date?")[0].split()
    return bool(targets) and all("keypoints" in target for target in targets)


def identify(repo: Path) -> None:
    """Commits (git's and experiments') need an author, also where git has no global one."""
    run(["git", "config", "user.name", "t"], repo)
    run(["git", "config", "user.email", "t@t"], repo)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """origin.git (the shared git repository), remote/ (the shared DVC storage), and `work`,
    where the first engineer ran the pipeline, pushed its outputs and its commit."""
    root = tmp_path_factory.mktemp("team")
    data = root / "data"  # outside every clone, at the same absolute path for all of them
    write_labels_csv(data, per_class=24, people=24)
    origin, storage = root / "origin.git", root / "remote"
    run(["git", "init", "-q", "--bare", str(origin)], root)
    work = root / "work"
    work.mkdir()
    copy_repository(work)
    identify(work)
    set_params(work, TINY | {"data.gender.source": str(data / "labels.csv"),
                             "data.gender.images": str(data / "images")})
    run(["dvc", "remote", "add", "-d", "team", str(storage)], work)  # into .dvc/config
    commit_all(work, "tiny params, the team's DVC remote")
    assert ran(run(["dvc", "repro", TARGET], work).stdout) == STAGES
    commit_all(work, "a tiny run")
    pushed = run(["dvc", "push"], work)
    assert "pushed" in pushed.stdout, pushed.stdout
    run(["git", "remote", "add", "origin", str(origin)], work)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], work)
    return {"root": root, "origin": origin, "storage": storage, "work": work}


def clone(team: dict, name: str) -> Path:
    destination = team["root"] / name
    run(["git", "clone", "-q", "-b", "main", str(team["origin"]), str(destination)],
        team["root"])
    identify(destination)
    return destination


def test_a_fresh_clone_pulls_the_run_and_has_nothing_to_run(team):
    teammate = clone(team, "teammate")
    assert not (teammate / "models/gender/model.keras").exists()  # git holds no outputs
    assert TARGET in up_to_date(teammate)  # before the pull, its outputs are missing

    # `dvc.yaml`: a bare `dvc pull` also tries the keypoint pipeline's outputs, which were
    # never run (no hashes in dvc.lock), and exits 1 ("Checkout failed") after fetching all.
    run(["dvc", "pull", "dvc.yaml"], teammate)

    assert "Data and pipelines are up to date" in up_to_date(teammate)
    assert not ran(run(["dvc", "repro", TARGET], teammate).stdout)
    for name in OUTPUTS:
        pulled, original = teammate / name, team["work"] / name
        assert pulled.is_file(), name
        assert pulled.read_bytes() == original.read_bytes(), name
    assert (json.loads((teammate / "metrics/gender.json").read_text())
            == json.loads((team["work"] / "metrics/gender.json").read_text()))


def test_an_experiment_round_trips_through_exp_push_and_exp_pull(team):
    work = team["work"]
    result = run(["dvc", "exp", "run", TARGET, "-n", EXPERIMENT,
                  "-S", "train.gender.epochs=1"], work)
    assert ran(result.stdout) == {"train_gender", "finetune_gender", "evaluate_gender"}
    ours = experiments(work)[EXPERIMENT]
    model = (work / "models/gender/model.keras").read_bytes()  # the experiment's, in place
    assert json.loads((work / "metrics/gender.json").read_text())["accuracy"] == (
        gender_metrics(ours)["accuracy"])
    run(["dvc", "exp", "push", "origin", EXPERIMENT], work)  # git refs + its DVC outputs
    assert "refs/exps/" in run(["git", "ls-remote", str(team["origin"])], work).stdout

    other = clone(team, "other")
    assert EXPERIMENT not in run(["dvc", "exp", "list", "--name-only"], other).stdout
    listed = run(["dvc", "exp", "list", "--name-only", "origin"], other).stdout
    assert EXPERIMENT in listed.split()

    run(["dvc", "exp", "pull", "origin", EXPERIMENT], other)

    assert EXPERIMENT in run(["dvc", "exp", "list", "--name-only"], other).stdout.split()
    theirs = experiments(other)[EXPERIMENT]
    assert gender_metrics(theirs) == gender_metrics(ours)
    assert theirs["params"]["params.yaml"]["data"]["train"]["gender"]["epochs"] == 1
    # Its outputs came with it: applied, the workspace is the experiment, nothing to run.
    applied = run(["dvc", "exp", "apply", EXPERIMENT], other, check=False)
    assert applied.returncode == 0 or only_never_run_keypoints(applied.stderr), applied.stderr
    assert (other / "models/gender/model.keras").read_bytes() == model
    assert "Data and pipelines are up to date" in up_to_date(other)
    # (the file, not `exp show`: DVC's metrics leave out lists, such as accuracy_ci95)
    assert (json.loads((other / "metrics/gender.json").read_text())
            == json.loads((work / "metrics/gender.json").read_text()))
