"""benchmarks/latency.py splits a photo's time into its steps: each step timed, a delay put into
one step shows up in that step (and the total) only, and the steps add up to about the total
through `predict_gender`. A tiny model on synthetic photos; figures go to the test's folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import facetl.faces.detect
from benchmarks import latency
from benchmarks.results import load
from tests.tiny_pipeline import trained_gender

PHOTOS = 4
DELAY_MS = 500  # put into the landmarks, part of alignment


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A trained tiny gender model (no face front end) and a folder of a few of its photos."""
    folder = trained_gender(tmp_path_factory.mktemp("latency"))
    photos = folder / "photos"
    photos.mkdir()
    for file in sorted((folder / "source/images").iterdir())[:PHOTOS]:
        shutil.copy(file, photos)
    return folder


def aligned_models(workspace: Path) -> Path:
    """A copy of the models whose model.json asks for the face front end (cheap settings: the
    synthetic photos hold no face, so every photo takes the centred square)."""
    models = workspace / "aligned"
    if not models.is_dir():
        shutil.copytree(workspace / "models", models)
        meta_file = models / "gender/model.json"
        meta = json.loads(meta_file.read_text())
        meta["faces"] = {"align": True, "upsample": 0, "detect_long_side": 80, "pad": 0.1,
                         "cnn": False, "crop_size": 48, "margin": 0.25}
        meta_file.write_text(json.dumps(meta))
    return models


def run(workspace: Path, models: Path, results: Path, *runtimes: str) -> dict[str, dict]:
    latency.main(["--models", str(models), "--photos", str(workspace / "photos"), "--n", "3",
                  "--warmup", "1", "--label", "tiny", "--results-dir", str(results),
                  "--runtime", *runtimes])
    return {name: entry["figures"] for name, entry in load("latency", results).items()}


def check_split(figures: dict, timed: tuple[str, ...]) -> None:
    steps = figures["steps"]
    assert figures["photos"] == 3 and figures["unreadable"] == 0
    assert [step for step in latency.STEPS if steps[step] is not None] == list(timed)
    for step in timed:
        assert 0 <= steps[step]["p50_ms"] <= steps[step]["p95_ms"]
        assert steps[step]["mean_ms"] >= 0
    parts = sum(steps[step]["mean_ms"] for step in timed if step != "total")
    assert steps["total"]["mean_ms"] / 3 <= parts <= 3 * steps["total"]["mean_ms"]


def test_without_a_face_front_end_every_step_but_detection_is_timed(workspace, tmp_path):
    figures = run(workspace, workspace / "models", tmp_path, "keras")["tiny-keras"]
    check_split(figures, ("decode", "alignment", "network", "total"))
    assert figures["route"]["align"] is False and figures["faces"] == {"off": 3}
    assert figures["route"]["input_size"] == 32 and figures["runtime"] == "keras"


def test_a_delay_in_alignment_shows_in_alignment_and_the_total_only(workspace, tmp_path,
                                                                    monkeypatch):
    landmarks = facetl.faces.detect.landmarks

    def slow(*args):
        time.sleep(DELAY_MS / 1000)
        return landmarks(*args)

    monkeypatch.setattr(facetl.faces.detect, "landmarks", slow)
    figures = run(workspace, aligned_models(workspace), tmp_path, "keras")["tiny-keras"]
    check_split(figures, latency.STEPS)
    steps = figures["steps"]
    assert figures["faces"] == {"none": 3}  # no face in a synthetic photo: the centred square
    assert steps["alignment"]["p50_ms"] >= DELAY_MS and steps["total"]["p50_ms"] >= DELAY_MS
    for step in ("decode", "detection", "network"):
        assert steps[step]["p50_ms"] < DELAY_MS, step


def test_the_onnx_runtime_exports_the_trained_model_and_times_the_file(workspace, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    figures = run(workspace, workspace / "models", tmp_path, "onnx")["tiny-onnx"]
    check_split(figures, ("decode", "alignment", "network", "total"))
    assert figures["runtime"] == "onnx" and figures["route"]["precision"] == ["float32"]


def test_no_photos_folder_measures_nothing(tmp_path, capsys):
    latency.main(["--models", str(tmp_path), "--photos", str(tmp_path / "absent"),
                  "--results-dir", str(tmp_path)])
    assert "nothing measured" in capsys.readouterr().out
    assert not (tmp_path / "latency.json").exists()
