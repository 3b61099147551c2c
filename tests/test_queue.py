"""Parallel sweeps: two backbones queued with `dvc exp run --queue`, run by two workers
(`dvc queue start -j 2`), each in a workspace of its own under .dvc/tmp/exps.

The queue's workers are DVC's celery workers, spawned detached by `dvc queue start` with this
process's environment (PATH, so the stages' `python` is this one) and ended by DVC after 10 s
with nothing queued. The data folder is outside the repository and named by absolute path:
the experiment workspaces are elsewhere, so a relative path would point at nothing there.
What is asserted is what ran and what it gave (the same as one run outside the queue), never
timing. While they run, the memory of every process working in the repository is sampled;
run with `-s` to see it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pytest

from benchmarks.workspace import commit_all, copy_repository, run, set_params
from tests.synthetic import write_labels_csv
from tests.test_pipeline_e2e import TINY
from tests.test_remote import experiments

pytestmark = pytest.mark.e2e

TARGET = "evaluate_gender"  # download ... evaluate: the backbone's metrics, no more
BACKBONES = ("vgg16", "mobilenet_v2")
WAIT_S = 900  # both experiments on 2 busy cores take about 2-3 minutes


class PeakMemory(threading.Thread):
    """Samples the memory of every process whose working directory is in `repo`: the queue
    workers, each experiment's `dvc exp exec-run` and its stages (in .dvc/tmp/exps/*).

    Proportional set size (PSS): pages shared between processes (TensorFlow's libraries in
    both experiments' stages) are split between them, so the sum is what the machine gives."""

    def __init__(self, repo: Path, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.repo, self.exps = str(repo), str(repo / ".dvc" / "tmp" / "exps")
        self.interval_s = interval_s
        self.peak_total = 0  # bytes: the sum over every process at the worst sample
        self.peak_by_workspace: dict[str, int] = defaultdict(int)
        self.peak_stage = 0  # the largest single stage process
        self.finished = threading.Event()

    def sample(self) -> tuple[int, dict[str, int]]:
        total, by_workspace = 0, defaultdict(int)
        for process in psutil.process_iter(["pid", "cwd"]):
            cwd = process.info["cwd"] or ""
            if process.info["pid"] == os.getpid() or not (
                    cwd == self.repo or cwd.startswith(self.repo + os.sep)):
                continue
            try:
                cmdline, size = process.cmdline(), process.memory_full_info().pss
            except psutil.Error:
                continue  # ended meanwhile
            if cmdline[-2:] == ["queue", "status"]:
                continue  # the test's own polling
            total += size
            if cwd.startswith(self.exps + os.sep):
                workspace = Path(cwd).relative_to(self.exps).parts[0]
                by_workspace[workspace] += size
                if any(part.startswith("stages/") for part in cmdline):
                    self.peak_stage = max(self.peak_stage, size)
        return total, by_workspace

    def run(self) -> None:
        while not self.finished.wait(self.interval_s):
            total, by_workspace = self.sample()
            self.peak_total = max(self.peak_total, total)
            for workspace, size in by_workspace.items():
                self.peak_by_workspace[workspace] = max(self.peak_by_workspace[workspace], size)

    def stop(self) -> None:
        self.finished.set()
        self.join(timeout=10)


def queue_statuses(repo: Path) -> dict[str, str]:
    """Experiment name -> Queued | Running | Success | Failed, from `dvc queue status`."""
    statuses = {}
    for line in run(["dvc", "queue", "status"], repo).stdout.splitlines():
        words = line.split()
        for status in ("Queued", "Running", "Success", "Failed"):
            if status in words:
                names = [name for name in words if name.startswith("q-")]
                statuses[names[0] if names else words[0]] = status
    return statuses


def test_two_queued_backbones_run_on_two_workers_and_give_what_a_direct_run_gives(tmp_path):
    data = tmp_path / "data"
    write_labels_csv(data, per_class=24, people=24)
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_repository(repo)
    run(["git", "config", "user.name", "t"], repo)
    run(["git", "config", "user.email", "t@t"], repo)
    set_params(repo, TINY | {"data.gender.source": str(data / "labels.csv"),
                             "data.gender.images": str(data / "images")})
    commit_all(repo, "tiny params")  # queued experiments start from the last commit

    names = {backbone: f"q-{backbone}" for backbone in BACKBONES}
    for backbone, name in names.items():
        run(["dvc", "exp", "run", "--queue", TARGET, "-n", name, "-S", f"backbone={backbone}"],
            repo)
    assert queue_statuses(repo) == dict.fromkeys(names.values(), "Queued")

    memory = PeakMemory(repo)
    memory.start()
    started = time.monotonic()
    started_workers = run(["dvc", "queue", "start", "-j", "2"], repo).stdout
    try:
        deadline = started + WAIT_S
        while (statuses := queue_statuses(repo)) and time.monotonic() < deadline and any(
                status in ("Queued", "Running") for status in statuses.values()):
            time.sleep(5)
        elapsed = time.monotonic() - started
    finally:
        memory.stop()
        if any(status in ("Queued", "Running") for status in queue_statuses(repo).values()):
            run(["dvc", "queue", "kill", *names.values()], repo, check=False)
        run(["dvc", "queue", "stop"], repo, check=False)

    mib = 2**20
    print(f"\nqueue of {len(names)} (-j 2): {elapsed:.0f} s; peak memory (PSS) of all its "
          f"processes {memory.peak_total / mib:.0f} MiB; per experiment workspace "
          + ", ".join(f"{size / mib:.0f}" for size in memory.peak_by_workspace.values())
          + f" MiB; largest stage {memory.peak_stage / mib:.0f} MiB")
    logs = {name: run(["dvc", "queue", "logs", name], repo, check=False).stdout
            for name in names.values()}
    assert "Started '2' new experiments task queue workers" in started_workers
    assert statuses == dict.fromkeys(names.values(), "Success"), (statuses, logs)
    for name in names.values():  # each ran the whole chain in its own workspace, from nothing
        assert {"features_gender", "train_gender", "evaluate_gender"} <= set(
            re.findall(r"Running stage '([^']+)'", logs[name])), logs[name]

    shown = experiments(repo)
    for backbone, name in names.items():
        metrics = shown[name]["metrics"]
        assert shown[name]["params"]["params.yaml"]["data"]["backbone"] == backbone
        gender = metrics["metrics/gender.json"]["data"]
        assert gender["backbone"] == backbone
        assert 0 <= gender["accuracy"] <= 1 and gender["n_test"] > 0
    # The same photos and split in both (prepare ran twice, from the same data and seed).
    assert len({shown[name]["metrics"]["metrics/gender.json"]["data"]["n_test"]
                for name in names.values()}) == 1
    # The main workspace was never touched: the runs are experiments, not its files.
    assert not (repo / "metrics/gender.json").exists()
    assert not (repo / "data/features/gender/mobilenet_v2.npy").exists()

    # The oracle: the same experiment run alone, outside the queue, every stage run again
    # (-f: nothing restored from the run-cache the queued runs filled), gives the same figures.
    run(["dvc", "exp", "run", "--temp", "-f", TARGET, "-n", "direct", "-S",
         f"backbone={BACKBONES[-1]}"], repo)
    shown = experiments(repo)
    direct = shown["direct"]["metrics"]["metrics/gender.json"]["data"]
    queued = shown[names[BACKBONES[-1]]]["metrics"]["metrics/gender.json"]["data"]
    assert json.dumps(queued, sort_keys=True) == json.dumps(direct, sort_keys=True)
