"""Tiny synthetic face-less data the tests make themselves: two visibly different classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def class_image(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Class 0: bright top half; class 1: bright bottom half; both with noise."""
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
    image[half] = np.clip(image[half].astype(int) + 180, 0, 255).astype(np.uint8)
    return image


def write_class_folder(root: Path, classes: tuple[str, str] = ("female", "male"),
                       per_class: int = 20, size: int = 32, seed: int = 0) -> Path:
    """`root/<class>/<i>.png` (and a few JPEGs), `per_class` images each."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            suffix = "jpg" if i % 4 == 0 else "png"
            Image.fromarray(class_image(label, rng, size)).save(root / name / f"{i:03d}.{suffix}")
    return root


def write_labels_csv(root: Path, per_class: int = 20, people: int = 10, seed: int = 0) -> Path:
    """A local CSV source: filename,gender,identity beside an images/ folder."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = ["filename,gender,identity"]
    for i in range(2 * per_class):
        label = i % 2
        name = f"{i:04d}.jpg"
        Image.fromarray(class_image(label, rng)).save(root / "images" / name)
        rows.append(f"{name},{('female', 'male')[label]},{i % people + 100 * label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"
