"""The two strongest gender routes combined: does a learned combination of the dlib face
descriptor route (`route-best`) and the fine-tuned MobileNetV2 route beat the best single route
on the photos from elsewhere, without a significant loss on CelebA?

The two routes fail on different photos, and a plain average of their log-odds gains almost
nothing, so the combinations measured are learned on the validation people (carved from the
train split by person with the same fraction and seed in both routes: the same people, whom
neither route trained on):
- `mean logit`: the plain average of the two calibrated logits (the reference);
- `stacked`: a logistic regression on the two logits;
- `stacked by face`: the same with the front-end group (face found or not) as an interaction,
  a weighting per group.
Each is scored on the seed's CelebA test split and on all of gender_web, and paired with the
best route by exact McNemar (the report's test). For each seed both routes run as DVC
experiments (benchmarks/real_experiments.py, recorded there too) and their per-photo
predictions are saved beside the workspace (benchmarks/route_predictions.py).

    PYTHONPATH=.:src python benchmarks/combined_route.py WORKSPACE [--seeds 42 1 2] [--reuse]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from benchmarks import route_predictions
from benchmarks.real_experiments import EXPERIMENTS, run_experiment, workspace
from benchmarks.results import add_results_dir, load, record
from benchmarks.tables_format import (
    NOT_MEASURED,
    Results,
    groups_cell,
    percent,
    provenance_line,
)
from facetl.core.metrics import binary_report, by_group_report, discordant_counts, mcnemar_exact
from facetl.models.calibration import logit, sigmoid

BEST, FINETUNED = "best", "fine-tuned"
SIGNIFICANT = 0.05


def route_names(seed: int) -> dict[str, str]:
    """The real_experiments names of the two routes at this seed."""
    return {BEST: "route-best" if seed == 42 else f"route-best-seed{seed}",
            FINETUNED: f"route-finetune-cnn-all-layers-seed{seed}"}


def joined(parts: dict[str, dict[str, pd.DataFrame]], part: str) -> pd.DataFrame:
    """One row per photo with both routes' logits (photos both routes scored)."""
    best = parts[BEST][part].rename(columns={"p_positive": "p_best"})
    other = parts[FINETUNED][part][["source", "p_positive"]].rename(
        columns={"p_positive": "p_finetuned"})
    frame = best.merge(other, on="source", validate="one_to_one")
    return frame.assign(z_best=logit(frame["p_best"]), z_finetuned=logit(frame["p_finetuned"]),
                        no_face=(frame["face"] != "found").astype(float))


def inputs(frame: pd.DataFrame, by_face: bool) -> np.ndarray:
    z = frame[["z_best", "z_finetuned"]].to_numpy()
    if not by_face:
        return z
    group = frame[["no_face"]].to_numpy()
    return np.hstack([z, z * group, group])


def combinations(validation: pd.DataFrame) -> dict[str, callable]:
    """Each combination as a function of a joined frame to p(positive), fitted on validation."""
    fitted = {}
    for name, by_face in (("stacked", False), ("stacked by face", True)):
        model = LogisticRegression().fit(inputs(validation, by_face), validation["label"])
        fitted[name] = (lambda frame, m=model, g=by_face: m.predict_proba(inputs(frame, g))[:, 1])
    return {BEST: lambda frame: frame["p_best"].to_numpy(),
            FINETUNED: lambda frame: frame["p_finetuned"].to_numpy(),
            "mean logit": lambda frame: sigmoid((frame["z_best"] + frame["z_finetuned"]) / 2),
            **fitted}


def scores(frame: pd.DataFrame, p_positive: np.ndarray, p_best: np.ndarray) -> dict:
    labels = frame["label"].to_numpy()
    report = binary_report(labels, p_positive)
    correct, correct_best = (p_positive >= 0.5) == labels, (p_best >= 0.5) == labels
    only_this, only_best = discordant_counts(correct, correct_best)
    return {key: report[key] for key in ("accuracy", "accuracy_ci95", "ece", "ece_ci95",
                                         "brier", "accuracy_at_coverage", "n_test")} | {
        "errors": int((~correct).sum()),
        "vs_best": {"only_this_right": only_this, "only_best_right": only_best,
                    "p": mcnemar_exact(only_this, only_best)},
        "by_face": by_group_report(labels, p_positive, frame["face"].to_numpy())}


