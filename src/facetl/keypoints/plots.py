"""Pictures of keypoints: points drawn on faces, galleries, and the CED curve."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facetl.core.atomic import write_bytes
from facetl.core.plots import image_grid, plt, save_figure
from facetl.data.images import resize_square
from facetl.keypoints.metrics import FAILURE_NME

TRUE_COLOUR = (40, 220, 60)  # RGB green
PREDICTED_COLOUR = (255, 40, 40)  # RGB red
GALLERY_MIN_SIDE = 224  # tiny test images are enlarged so their points stay visible


def draw_keypoints(image: np.ndarray, points: np.ndarray,
                   colour: tuple[int, int, int] = PREDICTED_COLOUR) -> np.ndarray:
    """A copy of an RGB image with (68, 2) pixel points drawn as dots sized to the image."""
    canvas = np.ascontiguousarray(image).copy()
    radius = max(1, round(max(image.shape[:2]) / 120))
    for x, y in np.asarray(points, dtype=float):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(canvas, (round(x), round(y)), radius, colour, -1, cv2.LINE_AA)
    return canvas


def encode_png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def write_overlay(image: np.ndarray, points: np.ndarray, path: Path) -> None:
    """The image with its predicted points, as a PNG (written atomically)."""
    write_bytes(path, encode_png(draw_keypoints(image, points)))


def comparison_image(image: np.ndarray, true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """A square image with normalised (68, 2) true (green) and predicted (red) points."""
    side = max(image.shape[0], GALLERY_MIN_SIDE)
    canvas = resize_square(image, side)
    canvas = draw_keypoints(canvas, np.asarray(true) * side, TRUE_COLOUR)
    return draw_keypoints(canvas, np.asarray(predicted) * side, PREDICTED_COLOUR)


def cases(nme: np.ndarray, per_case: int) -> dict[str, np.ndarray]:
    """Positions of the best, median and worst images by NME, `per_case` of each.

    Fewer when there are too few images for three rows without repeats.
    """
    order = np.argsort(nme, kind="stable")
    per_case = max(1, min(per_case, len(order) // 3))
    middle = max(0, min(len(order) - per_case, len(order) // 2 - per_case // 2))
    return {"best": order[:per_case], "median": order[middle:middle + per_case],
            "worst": order[::-1][:per_case]}


def keypoint_gallery(images: np.ndarray, rows: np.ndarray, true: np.ndarray,
                     predicted: np.ndarray, nme: np.ndarray, per_case: int, path: Path) -> None:
    """One row each for the best, median and worst images: true points green, predicted red.

    `images[rows[i]]` is the image of the i-th point set, so a memmap is read only where shown.
    """
    chosen = cases(nme, per_case)
    pictures, titles = [], []
    for case, positions in chosen.items():
        for i in positions:
            pictures.append(comparison_image(images[rows[i]], true[i], predicted[i]))
            titles.append(f"{case}: NME {nme[i]:.1%}")
    image_grid(pictures, titles, path, columns=len(chosen["best"]),
               suptitle="test faces: true points green, predicted red")


def ced_plot(thresholds: np.ndarray, curves: dict[str, np.ndarray], path: Path) -> None:
    """Cumulative error distribution of each curve, with the failure threshold marked."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for label, fraction in curves.items():
        ax.plot(thresholds, fraction, label=label)
    ax.axvline(FAILURE_NME, color="grey", linestyle="--", label=f"failure at {FAILURE_NME:.0%}")
    ax.set(xlabel="NME (inter-ocular)", ylabel="fraction of test images", ylim=(0, 1.02),
           xlim=(0, thresholds[-1]), title="cumulative error distribution (test)")
    ax.legend(loc="lower right")
    save_figure(fig, path)
