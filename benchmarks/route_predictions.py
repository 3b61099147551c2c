"""Per-photo predictions of a workspace's gender model, saved where a later comparison finds
them: its validation people (what a combination of routes is fitted on), its test photos and
the photos from elsewhere; and the model itself (`models/gender/`, for measurements made
later). A DVC experiment's outputs are replaced by the next one's, so each route's are saved
right after it ran.

    python benchmarks/route_predictions.py FOLDER   (run in the workspace, after `dvc exp run`)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

PARTS = ("validation", "test", "web")
COLUMNS = ["file", "source", "label", "face", "p_positive"]


def folder_for(repo: Path, name: str) -> Path:
    """Where experiment `name`'s predictions are kept: beside the workspace, not in it."""
    return repo.parent / "route-predictions" / name


def save(repo: Path, folder: Path) -> None:
    """Run this module in `repo` (the workspace's own code and model) and write to `folder`."""
    from benchmarks.workspace import run  # (not at the top: the workspace run imports facetl only)

    folder.mkdir(parents=True, exist_ok=True)
    run([sys.executable, str(Path(__file__).resolve()), str(folder.resolve())], repo)
    shutil.copytree(repo / "models/gender", folder / "models/gender", dirs_exist_ok=True)


def measure_folders(benchmark: str, description: str, measure: Callable[[Path], dict],
                    summary: Callable[[dict], str]) -> None:
    """The command line of a benchmark that measures saved route folders: each folder's
    figures recorded as entry <folder name> of benchmarks/results/<benchmark>.json."""
    from benchmarks.results import add_results_dir, record

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folders", type=Path, nargs="+", help="folders this module saved")
    add_results_dir(parser)
    args = parser.parse_args()
    for folder in args.folders:
        figures = measure(folder)
        record(benchmark, folder.name, figures, args.results_dir)
        print(f"{folder.name}: {summary(figures)}", flush=True)


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """The saved parts, each a table of `COLUMNS` (`label` 0/1, the positive class 1)."""
    return {part: pd.read_csv(folder / f"{part}.csv", dtype={"face": str},
                              keep_default_na=False) for part in PARTS}


def calibration_figures(labels: np.ndarray, p_positive: np.ndarray) -> dict:
    """What the calibration benchmarks report on a set: accuracy, ECE with its interval, the
    Brier score and the mean confidence."""
    from facetl.core.metrics import calibration_report, confidence

    labels, p_positive = np.asarray(labels), np.asarray(p_positive)
    report = calibration_report(labels, p_positive)
    return {"accuracy": float(((p_positive >= 0.5) == (labels == 1)).mean()),
            "ece": report["ece"], "ece_ci95": report["ece_ci95"], "brier": report["brier"],
            "mean_confidence": float(confidence(p_positive).mean())}


def with_raw_logits(folder: Path) -> dict[str, pd.DataFrame]:
    """The saved parts with `z`, the model's logit before its temperature (the saved
    probability's logit times that temperature): what a calibration is fitted on."""
    from facetl.models.calibration import logit, temperature_of
    from facetl.models.saving import load_task_model

    model, _ = load_task_model("gender", folder / "models")
    t_model = temperature_of(model)
    return {part: frame.assign(z=logit(frame["p_positive"]) * t_model)
            for part, frame in load(folder).items()}


def main() -> None:
    from facetl.core.params import load_params, lookup
    from facetl.data.splits import carve_validation, load_split
    from facetl.models.saving import load_task_model
    from facetl.models.training import FeatureBatches

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args().folder
    params = load_params()
    index, train, test = load_split("gender")
    # the people both the head and fine-tuning held out (same fraction and seed: same people)
    _, validation = carve_validation(index, train, lookup(params, "train.gender.val_size"),
                                     lookup(params, "seed"))
    model, _ = load_task_model("gender")
    images = np.load(Path("data/prepared/gender/images.npy"), mmap_mode="r")
    labels = index["label_index"].to_numpy()
    for part, rows in (("validation", np.sort(validation)), ("test", np.sort(test))):
        p_positive = model.predict(FeatureBatches(images, labels, rows, 32), verbose=0)[:, 0]
        index.iloc[rows].assign(label=labels[rows], p_positive=p_positive)[COLUMNS].to_csv(
            folder / f"{part}.csv", index=False)
    classes = [str(c).lower() for c in lookup(params, "data.gender.classes")]
    web = pd.read_csv("plots/gender_ood/predictions.csv", keep_default_na=False)
    web = web[web["error"].eq("")] if "error" in web else web
    web.assign(file=web["source"].map(lambda s: Path(s).name),
               label=(web["label"] == classes[1]).astype(int),
               p_positive=web[f"p_{classes[1]}"])[COLUMNS].to_csv(folder / "web.csv",
                                                                  index=False)


if __name__ == "__main__":
    main()
