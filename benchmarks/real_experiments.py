"""The figures of the issues, measured: the real pipeline on the shared data, as DVC experiments.

Creates (or reuses) a workspace: a copy of this repository's HEAD whose params point at `../shared`
(CelebA subset for gender, the Udacity frames for keypoints, the two weight files), then runs
each named experiment with `dvc exp run -n NAME -S ...` in order, printing one JSON line per
experiment (metrics, which stages ran, each stage's wall time) and recording it in
benchmarks/results/real_experiments.json (the docs' tables come from there), and finally
`facetl report`.

    PYTHONPATH=. python benchmarks/real_experiments.py WORKSPACE [--only NAME ...] \
        [--targets STAGE ...] [--save-predictions]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks import route_predictions
from benchmarks.results import record
from benchmarks.shared_data import CELEBA, GENDER_WEB, KEYPOINTS, MOBILENET, VGG16_HED
from benchmarks.tables_format import (
    NOT_MEASURED,
    Results,
    calibration_cell,
    groups_cell,
    interval,
    mean_sd,
    percent,
    provenance_line,
    weights_words,
)
from benchmarks.workspace import (
    REPO,
    commit_all,
    export_commit,
    head,
    override,
    run,
    set_params,
    stage_seconds,
    stages_run,
)
from facetl.core.params import load_params, lookup

BASELINE = {
    "data.gender.source": str(CELEBA / "labels.csv"),
    "data.gender.images": str(CELEBA / "images"),
    "data.gender.path_column": "filename",
    "data.gender.label_column": "gender",
    "data.gender.group_column": "identity",
    "data.gender.per_class": None,
    "data.keypoints.csv": str(KEYPOINTS / "training_frames_keypoints.csv"),
    "data.keypoints.images": str(KEYPOINTS / "images"),
    "ood.gender.source": str(GENDER_WEB / "labels.csv"),
    "ood.gender.images": str(GENDER_WEB / "images"),
    "backbones.mobilenet_v2.preprocess": "torch",
    # The 300 px scratch nets take hours on 2 cores: a subset and fewer epochs (README).
    "scratch.scenarios.large.max_train_images": 256,
    "scratch.scenarios.large.epochs": 2,
    "scratch.scenarios.aggressive.max_train_images": 1024,
    "scratch.scenarios.aggressive.epochs": 5,
}
MNV2 = {"backbone": "mobilenet_v2", "backbones.mobilenet_v2.weights": str(MOBILENET)}
MNV2_NONE = {"backbone": "mobilenet_v2", "backbones.mobilenet_v2.weights": "none"}
HED = {"backbone": "vgg16", "backbones.vgg16.weights": str(VGG16_HED)}
VGG_NONE = {"backbone": "vgg16", "backbones.vgg16.weights": "none"}
DLIB = {"backbone": "dlib_face"}
# The first fine-tuning settings (the augmentation ablation's base): the top 30 weight layers.
TOP30_SETTINGS = {"finetune.gender.unfreeze": 30, "finetune.gender.epochs": 5,
                  "finetune.gender.patience": 2}
FINETUNE_ROUTE = MNV2 | {"faces.align": True, "faces.cnn": True, "head.type": "linear",
                         "finetune.gender.enabled": True, "seed": 42}
TOP30 = FINETUNE_ROUTE | TOP30_SETTINGS
# The gender augmentation knobs by family, with the value that turns each off.
AUGMENT_FAMILIES = {
    "geometry": {"flip": False, "rotate_deg": 0, "scale": 0, "shift": 0},
    "colour": {"brightness": 0, "contrast": 0, "saturation": 0, "grayscale_p": 0},
    "resolution": {"downscale_p": 0, "blur_p": 0, "jpeg_p": 0},
}


def gender_augment_off(families: list[str]) -> dict:
    return {f"finetune.gender.augment.{key}": off for family in families
            for key, off in AUGMENT_FAMILIES[family].items()}


# Every experiment sets all of these: `dvc exp run` leaves the last one's params in place.
DEFAULTS = {"prepare.gender.input_size": 224, "faces.align": False, "head.type": "chapter",
            "features.precision": "auto", "repeats.splits": 1}
LINEAR = {"head.type": "linear", "repeats.splits": 5}  # seconds per fit: 5 grouped splits
# bfloat16 vs float32 features: the same 5 grouped splits and head seeds, so the runs pair up.
HED_PAIRED = HED | {"repeats.splits": 5}
FACE_ROUTE = DLIB | LINEAR | {"faces.align": True, "faces.cnn": True,
                              "prepare.gender.input_size": 150}  # dlib's chip size
# In order of value; on a slow machine stop after any of them (the report shows what ran).
EXPERIMENTS = {
    "mnv2-224": MNV2,
    "mnv2-224-linear": MNV2 | LINEAR,
    "mnv2-224-align": MNV2 | {"faces.align": True},
    "mnv2-224-align-linear": MNV2 | LINEAR | {"faces.align": True},
    "dlib-align-linear": DLIB | LINEAR | {"faces.align": True},
    "hed-224": HED_PAIRED,
    "vgg16none-224": VGG_NONE,
    "mnv2none-224": MNV2_NONE,
    "mnv2-300": MNV2 | {"prepare.gender.input_size": 300},
    "hed-300": HED | {"prepare.gender.input_size": 300},
    "vgg16none-300": VGG_NONE | {"prepare.gender.input_size": 300},
    "hed-224-fp32": HED_PAIRED | {"features.precision": "float32"},
    # The routes of docs/routes.md, each scored on gender_web too. The default route: the
    # params' own front end and the chapter head on the MobileNetV2 file, over three seeds.
    **{f"route-default-seed{seed}": MNV2 | {"faces.align": True, "faces.cnn": True,
                                            "seed": seed} for seed in (42, 1, 2)},
    "route-best": DLIB | LINEAR | {"faces.align": True, "faces.cnn": True},
    **{f"route-best-seed{seed}": DLIB | LINEAR | {"faces.align": True, "faces.cnn": True,
                                                  "seed": seed} for seed in (1, 2)},
    # (the MobileNetV2 routes as measured: before faces.cnn became the default)
    "route-probe": MNV2 | {"faces.align": True, "faces.cnn": False, "head.type": "linear"},
    **{f"route-finetune-seed{seed}": TOP30 | {"faces.cnn": False, "seed": seed}
       for seed in (42, 1, 2)},
    # The fine-tuned route with today's front end (CNN detector on): the top 30 layers over
    # three seeds, then the augmentation ablation on them, one family of knobs off at a time
    # (seed 42); then every layer but BatchNorm, longer (the params' settings), three seeds.
    **{f"route-finetune-cnn-seed{seed}": TOP30 | {"seed": seed} for seed in (42, 1, 2)},
    "route-finetune-cnn-no-augment": TOP30 | gender_augment_off(AUGMENT_FAMILIES),
    **{f"route-finetune-cnn-no-{family}": TOP30 | gender_augment_off([family])
       for family in AUGMENT_FAMILIES},
    **{f"route-finetune-cnn-all-layers-seed{seed}": FINETUNE_ROUTE | {"seed": seed}
       for seed in (42, 1, 2)},
    # dlib's face ResNet as a Keras network: the best route on it, and the same route with the
    # network fine-tuned end to end (the params' finetune settings), paired seed by seed.
    **{f"route-face-seed{seed}": FACE_ROUTE | {"seed": seed} for seed in (42, 1, 2)},
    **{f"route-face-finetune-seed{seed}": FACE_ROUTE | {"seed": seed,
                                                         "finetune.gender.enabled": True}
       for seed in (42, 1, 2)},
}
# Which pipeline file each family of experiments reproduces (the default: dvc.yaml).
TARGETS = {"route-": ["evaluate_gender", "repeats_gender", "pipelines/gender_ood/dvc.yaml"]}


# What a gender evaluation reports, kept for the docs' tables (`routes_table` below).
SCORES = ("accuracy", "accuracy_ci95", "auc", "n_test", "ece", "ece_ci95", "brier",
          "accuracy_at_coverage", "by_face")


def workspace(path: Path) -> Path:
    if not (path / ".git").is_dir():
        export_commit(path, head())
        set_params(path, BASELINE)
        commit_all(path, "real data")
    return path


def reset_values() -> dict:
    """params.yaml's own value of every key some experiment overrides: each run starts from the
    project's defaults, not from what the previous experiment left in the workspace."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    return {key: lookup(params, key) for overrides in EXPERIMENTS.values() for key in overrides
            if key not in BASELINE}


