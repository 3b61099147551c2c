"""Issue 2's figures: the real pipeline on the shared CelebA subset, per backbone and size.

Runs the real dvc.yaml in a throwaway copy of the repository (stage by stage, timing each)
and prints one table. Needs `../shared` beside the repository. Usage, from the repo root:

    PYTHONPATH=. python benchmarks/gender_figures.py [--sizes 224 300] [--configs ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tests.e2e import REPO, commit_all, copy_repository, run, set_params

SHARED = REPO.parent / "shared"
CELEBA = SHARED / "data" / "gender_celeba"
WEIGHTS = SHARED / "weights"
CONFIGS = {
    "mobilenet_v2-imagenet": {"backbone": "mobilenet_v2",
                              "backbones.mobilenet_v2.weights": str(
                                  WEIGHTS / "mobilenet_v2_torchvision_imagenet_notop.weights.h5"),
                              "backbones.mobilenet_v2.preprocess": "torch"},
    "vgg16-hed": {"backbone": "vgg16",
                  "backbones.vgg16.weights": str(WEIGHTS / "vgg16_hed_bsds500_notop.weights.h5")},
    "vgg16-none": {"backbone": "vgg16", "backbones.vgg16.weights": "none"},
}
STAGES = ["download_gender", "prepare_gender", "features_gender", "train_gender",
          "evaluate_gender"]


def timed_repro(repo: Path, stage: str) -> float:
    start = time.perf_counter()
    run(["dvc", "repro", "--single-item", stage], repo)
    return round(time.perf_counter() - start, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 300])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    if not CELEBA.is_dir():
        raise SystemExit(f"needs the shared data beside the repository: {CELEBA} is missing")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_repository(Path(tmp))
        set_params(repo, {"data.gender.source": str(CELEBA / "labels.csv"),
                          "data.gender.images": str(CELEBA / "images"),
                          "data.gender.path_column": "filename",
                          "data.gender.label_column": "gender",
                          "data.gender.group_column": "identity",
                          "data.gender.per_class": None, "seed": args.seed})
        for size in args.sizes:
            for name in args.configs:
                set_params(repo, CONFIGS[name] | {"prepare.gender.input_size": size})
                commit_all(repo, f"{name} at {size}")
                seconds = {stage: timed_repro(repo, stage) for stage in STAGES}
                metrics = json.loads((repo / "metrics/gender.json").read_text())
                features = json.loads((repo / "metrics/features_gender.json").read_text())
                rows.append({"config": name, "size": size, "accuracy": metrics["accuracy"],
                             "ci95": metrics["accuracy_ci95"], "auc": metrics["auc"],
                             "n_test": metrics["n_test"], "precision": features["precision"],
                             "features_img_per_s": features["images_per_s"],
                             "stage_seconds": seconds})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| backbone | size | test accuracy [95% CI] | AUC | n_test | features img/s "
          "(precision) | stage wall times (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        low, high = r["ci95"]
        print(f"| {r['config']} | {r['size']} | {r['accuracy']:.3f} [{low:.3f}, {high:.3f}] "
              f"| {r['auc']:.3f} | {r['n_test']} | {r['features_img_per_s']} ({r['precision']}) "
              f"| {r['stage_seconds']} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
