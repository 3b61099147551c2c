"""Landmark errors as the face-alignment literature reports them.

Pixel errors depend on how big the face is in the photo, so the headline figure is the NME:
the mean point-to-point error divided by the inter-ocular distance (outer eye corners 36 and
45). Points are (N, 68, 2) arrays in pixels of the original images.
"""

from __future__ import annotations

import numpy as np

from facetl.keypoints.layout import OUTER_EYE_CORNERS, REGIONS

FAILURE_NME = 0.10  # an image whose NME is above this counts as a failure


def point_errors(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(N, 68) Euclidean distance between each predicted and true point."""
    return np.linalg.norm(np.asarray(predicted, float) - np.asarray(true, float), axis=-1)


def inter_ocular(true: np.ndarray) -> np.ndarray:
    """(N,) distance between the outer eye corners of each true point set."""
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(np.asarray(true, float)[:, a] - np.asarray(true, float)[:, b], axis=-1)


def nme_per_image(predicted: np.ndarray, true: np.ndarray,
                  points: range | slice = slice(None)) -> np.ndarray:
    """(N,) mean error over `points` (all by default) divided by the inter-ocular distance."""
    return point_errors(predicted, true)[:, points].mean(axis=1) / inter_ocular(true)


def ced(nme: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Cumulative error distribution: the fraction of images with NME <= each threshold."""
    return (np.asarray(nme)[None, :] <= np.asarray(thresholds)[:, None]).mean(axis=1)


def ced_auc(nme: np.ndarray, limit: float = FAILURE_NME) -> float:
    """Area under the CED from 0 to `limit`, divided by `limit` (1 = every image perfect).

    Exact: each image adds (limit - its NME) / limit, or nothing if its NME is above limit.
    """
    return float(np.mean(np.clip(limit - np.asarray(nme), 0, None)) / limit)


def keypoint_report(predicted: np.ndarray, true: np.ndarray) -> dict:
    """NME (overall and per region), pixel error, failure rate and CED AUC over N images."""
    nme = nme_per_image(predicted, true)
    return {
        "nme": float(nme.mean()),
        "nme_regions": {name: float(nme_per_image(predicted, true, points).mean())
                        for name, points in REGIONS.items()},
        "pixel_error": float(point_errors(predicted, true).mean()),
        "failure_rate": float((nme > FAILURE_NME).mean()),
        "ced_auc": ced_auc(nme),
        "n_test": len(nme),
    }
