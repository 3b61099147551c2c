"""holdout_mask: stratified, grouped by person, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from facetl.core.errors import FacetlError
from facetl.data.splits import holdout_mask


def people(n_people: int = 40, per_person: int = 5,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and person ids: each person has one class and several photos, in random order."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_people), per_person)
    labels = (groups % 2).astype(int)
    order = rng.permutation(len(groups))
    return labels[order], groups[order].astype(str)


def test_grouped_split_keeps_each_person_on_one_side():
    labels, groups = people()
    held = holdout_mask(labels, groups, 0.1, seed=42)
    assert not set(groups[held]) & set(groups[~held])


@pytest.mark.parametrize("grouped", [True, False])
def test_every_class_is_on_both_sides_at_about_the_fraction(grouped):
    labels, groups = people()
    held = holdout_mask(labels, groups if grouped else None, 0.2, seed=1)
    assert set(labels[held]) == set(labels[~held]) == {0, 1}
    assert 0.1 <= held.mean() <= 0.3


@pytest.mark.parametrize("grouped", [True, False])
def test_same_seed_same_split_other_seed_other_split(grouped):
    labels, groups = people()
    groups = groups if grouped else None
    first = holdout_mask(labels, groups, 0.1, seed=42)
    np.testing.assert_array_equal(first, holdout_mask(labels, groups, 0.1, seed=42))
    assert not np.array_equal(first, holdout_mask(labels, groups, 0.1, seed=7))


def test_ungrouped_split_is_stratified():
    labels = np.array([0] * 80 + [1] * 20)
    held = holdout_mask(labels, None, 0.1, seed=0)
    assert held.sum() == 10 and labels[held].sum() == 2  # the 80/20 ratio kept


def test_one_group_falls_back_to_an_ungrouped_split():
    labels = np.array([0, 1] * 10)
    held = holdout_mask(labels, np.array(["same"] * 20), 0.25, seed=0)
    assert held.sum() == 5 and set(labels[held]) == {0, 1}


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_fraction_outside_zero_one_is_an_error(fraction):
    with pytest.raises(FacetlError, match="between 0 and 1"):
        holdout_mask(np.array([0, 1] * 5), None, fraction, seed=0)


@pytest.mark.parametrize("labels", [[0, 1, 1], [0, 1, 1, 1, 1]])
def test_too_few_images_per_class_is_an_error(labels):
    with pytest.raises(FacetlError, match="at least 2 of each class"):
        holdout_mask(np.array(labels), None, 0.5, seed=0)
