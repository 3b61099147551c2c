"""The figure tables in docs/ are the results files' figures: generated, and checked here."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks.results import RESULTS
from benchmarks.tables_format import NOT_MEASURED, commit_time, provenance_line
from benchmarks.workspace import REPO
from docs import tables
from facetl.core.params import load_params

RUN = {"provenance": {"command": "python benchmarks/real_experiments.py ws", "machine": "cpu X",
                      "commit": "abc", "date": "2026-01-01"},
       "figures": {"seconds": 600,
                   "gender": {"accuracy": 0.9375, "accuracy_ci95": [0.9, 0.96], "n_test": 400,
                              "by_face": {"found": {"n": 390, "accuracy": 0.95}}},
                   "gender_ood": {"accuracy": 0.8, "accuracy_ci95": [0.78, 0.82], "n_test": 20,
                                  "by_face": {}},
                   "repeats": {"repeats": 1},
                   "overrides": {"backbone": "dlib_face", "head.type": "linear",
                                 "faces.align": True}}}
BEST = "`dlib_face` (the file the face_recognition_models package installs), frozen, linear head"


@pytest.mark.parametrize("page", tables.pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_docs_table_matches_its_results_file(page):
    recorded = {entry["provenance"]["commit"] for path in RESULTS.glob("*.json")
                for entry in json.loads(path.read_text())["entries"].values()}
    if any(commit_time(commit) == float("inf") for commit in recorded):
        pytest.skip("a provenance line orders commits by git history, which this copy lacks")
    text = page.read_text()
    assert tables.render(text) == text, f"{page.name}: run python docs/tables.py"


def test_the_routes_table_is_generated_from_the_results_file():
    # An oracle written out by hand: one run's figures as the table must show them.
    page = "intro\n<!-- table: routes -->\nstale 12%\n<!-- end table -->\nafter\n"
    fresh = tables.render(page, lambda name: {"route-face": RUN})
    row = next(line for line in fresh.splitlines() if line.startswith(f"| {BEST}"))
    assert "93.75% [90.0, 96.0]" in row and "80.00% [78.0, 82.0]" in row and "| 10.0 |" in row
    assert "stale 12%" not in fresh and fresh.startswith("intro\n") and fresh.endswith("after\n")
    assert "cpu X; 2026-01-01; commit abc (1 run)" in fresh


def test_seeds_are_shown_each_and_as_mean_and_sd():
    second = json.loads(json.dumps(RUN))
    second["figures"]["gender"]["accuracy"] = 0.9625
    fresh = tables.render("<!-- table: routes -->\n<!-- end table -->",
                          lambda name: {"route-default-seed1": RUN,
                                        "route-default-seed2": second})
    # mean 95.00, sample sd of (93.75, 96.25) = 1.77
    assert "93.75%, 96.25%: **95.00 ± 1.77** (2 seeds)" in fresh


def test_a_changed_figure_makes_a_page_stale():
    page = tables.render("<!-- table: routes -->\n<!-- end table -->",
                         lambda name: {"route-face": RUN})
    edited = re.sub(r"93\.75%", "94.75%", page)
    assert tables.render(edited, lambda name: {"route-face": RUN}) == page != edited


def test_an_unknown_table_name_is_an_error():
    with pytest.raises(KeyError, match="unknown table 'routez'"):
        tables.render("<!-- table: routez -->\n<!-- end table -->")


def test_the_calibration_table_shows_ece_brier_and_coverage_of_both_sets():
    run = json.loads(json.dumps(RUN))
    run["figures"]["gender"] |= {"ece": 0.0123, "ece_ci95": [0.008, 0.02], "brier": 0.05,
                                 "accuracy_at_coverage": {"1.00": 0.9, "0.95": 0.93,
                                                          "0.90": 0.955}}
    fresh = tables.render("<!-- table: route_calibration -->\n<!-- end table -->",
                          lambda name: {"route-face": run})
    row = next(line for line in fresh.splitlines() if line.startswith(f"| {BEST}"))
    assert "| 1.23% [0.8, 2.0] | 0.0500 | 93.00% / 95.50% |" in row
    assert row.endswith("| — | — | — |")  # gender_web has no calibration figures here


def latency_entry(backbone: str, align: bool, steps: dict, **figures) -> dict:
    return {"provenance": RUN["provenance"],
            "figures": {"route": {"backbone": backbone, "head": "linear", "finetuned": False,
                                  "input_size": 150, "align": align, "precision": ["float32"]},
                        "runtime": "onnx", "photos": 200, "steps": steps, **figures}}


def test_the_latency_table_shows_each_steps_p50_and_p95_per_route_and_runtime():
    def step(p50: float, p95: float) -> dict:
        return {"p50_ms": p50, "p95_ms": p95, "mean_ms": p50}

    aligned = latency_entry("dlib_face", True, {
        "decode": step(4.04, 9.96), "detection": step(31.23, 140.27), "alignment": step(6.5, 7.0),
        "network": step(12.0, 15.11), "total": step(55.0, 170.26)},
        network_note="dlib's descriptor")
    aligned["figures"]["route"] |= {"finetuned": True, "precision": ["float32", "mixed_bf16"]}
    plain = latency_entry("vgg16", False, {
        "decode": step(1.0, 2.0), "detection": None, "alignment": step(0.2, 0.3),
        "network": step(80.0, 95.0), "total": step(82.0, 98.0)})
    fresh = tables.render("<!-- table: latency -->\n<!-- end table -->",
                          lambda name: {"best-onnx": aligned, "vgg-onnx": plain}
                          if name == "latency" else {})
    rows = [line for line in fresh.splitlines() if line.startswith("| dlib_face")
            or line.startswith("| vgg16")]
    assert rows == [
        "| dlib_face, linear head, fine-tuned, 150 px, faces aligned, computes in mixed_bf16 "
        "(`best-onnx`) | onnx | 200 | 4.0 / 10.0 | 31.2 / 140.3 | 6.5 / 7.0 | "
        "12.0 / 15.1 (dlib's descriptor) | 55.0 / 170.3 |",
        "| vgg16, linear head, frozen, 150 px, no face front end (`vgg-onnx`) | onnx | 200 | "
        "1.0 / 2.0 | — | 0.2 / 0.3 | 80.0 / 95.0 | 82.0 / 98.0 |"]
    assert "cpu X; 2026-01-01; commit abc (2 runs)" in fresh
    assert "benchmarks/latency.py" in fresh


def test_the_latency_table_says_not_measured_yet_without_a_results_file():
    fresh = tables.render("<!-- table: latency -->\n<!-- end table -->", lambda name: {})
    assert NOT_MEASURED in fresh and "benchmarks/latency.py" in fresh
    assert "|" not in fresh


def test_the_export_parity_table_shows_each_formats_agreement():
    entry = {"provenance": RUN["provenance"], "figures": {
        "photos": 300, "same_label": 300, "max_abs_dp": 2.2e-4, "p99_abs_dp": 1.7e-4,
        "within_tolerance": False, "file_mb": 35.03}}
    fresh = tables.render("<!-- table: export_parity -->\n<!-- end table -->",
                          lambda name: {"mobilenet_v2/onnx": entry})
    assert "| `mobilenet_v2/onnx` | 300 | 300 | 2.2e-04 | 1.7e-04 | no | 35.0 |" in fresh


def test_the_readme_headline_averages_the_seeds_ece():
    first, second = json.loads(json.dumps(RUN)), json.loads(json.dumps(RUN))
    first["figures"]["gender_ood"]["ece"], second["figures"]["gender_ood"]["ece"] = 0.02, 0.03
    fresh = tables.render("<!-- table: headline -->\n<!-- end table -->",
                          lambda name: {"route-default-seed1": first,
                                        "route-default-seed2": second})
    row = next(line for line in fresh.splitlines() if line.startswith(f"| {BEST}"))
    assert row.endswith("| 2.50 ± 0.71% |")  # mean 2.5, sample sd of (2, 3) = 0.71


def test_a_route_label_is_made_from_the_settings_it_ran_with():
    run = json.loads(json.dumps(RUN))
    run["figures"]["overrides"] = {"backbone": "mobilenet_v2", "faces.align": False,
                                   "backbones.mobilenet_v2.weights": "../shared/w/m.h5",
                                   "finetune.gender.enabled": True,
                                   "finetune.gender.unfreeze": 30,
                                   "prepare.gender.input_size": 160}
    fresh = tables.render("<!-- table: routes -->\n<!-- end table -->",
                          lambda name: {"route-default-seed1": run})
    assert ("| `mobilenet_v2` (local weights file `m.h5`), fine-tuned (top 30 weight layers), "
            "chapter head, whole photos at 160 px |") in fresh


def test_seeds_of_one_route_run_with_other_settings_are_an_error():
    other = json.loads(json.dumps(RUN))
    other["figures"]["overrides"]["head.type"] = "chapter"
    with pytest.raises(ValueError, match="different settings"):
        tables.render("<!-- table: routes -->\n<!-- end table -->",
                      lambda name: {"route-face-seed1": RUN, "route-face-seed2": other})


def test_the_headline_says_what_dvc_repro_runs_from_params_yaml():
    fresh = tables.render("<!-- table: headline -->\n<!-- end table -->", lambda name: {})
    params = load_params(REPO / "params.yaml")
    row = next(line for line in fresh.splitlines() if line.startswith("| `dvc repro`"))
    assert f"`{params['backbone']}`" in row
    assert f"{params['prepare']['gender']['input_size']} px" in row
    assert "not measured here" in row and NOT_MEASURED in fresh


def test_a_provenance_line_gives_machines_dates_and_commits_as_ranges():
    entries = [{"provenance": {"machine": "cpu X", "commit": commit, "date": date}}
               for commit, date in (("aaa", "2026-01-02"), ("bbb+changes", "2026-01-01"),
                                    ("aaa", "2026-01-03"))]
    line = provenance_line(entries)
    assert line.startswith("cpu X; 2026-01-01 to 2026-01-03; commits ")
    assert line.endswith("(3 runs, 1 of them with uncommitted changes)")
    assert line.count("cpu X") == 1


KEYPOINT_RUN = {"provenance": RUN["provenance"], "figures": {
    "minutes": 41.5, "settings": {
        "recipe": "finetune", "backbone": "mobilenet_v2", "weights": "m.h5", "input_size": 192,
        "recipe_params": {"head": {"type": "gdconv"}, "finetune": {"epochs": 30},
                          "loss": "wing", "inference": {"passes": 3, "detector": "dlib"}}},
    "metrics": {"n_test": 348, "nme": 0.0412, "failure_rate": 0.0115, "pixel_error": 2.345,
                "dlib_nme": 0.0701, "dlib_failure_rate": 0.0632}}}


def test_the_keypoint_table_shows_the_model_and_dlib_on_the_same_frames():
    fresh = tables.render("<!-- table: keypoints -->\n<!-- end table -->",
                          lambda name: {"finetune": KEYPOINT_RUN} if name == "keypoint_routes"
                          else {})
    assert ("| finetune recipe: `mobilenet_v2` (local weights file `m.h5`), face crops at 192 px, "
            "gdconv head, backbone fine-tuned up to 30 epochs, wing loss, 3 passes from a dlib "
            "box (`finetune`) | 348 | 4.12% | 1.15% | 2.35 px | 7.01% / 6.32% | 41.5 |") in fresh
    empty = tables.render("<!-- table: keypoints -->\n<!-- end table -->", lambda name: {})
    assert NOT_MEASURED in empty and "keypoint_routes.py" in empty


def test_a_value_in_prose_is_the_results_files():
    page = ("ECE <!-- value: real_experiments | route-best | gender_ood.accuracy | percent -->"
            "12%<!-- end value --> here")
    assert tables.render(page, lambda name: {"route-best": RUN}) == (
        "ECE <!-- value: real_experiments | route-best | gender_ood.accuracy | percent -->"
        "80.00%<!-- end value --> here")
    with pytest.raises(KeyError, match="no entry 'route-gone'"):
        tables.render(page.replace("route-best", "route-gone"), lambda name: {"route-best": RUN})


def test_the_stage_graph_is_the_pipeline_files():
    fresh = tables.render("<!-- table: stage_graph -->\n<!-- end table -->")
    assert "  train_gender --> repeats_gender" in fresh
    assert "evaluate_gender --> repeats_gender" not in fresh  # repeats reads the head
    assert "  features_gender --> train_gender" in fresh
    assert "  prepare_gender --> features_gender" in fresh
    assert "  prepare_gender --> train_gender" not in fresh  # implied through features_gender


@pytest.mark.parametrize("recipe", ["finetune", "chapter"])
def test_the_keypoint_benchmark_records_what_a_route_label_needs(recipe):
    from benchmarks.keypoint_routes import DATA, route_label, settings
    params = load_params(REPO / "params.yaml")
    params["keypoints"]["recipe"] = recipe
    params["backbones"]["mobilenet_v2"]["weights"] = DATA["backbones.mobilenet_v2.weights"]
    label = route_label(settings(params))
    assert label.startswith(f"{recipe} recipe: `mobilenet_v2` (local weights file `")
    size = (params["prepare"]["keypoints"]["input_size"] if recipe == "chapter"
            else params["keypoints"]["crop"]["input_size"])
    assert f" at {size} px" in label