def settings(overrides: dict) -> dict:
    """Every param an experiment with these overrides runs with: params.yaml, then BASELINE,
    DEFAULTS and its own overrides (what `run_experiment` passes with -S)."""
    return override(yaml.safe_load((REPO / "params.yaml").read_text()),
                    BASELINE | DEFAULTS | overrides)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def run_experiment(repo: Path, name: str, overrides: dict, targets: list[str]) -> dict:
    arguments = [f"{key}={json.dumps(value) if value is None else value}"
                for key, value in (reset_values() | DEFAULTS | overrides).items()]
    start = time.perf_counter()
    targets = targets or next((files for prefix, files in TARGETS.items()
                               if name.startswith(prefix)), [])
    result = run(["dvc", "exp", "run", "-n", name, *[a for s in arguments for a in ("-S", s)],
                  *targets], repo)
    output = result.stdout + result.stderr
    gender, keypoints = read_json(repo / "metrics/gender.json"), read_json(
        repo / "metrics/keypoints.json")
    ood = read_json(repo / "metrics/gender_ood.json")
    return {
        "experiment": name, "seconds": round(time.perf_counter() - start),
        "settings": settings(overrides),
        "ran": stages_run(output), "stage_seconds": stage_seconds(output),
        "gender": {k: gender.get(k) for k in ("backbone", "finetuned", *SCORES)},
        "gender_ood": {k: ood.get(k) for k in SCORES},
        "keypoints": {k: keypoints.get(k) for k in ("recipe", "nme", "pixel_error",
                                                    "failure_rate", "misses", "baseline_nme",
                                                    "dlib_nme", "inference_ablation",
                                                    "val_mae_normalised", "n_test")},
        "features": read_json(repo / "metrics/features_gender.json"),
        "repeats": read_json(repo / "metrics/gender_repeats.json"),
        "faces": read_json(repo / "metrics/faces_gender.json"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS))
    parser.add_argument("--targets", nargs="+", default=[],
                        help="stages to reproduce (with what they need); default: all")
    parser.add_argument("--save-predictions", action="store_true",
                        help="keep each gender experiment's per-photo predictions and model "
                             "beside the workspace (benchmarks/route_predictions.py)")
    args = parser.parse_args()
    if not CELEBA.is_dir():
        raise SystemExit(f"needs the shared data beside the repository: {CELEBA} is missing")
    repo = workspace(args.workspace)
    for name in args.only or EXPERIMENTS:
        figures = run_experiment(repo, name, EXPERIMENTS[name], args.targets)
        record("real_experiments", name, figures | {"overrides": EXPERIMENTS[name]})
        print(json.dumps(figures), flush=True)
        if args.save_predictions:
            route_predictions.save(repo, route_predictions.folder_for(repo, name))
    run(["python", "-m", "facetl", "report"], repo)
    print((repo / "reports/comparison.md").read_text())


