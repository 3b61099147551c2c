"""Repeated grouped splits for the gender head (`repeats.splits`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from facetl.core.errors import FacetlError
from facetl.data.splits import load_split
from facetl.gender import repeats
from facetl.gender.repeats import main, repeated_test_masks
from tests.tiny_pipeline import UP_TO_EVALUATE, run_gender_stages, tiny_params


def people_index(people: int = 30, photos: int = 4) -> pd.DataFrame:
    rows = [{"group": f"p{p}", "label_index": p % 2} for p in range(people) for _ in range(photos)]
    return pd.DataFrame(rows)


def test_each_repeat_is_a_grouped_split_and_repeats_differ():
    index = people_index()
    masks = repeated_test_masks(index, 0.2, seed=42, repeats=4)
    assert len(masks) == 3  # split 0 is the pipeline's own
    for mask in masks:
        test_people = set(index["group"][mask])
        train_people = set(index["group"][~mask])
        assert test_people and not test_people & train_people
        assert set(index["label_index"][mask]) == {0, 1}
    assert len({tuple(np.flatnonzero(m)) for m in masks}) == 3


def test_repeats_stage_retrains_the_head_on_each_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # aligned: every photo gets a front-end group (synthetic photos: `none`) to pool per group
    tiny_params(tmp_path, {"head.type": "linear", "repeats.splits": 3, "faces.align": True})
    run_gender_stages(UP_TO_EVALUATE)
    trained_on = []

    def recording(name, features, index, train, params, seed, plots_dir=None):
        trained_on.append(frozenset(train))
        return fit_head(name, features, index, train, params, seed, plots_dir)

    fit_head = repeats.fit_classifier_head
    monkeypatch.setattr(repeats, "fit_classifier_head", recording)
    main()
    result = json.loads((tmp_path / "metrics/gender_repeats.json").read_text())
    split_0 = json.loads((tmp_path / "metrics/gender.json").read_text())["accuracy"]
    assert result["repeats"] == 3 and result["seeds"] == [42, 43, 44]
    assert result["accuracy_values"][0] == split_0
    # Two more heads, each on a split of its own: neither the pipeline's split 0 nor each other.
    _, pipeline_train, _ = load_split("gender")
    assert len(trained_on) == 2 and len({frozenset(pipeline_train), *trained_on}) == 3
    assert len(result["accuracy_values"]) == 3
    assert result["accuracy_mean"] == pytest.approx(np.mean(result["accuracy_values"]))
    index, _, test = load_split("gender")
    sizes = [len(test)] + [int(m.sum()) for m in repeated_test_masks(index, 0.1, 42, 3)]
    pooled = result["by_face_pooled"]
    assert list(pooled) == ["none"] and pooled["none"]["n"] == sum(sizes)
    assert pooled["none"]["accuracy"] == pytest.approx(
        np.dot(result["accuracy_values"], sizes) / sum(sizes))


def test_repeats_must_be_a_positive_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_params(tmp_path, {"repeats.splits": 0})
    with pytest.raises(FacetlError, match="repeats.splits"):
        main()


def test_with_fine_tuning_on_every_split_still_scores_a_frozen_head(tmp_path, monkeypatch):
    """Like with like: split 0 is the frozen head's figure, whatever the final model is."""
    from facetl.gender import evaluate, finetune

    monkeypatch.chdir(tmp_path)
    tiny_params(tmp_path, {"repeats.splits": 2})
    run_gender_stages(UP_TO_EVALUATE)
    frozen = json.loads((tmp_path / "metrics/gender.json").read_text())["accuracy"]
    main()
    before = json.loads((tmp_path / "metrics/gender_repeats.json").read_text())
    assert before["accuracy_values"][0] == frozen  # fine-tuning off: the final model is the head

    tiny_params(tmp_path, {"repeats.splits": 2, "finetune.gender.enabled": True,
                           "finetune.gender.epochs": 2, "finetune.gender.learning_rate": 0.01})
    run_gender_stages((finetune.main, evaluate.main))
    assert json.loads((tmp_path / "metrics/gender.json").read_text())["finetuned"] is True
    main()
    after = json.loads((tmp_path / "metrics/gender_repeats.json").read_text())
    assert after["accuracy_values"] == before["accuracy_values"]
    assert after["model"].startswith("frozen chapter head")
