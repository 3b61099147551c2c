"""PNG renderings, readable offline (DVC's HTML plots load vega from a CDN)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facetl.core.atomic import atomic_path, write_csv  # noqa: E402
from facetl.core.metrics import expected_calibration_error, reliability, risk_coverage  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def image_grid(images: list[np.ndarray], titles: list[str], path: Path, columns: int = 6,
               cmap: str | None = None, suptitle: str = "") -> None:
    """A grid of images with a title each; empty cells stay blank."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image, cmap=cmap)
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    save_figure(fig, path)


def training_curves(live_dir: Path, path: Path) -> None:
    """Train and validation curves of each metric dvclive logged, one panel per metric."""
    metrics_dir = live_dir / "plots" / "metrics"
    names = sorted(p.stem for p in (metrics_dir / "train").glob("*.tsv"))
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(5 * max(1, len(names)), 3.5),
                             squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for split in ("train", "eval"):
            file = metrics_dir / split / f"{name}.tsv"
            if file.is_file():
                curve = pd.read_csv(file, sep="\t")
                ax.plot(curve["step"] + 1, curve[name], marker="o",
                        label="validation" if split == "eval" else "train")
        ax.set(xlabel="epoch", title=name)
        ax.legend()
    save_figure(fig, path)


def roc_plot(fpr: np.ndarray, tpr: np.ndarray, auc: float | None, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    save_figure(fig, path)


def confusion_plot(matrix: list[list[int]], classes: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes,
           yticklabels=classes, xlabel="predicted", ylabel="actual", title="confusion (test)")
    save_figure(fig, path)


def cv_curve_plot(cv: pd.DataFrame, chosen: float, path: Path) -> None:
    """The linear head's cross-validation: loss and accuracy per C, train and validation folds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, name in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(cv["C"], cv[f"train_{name}"], marker="o", label="train folds")
        ax.plot(cv["C"], cv[f"val_{name}"], marker="o", label="validation folds")
        ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen C={chosen:g}")
        ax.set(xscale="log", xlabel="C (inverse regularisation)", title=name)
        ax.legend()
    save_figure(fig, path)


def reliability_plot(rows: list[dict], ece: float, path: Path) -> None:
    """Accuracy against confidence per bin: on the diagonal, a probability means what it says."""
    used = [row for row in rows if row["n"]]
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(4.5, 5.5), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="calibrated")
    ax.plot([r["confidence"] for r in used], [r["accuracy"] for r in used], marker="o",
            label=f"model (ECE {100 * ece:.1f}%)")
    ax.set(ylabel="accuracy", title="reliability (test)", ylim=(0, 1.02))
    ax.legend(loc="lower right")
    counts.bar([(r["low"] + r["high"]) / 2 for r in rows], [r["n"] for r in rows],
               width=0.045, color="grey")
    counts.set(xlabel="confidence (probability of the predicted class)", ylabel="photos")
    save_figure(fig, path)


def risk_coverage_plot(curve: dict[str, np.ndarray], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(100 * curve["coverage"], 100 * curve["accuracy"], marker=".")
    ax.set(xlabel="photos answered, surest first (%)", ylabel="accuracy on them (%)",
           title="risk-coverage (test)")
    ax.invert_xaxis()
    save_figure(fig, path)


def calibration_plots(labels: np.ndarray, p_positive: np.ndarray, folder: Path) -> None:
    """reliability.{csv,png} and risk_coverage.{csv,png} in `folder`: the CSVs are DVC plots,
    the PNGs the same curves for a reader without DVC."""
    rows = reliability(labels, p_positive)
    write_csv(folder / "reliability.csv",
              pd.DataFrame([r for r in rows if r["n"]]).round(5))
    reliability_plot(rows, expected_calibration_error(labels, p_positive),
                     folder / "reliability.png")
    curve = risk_coverage(labels, p_positive)
    write_csv(folder / "risk_coverage.csv", pd.DataFrame(curve).round(5))
    risk_coverage_plot(curve, folder / "risk_coverage.png")
