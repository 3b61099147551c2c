"""The figure tables in docs/ are the results files' figures: generated, and checked here."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.e2e import REPO

spec = importlib.util.spec_from_file_location("docs_tables", REPO / "docs/tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)

RUN = {"provenance": {"command": "python benchmarks/real_experiments.py ws", "machine": "cpu X",
                      "commit": "abc", "date": "2026-01-01"},
       "figures": {"seconds": 600,
                   "gender": {"accuracy": 0.9375, "accuracy_ci95": [0.9, 0.96], "n_test": 400,
                              "by_face": {"found": {"n": 390, "accuracy": 0.95}}},
                   "gender_ood": {"accuracy": 0.8, "accuracy_ci95": [0.78, 0.82], "n_test": 20,
                                  "by_face": {}},
                   "repeats": {"repeats": 1}}}


@pytest.mark.parametrize("page", tables.pages(), ids=lambda p: p.name)
def test_every_docs_table_matches_its_results_file(page):
    text = page.read_text()
    assert tables.render(text) == text, f"{page.name}: run python docs/tables.py"


def test_the_routes_table_is_generated_from_the_results_file():
    # An oracle written out by hand: one run's figures as the table must show them.
    page = "intro\n<!-- table: routes -->\nstale 12%\n<!-- end table -->\nafter\n"
    fresh = tables.render(page, lambda name: {"route-best": RUN})
    row = next(line for line in fresh.splitlines() if line.startswith("| best"))
    assert "93.75% [90.0, 96.0]" in row and "80.00% [78.0, 82.0]" in row and "| 10.0 |" in row
    assert "stale 12%" not in fresh and fresh.startswith("intro\n") and fresh.endswith("after\n")
    assert "cpu X, commit abc, 2026-01-01" in fresh


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
                         lambda name: {"route-best": RUN})
    edited = re.sub(r"93\.75%", "94.75%", page)
    assert tables.render(edited, lambda name: {"route-best": RUN}) == page != edited


def test_an_unknown_table_name_is_an_error():
    with pytest.raises(KeyError, match="unknown table 'routez'"):
        tables.render("<!-- table: routez -->\n<!-- end table -->")


def test_the_calibration_table_shows_ece_brier_and_coverage_of_both_sets():
    run = json.loads(json.dumps(RUN))
    run["figures"]["gender"] |= {"ece": 0.0123, "ece_ci95": [0.008, 0.02], "brier": 0.05,
                                 "accuracy_at_coverage": {"1.00": 0.9, "0.95": 0.93,
                                                          "0.90": 0.955}}
    fresh = tables.render("<!-- table: route_calibration -->\n<!-- end table -->",
                          lambda name: {"route-best": run})
    row = next(line for line in fresh.splitlines() if line.startswith("| best"))
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
    assert "cpu X, commit abc, 2026-01-01" in fresh
    assert "benchmarks/latency.py" in fresh


def test_the_latency_table_says_not_measured_yet_without_a_results_file():
    fresh = tables.render("<!-- table: latency -->\n<!-- end table -->", lambda name: {})
    assert "not measured yet" in fresh and "benchmarks/latency.py" in fresh
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
    row = next(line for line in fresh.splitlines() if line.startswith("| default"))
    assert row.endswith("| 2.50 ± 0.71% |")  # mean 2.5, sample sd of (2, 3) = 0.71
