"""The route comparisons of the benchmarks, on predictions made up so the answer is known:
the combined route (benchmarks/combined_route.py), the halves of gender_web
(benchmarks/web_half.py) and how far a temperature carries (benchmarks/temperature_transfer.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.combined_route import BEST, FINETUNED, compare, verdict
from benchmarks.temperature_transfer import fitted, goal_span
from benchmarks.web_half import halves


def made_up(rng: np.random.Generator, n: int) -> dict[str, pd.DataFrame]:
    """Two routes' answers on the same n photos: the best route is right on every photo
    whose face was found and guesses where it was not; the other the reverse."""
    labels = rng.integers(0, 2, n)
    face = np.where(rng.random(n) < 0.7, "found", "fallback")
    sure_right = np.where(labels == 1, 0.95, 0.05)
    guess = rng.uniform(0.05, 0.95, n)
    frame = pd.DataFrame({"file": [f"{i}.jpg" for i in range(n)],
                          "source": [f"/photos/{i}.jpg" for i in range(n)],
                          "label": labels, "face": face})
    return {BEST: frame.assign(p_positive=np.where(face == "found", sure_right, guess)),
            FINETUNED: frame.assign(p_positive=np.where(face == "found", guess, sure_right))}


def test_a_combination_weighted_by_front_end_group_takes_each_route_where_it_is_right():
    rng = np.random.default_rng(0)
    parts = {route: {} for route in (BEST, FINETUNED)}
    for part, n in (("validation", 400), ("test", 300), ("web", 600)):
        for route, frame in made_up(rng, n).items():
            parts[route][part] = frame
    figures = compare(parts)
    web = figures["web"]
    # oracle: by construction, the group-weighted way is right on (nearly) every photo,
    # and each route alone only on its own group and by luck on the other
    assert web["stacked by face"]["accuracy"] > 0.97
    assert web[BEST]["accuracy"] < 0.9 and web[FINETUNED]["accuracy"] < 0.9
    versus = web["stacked by face"]["vs_best"]
    assert versus["only_this_right"] > 50 and versus["only_best_right"] < 5
    assert versus["p"] < 1e-6
    assert web[BEST]["vs_best"] == {"only_this_right": 0, "only_best_right": 0, "p": 1.0}
    assert figures["n_validation"] == 400
    assert verdict({"seed1": figures})["stacked by face"]["keep"]


def test_a_combination_that_loses_on_celeba_is_not_kept():
    seed = {"web": {BEST: {}, FINETUNED: {}, "mixed": {"vs_best": {
        "only_this_right": 30, "only_best_right": 2, "p": 1e-6}}},
            "test": {BEST: {}, FINETUNED: {}, "mixed": {"vs_best": {
                "only_this_right": 1, "only_best_right": 20, "p": 1e-4}}}}
    assert verdict({"seed1": seed})["mixed"] == {
        "beats_best_on_web": True, "significant_loss_on_celeba": True, "keep": False}


def test_gender_webs_halves_are_fixed_disjoint_complete_and_class_balanced():
    rng = np.random.default_rng(1)
    labels = pd.DataFrame({"filename": [f"{i}.jpg" for i in range(101)],
                           "gender": rng.choice(["female", "male"], 101),
                           "md5": [f"{rng.integers(1 << 60):016x}" for _ in range(101)]})
    train_half, held_out = halves(labels)
    assert set(train_half["filename"]).isdisjoint(held_out["filename"])
    assert len(train_half) + len(held_out) == 101
    for gender, count in labels["gender"].value_counts().items():
        assert (train_half["gender"] == gender).sum() == pytest.approx(count / 2, abs=0.5)
    # the same halves whatever order the rows come in
    again, _ = halves(labels.sample(frac=1, random_state=3))
    assert set(again["filename"]) == set(train_half["filename"])


def test_the_temperatures_within_the_ece_goal_surround_the_one_the_labels_were_drawn_with():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 6, 40_000)
    drawn_with = {2.5: None, 1.0: None}
    for temperature in drawn_with:
        labels = (rng.random(z.size) < 1 / (1 + np.exp(-z / temperature))).astype(int)
        drawn_with[temperature] = pd.DataFrame({"z": z, "label": labels})
    hard, easy = drawn_with[2.5], drawn_with[1.0]
    assert fitted(hard) == pytest.approx(2.5, rel=0.05)
    low, high = goal_span(hard)
    assert low < 2.5 < high
    # a set whose labels follow the raw logits: T = 2.5 is far too cautious for it
    low_easy, high_easy = goal_span(easy)
    assert low_easy < 1.0 < high_easy < 2.5
