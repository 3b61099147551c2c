"""Does the chapter head's training form (PatchConv2D: the 3x3 convolution as patches x
matrix over the positions its pool reads) learn what the chapter's Conv2D learns?

On a workspace whose features_gender stage has run (benchmarks/head_only.py leaves one: real
CelebA photos, MobileNetV2 features), for each seed: the head trained twice with the stage's
trainer and this repository's `train.gender` settings (`fit`, batch 16, Adam 1e-3, the seed's
validation people; the workspace gives only the data), once per form,
from the same initial weights; then the per-epoch losses side by side, the largest weight
difference, each form's accuracy on the CelebA test split and on gender_web's photos (through
the workspace's face front end and saved extractor), each paired photo by photo (exact
McNemar), and each form's seconds.

    PYTHONPATH=. python benchmarks/patch_equivalence.py WORKSPACE [--seeds 42 1 2]
        [--epochs 10] [--control] [--results-dir DIR]

`--control` measures what rounding alone does: the training form twice, the second time with
the feature scale moved by one part in a million (a few float32 roundings), the same pairing.
Adam turns rounding-level differences in near-zero gradients into full-size steps, so two runs
of one computation part ways too; a difference between the forms means something only beyond
this one.

`--trace STEPS` follows the first STEPS Adam steps of both forms batch by batch (the stage's
first batches, from the same weights), with the chapter's dropout and without: the relative
difference of each step's loss, and of the weights after, says whether the forms compute the
same (rounding-level at first, then growing) or not (apart from the first step).

Records benchmarks/results/patch_equivalence.json, one entry per `seed<N>-epochs<E>`
(`-control` after it for the control), or `seed<N>-trace<STEPS>`; `table` renders the full
recipe's entries (docs/backends-gpu.md).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import keras
import numpy as np

from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import web_crops
from benchmarks.tables_format import NOT_MEASURED, Results, mean_sd, percent, provenance_line
from benchmarks.workspace import REPO
from facetl.core import paths
from facetl.core.metrics import discordant_counts, mcnemar_exact
from facetl.core.params import load_params, lookup
from facetl.data.splits import carve_validation, load_split
from facetl.models.backbones import get_spec, load_model
from facetl.models.heads import chapter_head, plain_convs
from facetl.models.speed import SpeedMeter
from facetl.models.training import feature_max, fit


def trained(patches: bool, features: np.ndarray, targets: np.ndarray, fit_rows: np.ndarray,
            val_rows: np.ndarray, cfg: dict, blocks: int, seed: int,
            nudge: float = 1.0) -> dict:
    """One head, trained as the stage trains it (its feature scale times `nudge`); its curves,
    weights and test answers."""
    keras.utils.set_random_seed(seed)
    head = chapter_head(features.shape[1:], blocks, 1, "sigmoid",
                        feature_max(features, fit_rows) * nudge, cfg["dropout"],
                        patches=patches)
    meter = SpeedMeter()
    start = time.perf_counter()
    history = fit(head, features, targets, fit_rows, val_rows,
                  cfg | {"loss": "binary_crossentropy", "metrics": ["accuracy"]}, seed, None,
                  speed=meter)
    return {"head": plain_convs(head) if patches else head, "history": history.history,
            "seconds": time.perf_counter() - start, "speed": meter.figures()}


def trace(features: np.ndarray, targets: np.ndarray, fit_rows: np.ndarray, blocks: int,
          seed: int, steps: int, dropout: float) -> dict:
    """Both forms, `steps` Adam steps on the same batches: losses side by side."""
    order = np.random.default_rng(seed).permutation(fit_rows)
    scale = feature_max(features, fit_rows)
    losses, weights = {}, {}
    for form in ("conv2d", "patches"):
        keras.utils.set_random_seed(seed)
        head = chapter_head(features.shape[1:], blocks, 1, "sigmoid", scale, dropout,
                            patches=form == "patches")
        head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        losses[form] = np.array([float(head.train_on_batch(
            np.asarray(features[rows], dtype="float32"), targets[rows]))
            for rows in (np.sort(order[s * 16:(s + 1) * 16]) for s in range(steps))])
        weights[form] = head.get_weights()
    relative = np.abs(losses["conv2d"] - losses["patches"]) / np.abs(losses["conv2d"])
    return {"dropout": dropout, "loss_relative_difference": [float(r) for r in relative],
            "max_weight_difference": float(max(np.max(np.abs(a - b)) for a, b in zip(
                weights["conv2d"], weights["patches"], strict=True)))}


def test_sets(name: str, faces: dict, features: np.ndarray, targets: np.ndarray,
              test: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(features, is male) of the CelebA test split, and of gender_web's photos through the
    workspace's face front end and saved extractor, stored as the stage stores its features."""
    size = np.load(paths.prepared_dir("gender") / "images.npy", mmap_mode="r").shape[1]
    crops, web_truth = web_crops(faces, size)
    web = load_model(paths.extractor_path("gender", name)).predict(crops, verbose=0)
    return {"celeba_test": (np.asarray(features[test], dtype="float32"), targets[test] == 1),
            "gender_web": (web.astype(features.dtype).astype("float32"), web_truth)}


