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


def face_template() -> np.ndarray:
    """(68, 2) points of a front face in the 68-point iBUG order, in a unit square.

    Mirror-symmetric about x = 0.5 under the iBUG left/right map: point 36 mirrors 45, etc.
    """
    jaw_angle = np.linspace(np.pi, 0, 17)
    jaw = np.stack([0.5 + 0.4 * np.cos(jaw_angle), 0.45 + 0.45 * np.sin(jaw_angle)], axis=1)
    brow_x = np.linspace(0.18, 0.42, 5)
    brow_y = 0.30 - 0.04 * np.sin(np.linspace(0, np.pi, 5))
    brows = np.concatenate([np.stack([brow_x, brow_y], 1),
                            np.stack([1 - brow_x[::-1], brow_y[::-1]], 1)])
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.38, 0.58, 4)], axis=1)
    nostrils = np.stack([np.linspace(0.42, 0.58, 5), [0.65, 0.66, 0.67, 0.66, 0.65]], axis=1)
    left_eye = [(0.23, 0.40), (0.29, 0.37), (0.37, 0.37), (0.43, 0.40), (0.37, 0.43),
                (0.29, 0.43)]
    right_eye = [(0.57, 0.40), (0.63, 0.37), (0.71, 0.37), (0.77, 0.40), (0.71, 0.43),
                 (0.63, 0.43)]
    outer = np.pi - np.arange(12) * 2 * np.pi / 12
    inner = np.pi - np.arange(8) * 2 * np.pi / 8
    lips = [np.stack([0.5 + 0.15 * np.cos(outer), 0.76 - 0.06 * np.sin(outer)], axis=1),
            np.stack([0.5 + 0.09 * np.cos(inner), 0.76 - 0.025 * np.sin(inner)], axis=1)]
    return np.concatenate([jaw, brows, bridge, nostrils, left_eye, right_eye, *lips])


FACE_PARTS = [range(17, 22), range(22, 27), range(27, 31), range(31, 36), range(36, 42),
              range(42, 48), range(48, 60), range(60, 68)]


def draw_face(points: np.ndarray, height: int, width: int, tone: tuple[int, int, int],
              rng: np.random.Generator) -> np.ndarray:
    """A noisy background with a face of colour `tone` whose features sit on `points`."""
    import cv2

    image = rng.integers(0, 50, (height, width, 3), dtype=np.uint8)
    pixels = np.round(points).astype(np.int32)
    cv2.fillConvexPoly(image, cv2.convexHull(pixels), tone)
    for part in FACE_PARTS:
        closed = part.start >= 36  # eyes and lips are loops
        cv2.polylines(image, [pixels[part]], closed, (20, 20, 30), 1)
    return image


def write_keypoints_source(root: Path, people: int = 6, frames: int = 5,
                           seed: int = 0) -> Path:
    """The Udacity layout: `keypoints.csv` (unnamed first column) beside `images/`.

    File names are `Person_Name_<NN>.jpg` (mostly PNG data named .jpg, some RGBA, some real
    JPEG) of varying sizes; the first face pokes slightly out of its image.
    """
    rng = np.random.default_rng(seed)
    template = face_template()
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = ["," + ",".join(str(i) for i in range(136))]
    for person in range(people):
        tone = tuple(int(v) for v in rng.integers(120, 250, 3))
        for frame in range(frames):
            height, width = (int(v) for v in rng.integers(40, 72, 2))
            scale = rng.uniform(0.7, 0.9) * min(height, width)
            centre = np.array([width, height]) * (0.5 + rng.uniform(-0.06, 0.06, 2))
            angle = rng.uniform(-0.15, 0.15)
            if person == 0 and frame == 0:  # the jaw's left end 1.5 px outside the image
                centre[0], angle = 0.4 * scale - 1.5, 0.0
            turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            points = (template - 0.5) @ turn.T * scale + centre
            image = draw_face(points, height, width, tone, rng)
            name = f"Person_{chr(65 + person)}_{frame:02d}.jpg"
            if frame % 3 == 2:
                Image.fromarray(image).save(root / "images" / name, format="JPEG")
            else:
                picture = Image.fromarray(image)
                (picture.convert("RGBA") if frame % 3 == 1 else picture).save(
                    root / "images" / name, format="PNG")
            lines.append(name + "," + ",".join(f"{v:.2f}" for v in points.ravel()))
    (root / "keypoints.csv").write_text("\n".join(lines) + "\n")
    return root / "keypoints.csv"