def compare(parts: dict[str, dict[str, pd.DataFrame]]) -> dict:
    validation = joined(parts, "validation")
    ways = combinations(validation)
    figures = {"n_validation": len(validation)}
    for part in ("test", "web"):
        frame = joined(parts, part)
        p_best = ways[BEST](frame)
        figures[part] = {name: scores(frame, way(frame), p_best) for name, way in ways.items()}
    return figures


def verdict(per_seed: dict[str, dict]) -> dict:
    """Kept only if a combination beats the best route on gender_web (McNemar) at every seed
    measured, without a significant loss on CelebA at any."""
    combined = [name for name in next(iter(per_seed.values()))["web"] if name not in (BEST,
                                                                                   FINETUNED)]
    rows = {}
    for name in combined:
        web = [seed["web"][name]["vs_best"] for seed in per_seed.values()]
        celeba = [seed["test"][name]["vs_best"] for seed in per_seed.values()]
        wins = all(v["p"] < SIGNIFICANT and v["only_this_right"] > v["only_best_right"]
                   for v in web)
        loses = any(v["p"] < SIGNIFICANT and v["only_this_right"] < v["only_best_right"]
                    for v in celeba)
        rows[name] = {"beats_best_on_web": wins, "significant_loss_on_celeba": loses,
                      "keep": wins and not loses}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--reuse", action="store_true",
                        help="use a route's saved predictions instead of running it again")
    add_results_dir(parser)
    args = parser.parse_args()
    repo = workspace(args.workspace)
    per_seed = {}
    for seed in args.seeds:
        parts = {}
        for route, name in route_names(seed).items():
            folder = route_predictions.folder_for(repo, name)
            if not (args.reuse and (folder / "web.csv").is_file()):
                figures = run_experiment(repo, name, EXPERIMENTS[name], [])
                record("real_experiments", name, figures | {"overrides": EXPERIMENTS[name]},
                       args.results_dir)
                route_predictions.save(repo, folder)
            parts[route] = route_predictions.load(folder)
        per_seed[f"seed{seed}"] = compare(parts)
        record("combined_route", f"seed{seed}", per_seed[f"seed{seed}"], args.results_dir)
        print(f"seed {seed}: " + ", ".join(
            f"{name} {row['accuracy']:.4f}/{per_seed[f'seed{seed}']['web'][name]['accuracy']:.4f}"
            for name, row in per_seed[f"seed{seed}"]["test"].items()), flush=True)
    measured = {key: entry["figures"] for key, entry in load("combined_route",
                                                             args.results_dir).items()
                if key.startswith("seed")}
    record("combined_route", "verdict", {"seeds": sorted(measured),
                                         "combinations": verdict(measured)}, args.results_dir)


COMMAND = "PYTHONPATH=.:src python benchmarks/combined_route.py WORKSPACE --seeds S"


def paired_cell(row: dict[str, Any]) -> str:
    """Accuracy, errors, and the paired test against the best route."""
    versus = row["vs_best"]
    return (f"{percent(row['accuracy'])} ({row['errors']} wrong; {versus['only_this_right']} / "
            f"{versus['only_best_right']}, p {versus['p']:.2g})")


def table(results: Results) -> str:
    """docs/experiments/combined-route.md's table: each way of combining, seed by seed, and
    the verdict."""
    entries = results("combined_route")
    seeds = sorted(name for name in entries if name.startswith("seed"))
    if not seeds:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    lines = ["| seed | way | CelebA test | gender_web | gender_web ECE | gender_web, "
             "per front-end group |", "|---|---|---|---|---|---|"]
    for seed in seeds:
        figures = entries[seed]["figures"]
        for way, web in figures["web"].items():
            lines.append(f"| {seed.removeprefix('seed')} | {way} | "
                         f"{paired_cell(figures['test'][way])} | {paired_cell(web)} | "
                         f"{percent(web['ece'])} | {groups_cell(web)} |")
    judged = entries.get("verdict", {}).get("figures", {}).get("combinations", {})
    kept = [way for way, row in judged.items() if row["keep"]]
    text = ("\n".join(lines) + "\n\nEach cell: accuracy (errors; photos only this way got "
            "right / only the best route got right, exact McNemar p). Fitted on "
            f"{', '.join(str(entries[s]['figures']['n_validation']) for s in seeds)} validation "
            "photos (per seed). ")
    text += (f"Kept: {', '.join(kept)}." if kept else
             "Verdict: no combination beats the best route on gender_web at every seed "
             "measured; none is kept as a route.")
    every = list(entries.values())
    return text + f"\n\nMeasured with `{COMMAND}` on: {provenance_line(every)}.\n"


if __name__ == "__main__":
    main()