def paired(right: dict[str, np.ndarray]) -> dict:
    """Each form's accuracy on one test set, and the exact McNemar test of their pairs."""
    only_conv, only_patches = discordant_counts(right["conv2d"], right["patches"])
    return {"photos": int(len(right["conv2d"])),
            "accuracy": {form: float(r.mean()) for form, r in right.items()},
            "only_conv2d_right": only_conv, "only_patches_right": only_patches,
            "mcnemar_p": mcnemar_exact(only_conv, only_patches)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--control", action="store_true")
    parser.add_argument("--trace", type=int, default=0, metavar="STEPS")
    add_results_dir(parser)
    args = parser.parse_args()
    results_dir = args.results_dir.resolve()
    os.chdir(args.workspace)  # the stages' relative paths
    workspace_params = load_params()
    name = lookup(workspace_params, "backbone")
    cfg = lookup(load_params(REPO / "params.yaml"), "train.gender") | {"epochs": args.epochs}
    features = np.load(paths.features_path("gender", name), mmap_mode="r")
    index, train, test = load_split("gender")
    targets = index["label_index"].to_numpy().astype("float32")
    sets = {} if args.trace else test_sets(name, lookup(workspace_params, "faces"), features,
                                           targets, np.sort(test))
    for seed in args.seeds:
        fit_rows, val_rows = carve_validation(index, train, cfg["val_size"], seed)
        if args.trace:
            figures = {"steps": args.trace, "batch_size": 16, "traces": [
                trace(features, targets, fit_rows, get_spec(name).head_blocks, seed, args.trace,
                      dropout) for dropout in (cfg["dropout"], 0.0)]}
            print(seed, figures, flush=True)
            path = record("patch_equivalence", f"seed{seed}-trace{args.trace}", figures,
                          results_dir)
            continue
        forms = {"conv2d": (False, 1.0), "patches": (True, 1.0)}
        if args.control:  # the first form is then the training form itself, nudged
            forms = {"conv2d": (True, 1.0 + 1e-6), "patches": (True, 1.0)}
        runs = {form: trained(patches, features, targets, fit_rows, val_rows, cfg,
                              get_spec(name).head_blocks, seed, nudge)
                for form, (patches, nudge) in forms.items()}
        right = {test_set: {form: (run["head"].predict(x, verbose=0)[:, 0] >= 0.5) == truth
                            for form, run in runs.items()}
                 for test_set, (x, truth) in sets.items()}
        weights = zip(runs["conv2d"]["head"].get_weights(), runs["patches"]["head"].get_weights(),
                      strict=True)
        figures = {
            "first": "patches, feature scale x (1 + 1e-6)" if args.control else "conv2d",
            "backbone": name, "epochs": args.epochs, "batch_size": cfg["batch_size"],
            "loss": {form: run["history"]["loss"] for form, run in runs.items()},
            "val_loss": {form: run["history"]["val_loss"] for form, run in runs.items()},
            "max_weight_difference": float(max(np.max(np.abs(a - b)) for a, b in weights)),
            **{test_set: paired(right[test_set]) for test_set in sets},
            "seconds": {form: round(run["seconds"], 1) for form, run in runs.items()},
            "share_of_peak": {form: run["speed"]["share_of_peak"] for form, run in runs.items()}}
        print(seed, figures, flush=True)
        key = f"seed{seed}-epochs{args.epochs}" + ("-control" if args.control else "")
        path = record("patch_equivalence", key, figures, results_dir)
    print(f"recorded in {path}")


COMMAND = "PYTHONPATH=. python benchmarks/patch_equivalence.py WORKSPACE [--control]"
TEST_SETS = ("celeba_test", "gender_web")


def table(results: Results) -> str:
    """Per seed at the full recipe: each pair's accuracies, discordant photos and McNemar p,
    the forms against each other and the control (the training form against itself)."""
    entries = {name: entry for name, entry in results("patch_equivalence").items()
               if "-epochs10" in name}
    if not entries:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    lines = ["| seed | pair | photos | first | second | right only with first / second | "
             "exact McNemar p |", "|---|---|---|---|---|---|---|"]
    for name, entry in sorted(entries.items(), key=lambda item: ("-control" in item[0],
                                                                  item[0])):
        f = entry["figures"]
        pair = ("PatchConv2D, scale x (1 + 1e-6) / PatchConv2D" if name.endswith("-control")
                else "Conv2D / PatchConv2D")
        for test_set in TEST_SETS:
            row = f[test_set]
            lines.append(f"| {name.split('-')[0].removeprefix('seed')} | {pair} | {test_set} "
                         f"({row['photos']}) | {percent(row['accuracy']['conv2d'])} | "
                         f"{percent(row['accuracy']['patches'])} | {row['only_conv2d_right']} / "
                         f"{row['only_patches_right']} | {row['mcnemar_p']:.2g} |")
    pairs = [entry["figures"] for name, entry in entries.items() if "-control" not in name]
    nudged = [entry["figures"] for name, entry in entries.items() if "-control" in name]

    def mean(runs: list[dict], test_set: str, form: str) -> str:
        return mean_sd([f[test_set]["accuracy"][form] for f in runs]) if runs else "—"

    means = "; ".join(
        f"{test_set} {mean(pairs, test_set, 'conv2d')} with Conv2D, "
        f"{mean(pairs, test_set, 'patches')} with PatchConv2D and "
        f"{mean(nudged, test_set, 'conv2d')} with PatchConv2D nudged" for test_set in TEST_SETS)
    return ("\n".join(lines) + "\n\nMean accuracy (%) ± its standard deviation over the "
            f"seeds: {means}. The chapter's recipe (batch 16, 10 epochs, Adam "
            "1e-3) on MobileNetV2's CelebA features, each pair from the same initial weights. "
            f"Measured with `{COMMAND}` on: {provenance_line(list(entries.values()))}.\n")


if __name__ == "__main__":
    main()
