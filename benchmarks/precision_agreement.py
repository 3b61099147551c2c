"""How far bfloat16 features are from float32 ones, and what that does to the heads.

Reads two DVC experiments of a workspace made by `real_experiments.py` (by default `hed-224`,
bfloat16 under `features.precision: auto` on a CPU with AVX512-BF16, and `hed-224-fp32`), which
differ only in `features.precision` and share the same grouped splits and head seeds:

- per image, the relative L2 error and cosine of the cached bfloat16 features vs float32 ones;
- gender accuracy on each of the K repeated splits and the paired differences;
- keypoints NME and its relative difference.

    PYTHONPATH=. python benchmarks/precision_agreement.py WORKSPACE [--reduced NAME] [--full NAME]
        [--results-dir DIR]

Records benchmarks/results/precision_agreement.json, entry `<reduced>-vs-<full>`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import dvc.api
import numpy as np

from benchmarks.results import add_results_dir, record
from facetl.report.report import experiment_commits, experiment_runs


def cached_features(workspace: Path, commit: str, task: str, backbone: str) -> np.ndarray:
    path = f"data/features/{task}/{backbone}.npy"
    with dvc.api.open(path, repo=str(workspace), rev=commit, mode="rb") as file:
        features = np.load(file)
    return features.reshape(len(features), -1).astype("float64")


def feature_agreement(reduced: np.ndarray, full: np.ndarray) -> dict[str, float]:
    full_norm = np.linalg.norm(full, axis=1)
    error = np.linalg.norm(reduced - full, axis=1) / full_norm
    cosine = (reduced * full).sum(1) / np.linalg.norm(reduced, axis=1) / full_norm
    return {"relative_error_median": float(np.median(error)),
            "relative_error_max": float(error.max()), "cosine_min": float(cosine.min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--reduced", default="hed-224", help="experiment in bfloat16/float16")
    parser.add_argument("--full", default="hed-224-fp32", help="the same in float32")
    add_results_dir(parser)
    args = parser.parse_args()
    runs = {run.name: run for run in experiment_runs(args.workspace)}
    commits = dict(experiment_commits(args.workspace))
    missing = {args.reduced, args.full} - runs.keys()
    if missing:
        raise SystemExit(f"no DVC experiment {sorted(missing)} in {args.workspace}: run "
                         "real_experiments.py --only hed-224 hed-224-fp32 first")
    reduced, full = runs[args.reduced], runs[args.full]
    backbone = full.params["backbone"]
    figures = {"backbone": backbone, "features": {}}
    for task in ("gender", "keypoints"):
        features = [cached_features(args.workspace, commits[name], task, backbone)
                    for name in (args.reduced, args.full)]
        figures["features"][task] = feature_agreement(*features)
        print(json.dumps({"task": task, "features": figures["features"][task]}))
    reduced_acc = np.array(reduced.metrics["repeats"]["accuracy_values"])
    full_acc = np.array(full.metrics["repeats"]["accuracy_values"])
    difference = 100 * (reduced_acc - full_acc)
    reduced_nme, full_nme = (run.metrics["keypoints"]["nme"] for run in (reduced, full))
    heads = {
        "gender_accuracy": {args.reduced: reduced_acc.tolist(), args.full: full_acc.tolist(),
                            "difference_points": difference.round(2).tolist(),
                            "mean_difference_points": round(float(difference.mean()), 2),
                            "std_difference_points": round(float(difference.std(ddof=1)), 2)},
        "keypoints_nme": {args.reduced: reduced_nme, args.full: full_nme,
                          "relative_difference": round((reduced_nme - full_nme) / full_nme, 4)},
    }
    print(json.dumps(heads))
    path = record("precision_agreement", f"{args.reduced}-vs-{args.full}", figures | heads,
                  args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
