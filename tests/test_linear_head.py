"""The linear head: pooled features, logistic regression, C by (grouped) cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from facetl.core.errors import FacetlError
from facetl.models.backbones import load_model
from facetl.models.linear_head import fit_linear_head, folds, pooled

CFG = {"c_grid": [0.001, 0.1, 10.0], "folds": 3}


def separable(n: int = 120, shape: tuple[int, ...] = (3, 3, 8), seed: int = 0):
    """Feature maps whose channel 2, on average over positions, tells the class apart."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    features = rng.normal(size=(n, *shape)).astype("float32")
    features[..., 2] += np.where(labels, 4.0, -4.0).reshape(-1, *[1] * (len(shape) - 1))
    groups = np.array([f"person{i % 30}" for i in range(n)])  # each person keeps one class
    return features, labels, groups


def test_pooling_averages_positions_and_leaves_vectors_alone():
    maps = np.arange(2 * 2 * 2 * 3, dtype="float32").reshape(2, 2, 2, 3)
    np.testing.assert_allclose(pooled(maps, np.array([1, 0])), maps[[1, 0]].mean(axis=(1, 2)))
    vectors = np.random.default_rng(0).normal(size=(5, 128))
    np.testing.assert_allclose(pooled(vectors, np.arange(5), chunk=2), vectors)


@pytest.mark.backend
def test_separable_features_are_classified_and_the_keras_head_matches_sklearn(tmp_path):
    features, labels, groups = separable()
    train, test = np.arange(90), np.arange(90, 120)
    fitted = fit_linear_head(features, labels, train, groups, CFG, seed=0)
    p = fitted.head.predict(features[test], verbose=0)[:, 0]
    assert ((p >= 0.5) == labels[test]).mean() == 1.0
    assert fitted.c in CFG["c_grid"] and len(fitted.cv) == len(CFG["c_grid"])
    assert fitted.cv["val_accuracy"].max() > 0.9

    # The Keras head holds exactly the logistic regression scikit-learn fits at that C.
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=fitted.c, max_iter=5000))
    reference.fit(pooled(features, train), labels[train])
    expected = reference.predict_proba(pooled(features, test))[:, 1]
    np.testing.assert_allclose(p, expected, atol=1e-5)

    fitted.head.save(tmp_path / "head.keras")
    reloaded = load_model(tmp_path / "head.keras").predict(features[test], verbose=0)[:, 0]
    np.testing.assert_allclose(reloaded, p, atol=1e-6)


def test_vector_features_need_no_pooling():
    features, labels, _ = separable(n=400, shape=(128,))  # dlib_face's (N, 128)
    fitted = fit_linear_head(features, labels, np.arange(300), None, CFG, seed=0)
    assert fitted.head.input_shape == (None, 128)
    p = fitted.head.predict(features[300:], verbose=0)[:, 0]
    assert ((p >= 0.5) == labels[300:]).mean() == 1.0


def test_same_data_same_seed_same_head():
    features, labels, groups = separable()
    first = fit_linear_head(features, labels, np.arange(90), groups, CFG, seed=3)
    second = fit_linear_head(features, labels, np.arange(90), groups, CFG, seed=3)
    weights = [np.asarray(fit.head.get_layer("output").kernel.numpy()) for fit in (first, second)]
    np.testing.assert_array_equal(*weights)


def test_folds_keep_each_person_on_one_side():
    _, labels, groups = separable()
    for fit_rows, val_rows in folds(labels, groups, 3, seed=0):
        assert not set(groups[fit_rows]) & set(groups[val_rows])
        assert set(labels[val_rows]) == {0, 1}


@pytest.mark.parametrize(("n_folds", "grouped", "unit"), [(16, True, "people"),
                                                         (61, False, "photos"),
                                                         (1, False, "photos")])
def test_too_many_folds_is_an_error_saying_why(n_folds, grouped, unit):
    _, labels, groups = separable()  # 15 people and 60 photos of each class
    with pytest.raises(FacetlError, match=f"head.folds={n_folds}.*{unit}"):
        folds(labels, groups if grouped else None, n_folds, seed=0)


def test_a_bad_c_grid_is_an_error():
    features, labels, _ = separable()
    with pytest.raises(FacetlError, match="head.c_grid"):
        fit_linear_head(features, labels, np.arange(90), None, CFG | {"c_grid": [0, 1]}, seed=0)
