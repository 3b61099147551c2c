"""Where each stage reads and writes, relative to the repository root (as in dvc.yaml)."""

from __future__ import annotations

from pathlib import Path


def raw_dir(task: str) -> Path:
    return Path("data/raw") / task


def faces_dir(task: str) -> Path:
    """Aligned face crops and their manifest (or, alignment off, a manifest of the photos)."""
    return Path("data/faces") / task


def prepared_dir(task: str) -> Path:
    return Path("data/prepared") / task


def features_path(task: str, backbone: str) -> Path:
    return Path("data/features") / task / f"{backbone}.npy"


def extractor_path(task: str, backbone: str) -> Path:
    """The exact network that made the cached features, saved beside them."""
    return Path("data/features") / task / f"{backbone}.keras"


def model_dir(task: str) -> Path:
    return Path("models") / task


def plots_dir(task: str) -> Path:
    return Path("plots") / task


def metrics_path(name: str) -> Path:
    return Path("metrics") / f"{name}.json"
