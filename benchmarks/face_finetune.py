"""The face network fine-tuned against the same route frozen, paired photo by photo, per seed.

Reads the per-photo predictions benchmarks/real_experiments.py saved (`--save-predictions`) for
`route-face-seedS` (dlib_face frozen, linear head) and `route-face-finetune-seedS` (the same,
fine-tuned end to end): the same seed, so the same split and the same test photos. For CelebA's
test split and gender_web: each route's accuracy with its Wilson interval and ECE, the photos
only one of them gets right, and the exact McNemar p of that difference.

    PYTHONPATH=. python benchmarks/face_finetune.py ROUTE_PREDICTIONS_FOLDER --seeds 42 1 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.results import add_results_dir, record
from benchmarks.route_predictions import calibration_figures, load
from benchmarks.tables_format import NOT_MEASURED, Results, interval, percent, provenance_line
from facetl.core.metrics import discordant_counts, mcnemar_exact, wilson_interval

ROUTES = {"frozen": "route-face-seed{seed}", "finetuned": "route-face-finetune-seed{seed}"}
PARTS = {"celeba_test": "test", "gender_web": "web"}


def compare(frozen, tuned) -> dict:
    """Two routes' predictions of the same photos, joined by photo."""
    joined = frozen.merge(tuned, on=["source", "label"], suffixes=("_frozen", "_tuned"))
    figures = {"n": len(joined)}
    correct = {}
    for name, suffix in (("frozen", "_frozen"), ("finetuned", "_tuned")):
        p = joined[f"p_positive{suffix}"].to_numpy()
        correct[name] = (p >= 0.5) == (joined["label"].to_numpy() == 1)
        figures[name] = calibration_figures(joined["label"], p) | {
            "accuracy_ci95": wilson_interval(int(correct[name].sum()), len(joined))}
    only_frozen, only_tuned = discordant_counts(correct["frozen"], correct["finetuned"])
    lost = joined[correct["frozen"] & ~correct["finetuned"]]
    gained = joined[~correct["frozen"] & correct["finetuned"]]
    return figures | {"only_frozen_right": only_frozen, "only_finetuned_right": only_tuned,
                      "mcnemar_p": mcnemar_exact(only_frozen, only_tuned),
                      # the front end's verdict on the photos fine-tuning lost and gained
                      "lost_by_face": lost["face_tuned"].value_counts().to_dict(),
                      "gained_by_face": gained["face_tuned"].value_counts().to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="where real_experiments saved predictions")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    add_results_dir(parser)
    args = parser.parse_args()
    for seed in args.seeds:
        frozen, tuned = (load(args.folder / name.format(seed=seed)) for name in ROUTES.values())
        figures = {part: compare(frozen[saved], tuned[saved]) for part, saved in PARTS.items()}
        record("face_finetune", f"seed{seed}", figures | {"seed": seed}, args.results_dir)
        print(seed, {part: (round(f["frozen"]["accuracy"], 4), round(
            f["finetuned"]["accuracy"], 4), f["mcnemar_p"]) for part, f in figures.items()},
            flush=True)


COMMAND = "PYTHONPATH=. python benchmarks/face_finetune.py PREDICTIONS --seeds 42 1 2"


def table(results: Results) -> str:
    """docs/experiments/face-network.md's table: the face network fine-tuned against the same
    route frozen, seed by seed."""
    entries = results("face_finetune")
    if not entries:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    runs = results("real_experiments")
    lines = ["| seed | photos | frozen: accuracy [95% CI], ECE | fine-tuned: accuracy "
             "[95% CI], ECE | only frozen right | only fine-tuned right | McNemar p | "
             "finetune stage, s |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted(entries, key=lambda n: entries[n]["figures"]["seed"]):
        f = entries[name]["figures"]
        run = runs.get(ROUTES["finetuned"].format(seed=f["seed"]), {}).get("figures", {})
        stage = run.get("stage_seconds", {}).get("facetl.gender.finetune")
        for part, label in (("celeba_test", "CelebA test"), ("gender_web", "gender_web")):
            row = f[part]
            cells = [f"{percent(row[r]['accuracy'])}{interval(row[r]['accuracy_ci95'])}, "
                     f"{percent(row[r]['ece'])}" for r in ("frozen", "finetuned")]
            lines.append(f"| {f['seed']} | {label}: {row['n']} | {cells[0]} | {cells[1]} | "
                         f"{row['only_frozen_right']} | {row['only_finetuned_right']} | "
                         f"{row['mcnemar_p']:.2g} | {'—' if stage is None else round(stage)} |")
    return ("\n".join(lines) + "\n\nEach pair: the same seed, so the same split and the same "
            "photos. The finetune stage's seconds: its whole run (epochs until early stopping, "
            "validation, calibration) on the machine of the route runs, which other work "
            f"shared. Measured with `{COMMAND}` on: "
            f"{provenance_line(list(entries.values()))}.\n")


if __name__ == "__main__":
    main()
