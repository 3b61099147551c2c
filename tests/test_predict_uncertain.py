"""`facetl predict --min-confidence P`: "uncertain" exactly where max(p, 1 - p) < P."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetl import cli
from tests.tiny_pipeline import trained_gender


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_gender(tmp_path_factory.mktemp("uncertain"))


def predict_json(folder, monkeypatch, capsys, *flags: str) -> list[dict]:
    monkeypatch.chdir(folder)
    photos = str(folder / "source/images")
    cli.main(["predict", "--task", "gender", "--json", *flags, photos])
    return json.loads(capsys.readouterr().out)


def test_below_the_threshold_the_answer_is_uncertain_and_the_probability_stays(
        trained, monkeypatch, capsys):
    plain = predict_json(trained, monkeypatch, capsys)
    sure = np.array([max(r["p_male"], 1 - r["p_male"]) for r in plain])
    threshold = float(np.median(sure))
    flagged = predict_json(trained, monkeypatch, capsys, "--min-confidence", str(threshold))
    assert [r["p_male"] for r in flagged] == [r["p_male"] for r in plain]
    expected = ["uncertain" if s < threshold else r["gender"]
                for s, r in zip(sure, plain, strict=True)]
    assert [r["gender"] for r in flagged] == expected
    assert 0 < expected.count("uncertain") < len(expected)


@pytest.mark.parametrize("value", ["0.3", "1.5"])
def test_a_threshold_that_is_not_a_probability_above_a_half_is_a_one_line_error(
        trained, monkeypatch, capsys, value):
    monkeypatch.chdir(trained)
    with pytest.raises(SystemExit) as stop:
        cli.main(["predict", "--task", "gender", "--min-confidence", value, "x.jpg"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: --min-confidence {float(value)}")