# --- the docs' tables of the gender routes ---------------------------------------------------

COMMAND = "PYTHONPATH=. python benchmarks/real_experiments.py WORKSPACE --only"
# The gender routes with a row in the README's headline and docs/routes.md, in order: the
# names of EXPERIMENTS without their `-seedN`. A new route is one more name here once its runs
# are in the results file; its label comes from its settings.
ROUTES = ("route-default", "route-finetune-cnn-all-layers", "route-face", "route-face-finetune")


def seeds_cell(runs: list[dict[str, Any]], key: str) -> str:
    """One run: its accuracy and Wilson interval; several seeds: each, then mean ± sd."""
    metrics = [figures[key] for figures in runs if figures[key].get("accuracy") is not None]
    if not metrics:
        return "—"
    if len(metrics) == 1:
        return percent(metrics[0]["accuracy"]) + interval(metrics[0].get("accuracy_ci95"))
    values = [m["accuracy"] for m in metrics]
    return (", ".join(percent(v) for v in values) + f": **{mean_sd(values)}** "
            f"({len(values)} seeds)")


def route_label(params: dict[str, Any]) -> str:
    """A gender route in words, from the params it ran with."""
    backbone = lookup(params, "backbone")
    if lookup(params, "finetune.gender.enabled"):
        unfreeze = lookup(params, "finetune.gender.unfreeze")
        trained = ("fine-tuned (every layer but BatchNorm)" if unfreeze == -1
                   else f"fine-tuned (top {unfreeze} weight layers)")
    else:
        trained = "frozen"
    weights = str(lookup(params, f"backbones.{backbone}.weights"))
    return (f"`{backbone}` ({weights_words(weights)}), {trained}, "
            f"{lookup(params, 'head.type')} head, "
            f"{'faces aligned' if lookup(params, 'faces.align') else 'whole photos'} at "
            f"{lookup(params, 'prepare.gender.input_size')} px")


