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
