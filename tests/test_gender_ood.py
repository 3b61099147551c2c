"""The out-of-distribution stage: a second labelled source scored through `facetl predict`'s
path, overall and per face front-end group, with unreadable photos counted, not fatal."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from facetl.core.errors import FacetlError
from facetl.gender import ood
from tests.synthetic import write_class_folder
from tests.tiny_pipeline import (
    overridden,
    trained_gender,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_gender(tmp_path_factory.mktemp("ood"))


def test_ood_source_is_scored_per_face_group_and_bad_photos_are_counted(trained, monkeypatch):
    monkeypatch.chdir(trained)
    source = write_class_folder(trained / "elsewhere", per_class=6, seed=7)
    (source / "male" / "broken.png").write_text("not an image")
    with overridden(trained, {"ood.gender.source": str(source), "ood.gender.images": str(source)}):
        ood.main()
    metrics = json.loads((trained / "metrics/gender_ood.json").read_text())
    assert metrics["photos"] == 13 and metrics["unreadable"] == 1 and metrics["n_test"] == 12
    low, high = metrics["accuracy_ci95"]
    assert 0 <= low <= metrics["accuracy"] <= high <= 1
    assert metrics["by_face"]["off"]["n"] == 12  # tiny params keep the front end off
    predictions = pd.read_csv(trained / "plots/gender_ood/predictions.csv")
    assert len(predictions) == 13 and predictions["error"].notna().sum() == 1


def test_a_url_source_is_refused_with_a_hint(trained, monkeypatch):
    monkeypatch.chdir(trained)
    with (overridden(trained, {"ood.gender.source": "https://example.org/labels.csv"}),
          pytest.raises(FacetlError, match="local source")):
        ood.main()