def run_settings(figures: dict[str, Any]) -> dict[str, Any]:
    """The params a run used: recorded with it (`settings`), or rebuilt from the overrides it
    recorded and this benchmark's fixed settings."""
    return figures.get("settings") or settings(figures["overrides"])


def grouped_routes(results: Results) -> dict[str, tuple[str, list[tuple[str, dict]]]]:
    """route -> (its label, its runs), in ROUTES' order; a route whose seeds ran with other
    settings but the seed is an error, not a row that mixes them."""
    entries = results("real_experiments")
    runs: dict[str, list[tuple[str, dict]]] = {}
    for name in sorted(entries):
        runs.setdefault(re.sub(r"-seed\d+$", "", name), []).append((name, entries[name]))
    found = {}
    for route in ROUTES:
        named = runs.get(route)
        if not named:
            continue
        labels = {route_label(run_settings(entry["figures"])) for _, entry in named}
        if len(labels) > 1:
            raise ValueError(f"{route}: runs with different settings: {sorted(labels)}")
        found[route] = (labels.pop(), named)
    return found


def routes_table(results: Results) -> str:
    """docs/routes.md's table: each route's accuracy on both test sets, seed by seed."""
    grouped = grouped_routes(results)
    if not grouped:
        return f"{NOT_MEASURED}: run `{COMMAND} NAME ...`.\n"
    lines = ["| route | CelebA test (grouped by person) | repeats: grouped splits | "
             "gender_web (never trained on) | minutes per run | experiments |",
             "|---|---|---|---|---|---|"]
    for label, named in grouped.values():
        runs = [entry["figures"] for _, entry in named]
        repeats = [f["repeats"] for f in runs if f.get("repeats", {}).get("repeats", 1) > 1]
        repeat_cell = "; ".join(f"{mean_sd(r['accuracy_values'])} ({r['repeats']} splits)"
                                for r in repeats) or "—"
        minutes = sorted(round(f["seconds"] / 60, 1) for f in runs)
        lines.append(f"| {label} | {seeds_cell(runs, 'gender')} | {repeat_cell} | "
                     f"{seeds_cell(runs, 'gender_ood')} | "
                     f"{', '.join(str(m) for m in minutes)} | "
                     f"{', '.join(f'`{name}`' for name, _ in named)} |")
    every = [entry for _, named in grouped.values() for _, entry in named]
    return ("\n".join(lines) + "\n\nIntervals: Wilson 95%. Measured with "
            f"`{COMMAND} NAME ...`: {provenance_line(every)}.\n")


def headline_table(results: Results) -> str:
    """The README's summary: what `dvc repro` runs, then each measured route's accuracy and
    calibration, seeds averaged."""
    default = route_label(load_params(REPO / "params.yaml"))
    lines = ["| route | CelebA test | gender_web | gender_web ECE |", "|---|---|---|---|",
             f"| `dvc repro`: {default}, the chapter's CSV of photo URLs | not measured here "
             "(it downloads the photos and the weights) | — | — |"]
    grouped = grouped_routes(results)
    for label, named in grouped.values():
        runs = [entry["figures"] for _, entry in named]
        eces = [f["gender_ood"]["ece"] for f in runs if f["gender_ood"].get("ece")]
        lines.append(f"| {label} | {seeds_cell(runs, 'gender')} | "
                     f"{seeds_cell(runs, 'gender_ood')} | "
                     f"{mean_sd(eces) + '%' if eces else '—'} |")
    if not grouped:
        return "\n".join(lines) + f"\n\n{NOT_MEASURED}: no route run is recorded.\n"
    every = [entry for _, named in grouped.values() for _, entry in named]
    sources = sorted({Path(run_settings(entry["figures"])["data"]["gender"]["source"]).parent.name
                      for entry in every})
    return ("\n".join(lines) + f"\n\nThe measured rows: trained and tested on "
            f"{', '.join(sources)} (`data.gender.source`), weights from local files. "
            f"{provenance_line(every)}.\n")


def route_groups_table(results: Results) -> str:
    """docs/experiments/routes.md's table: accuracy per front-end group, of each route's
    first experiment."""
    grouped = grouped_routes(results)
    if not grouped:
        return f"{NOT_MEASURED}: run `{COMMAND} NAME ...`.\n"
    lines = ["| route (first experiment) | CelebA test, per front-end group | "
             "gender_web, per front-end group |", "|---|---|---|"]
    for label, named in grouped.values():
        name, entry = named[0]
        figures = entry["figures"]
        lines.append(f"| {label} (`{name}`) | {groups_cell(figures['gender'])} | "
                     f"{groups_cell(figures['gender_ood'])} |")
    return "\n".join(lines) + ("\n\nGroups: `found` (HOG), `fallback` (padded HOG or the CNN "
                               "detector), `none` (the centred square).\n")


def coverage_cell(metrics: dict[str, Any]) -> str:
    at = metrics.get("accuracy_at_coverage") or {}
    return " / ".join(percent(at.get(share)) for share in ("0.95", "0.90")) if at else "—"


def route_calibration_table(results: Results) -> str:
    """docs/experiments/calibration.md's table: every route run's ECE, Brier score and
    accuracy at coverage."""
    grouped = grouped_routes(results)
    if not grouped:
        return f"{NOT_MEASURED}: run `{COMMAND} NAME ...`.\n"
    lines = ["| route | experiment | CelebA ECE [95% CI] | CelebA Brier | CelebA accuracy at "
             "95% / 90% coverage | gender_web ECE [95% CI] | gender_web Brier | gender_web "
             "accuracy at 95% / 90% coverage |", "|---|---|---|---|---|---|---|---|"]
    for label, named in grouped.values():
        for name, entry in named:
            gender, web = entry["figures"]["gender"], entry["figures"]["gender_ood"]
            brier = [f"{m['brier']:.4f}" if m.get("brier") is not None else "—"
                     for m in (gender, web)]
            lines.append(f"| {label} | `{name}` | {calibration_cell(gender)} | "
                         f"{brier[0]} | {coverage_cell(gender)} | {calibration_cell(web)} | "
                         f"{brier[1]} | {coverage_cell(web)} |")
    return "\n".join(lines) + ("\n\nECE: 10 bins of the predicted class's probability over "
                               "[0.5, 1]; its interval: 1000 bootstrap resamples of the "
                               "photos (ECE is biased upwards on a resample, so the point "
                               "sits low in it). A dash: the run predates calibration "
                               "metrics.\n")


if __name__ == "__main__":
    main()
