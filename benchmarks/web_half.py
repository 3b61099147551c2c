"""Photos the training data barely has: a route trained on CelebA plus a fixed half of
gender_web, checked on the other half (never trained or tuned on), against the same route
trained on CelebA alone and scored on that same half, paired by exact McNemar, per front-end
group; and on CelebA's test photos (the two runs split CelebA differently: unpaired, with
intervals).

The halves: gender_web's rows in md5 order, every other one per class, so each half keeps the
class balance. gender_web has no person ids, so one person can be in both halves: that would
flatter the half-trained route, and the docs say so. The CelebA-only run is
`combined_route.py`'s route at the same seed: its saved predictions are reused.

    PYTHONPATH=.:src python benchmarks/web_half.py WORKSPACE [--seed 1] [--route best]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmarks import route_predictions
from benchmarks.combined_route import route_names
from benchmarks.real_experiments import (
    BASELINE,
    EXPERIMENTS,
    TARGETS,
    route_label,
    run_experiment,
    run_settings,
    workspace,
)
from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import CELEBA, GENDER_WEB
from benchmarks.tables_format import (
    NOT_MEASURED,
    Results,
    groups_cell,
    interval,
    percent,
    provenance_line,
)
from benchmarks.workspace import set_params
from facetl.core.metrics import binary_report, by_group_report, discordant_counts, mcnemar_exact

FOLDER = Path("web_half")  # in the workspace: the two runs' sources (absolute photo paths)
SOURCES = ("data.gender.source", "ood.gender.source")


def halves(labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train half, held-out half) of gender_web's rows: fixed by the photos' md5."""
    ordered = labels.sort_values("md5", kind="stable")
    first = ordered.groupby("gender").cumcount() % 2 == 0
    return ordered[first], ordered[~first]


def write_sources(repo: Path) -> dict[str, str]:
    """The training CSV (CelebA + the train half; each web photo its own person) and the
    held-out CSV, in the workspace; the settings that point the run at them."""
    celeba = pd.read_csv(CELEBA / "labels.csv", dtype=str)
    train_half, held_out = halves(pd.read_csv(GENDER_WEB / "labels.csv", dtype=str))
    web_photo = str(GENDER_WEB / "images") + "/"
    training = pd.concat([
        pd.DataFrame({"filename": str(CELEBA / "images") + "/" + celeba["filename"],
                      "gender": celeba["gender"], "identity": celeba["identity"]}),
        pd.DataFrame({"filename": web_photo + train_half["filename"],
                      "gender": train_half["gender"], "identity": "web-" + train_half["md5"]})])
    (repo / FOLDER).mkdir(exist_ok=True)
    training.to_csv(repo / FOLDER / "train.csv", index=False)
    held_out.assign(filename=web_photo + held_out["filename"])[["filename", "gender"]].to_csv(
        repo / FOLDER / "held_out.csv", index=False)
    return dict(zip(SOURCES, (str(FOLDER / "train.csv"), str(FOLDER / "held_out.csv")),
                    strict=True))


def base_name(route: str, seed: int) -> str:
    """The real_experiments name of the CelebA-only run this route is compared with."""
    return f"route-default-seed{seed}" if route == "default" else route_names(seed)[route]


def celeba_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["source"].str.startswith(str(CELEBA))]


def report(frame: pd.DataFrame) -> dict:
    labels, p_positive = frame["label"].to_numpy(), frame["p_positive"].to_numpy()
    return {key: value for key, value in binary_report(labels, p_positive).items()
            if key in ("accuracy", "accuracy_ci95", "ece", "ece_ci95", "n_test")} | {
        "by_face": by_group_report(labels, p_positive, frame["face"].to_numpy())}


def paired(with_half: pd.DataFrame, celeba_only: pd.DataFrame) -> dict:
    both = with_half.merge(celeba_only, on="file", suffixes=("", "_celeba_only"),
                           validate="one_to_one")
    labels = both["label"].to_numpy()
    correct = (both["p_positive"].to_numpy() >= 0.5) == labels
    correct_before = (both["p_positive_celeba_only"].to_numpy() >= 0.5) == labels
    only_new, only_old = discordant_counts(correct, correct_before)
    return {"n": len(both), "only_with_half_right": only_new, "only_celeba_only_right": only_old,
            "p": mcnemar_exact(only_new, only_old)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--route", choices=["best", "fine-tuned", "default"], default="best")
    add_results_dir(parser)
    args = parser.parse_args()
    repo = workspace(args.workspace)
    celeba_only = base_name(args.route, args.seed)
    before = route_predictions.load(route_predictions.folder_for(repo, celeba_only))
    name = f"web-half-{celeba_only.removeprefix('route-')}"
    overrides = EXPERIMENTS[celeba_only] | write_sources(repo)
    try:
        figures = run_experiment(repo, name, overrides, TARGETS["route-"])
    finally:  # `dvc exp run -S` leaves its values: the next experiment starts from CelebA again
        set_params(repo, {key: BASELINE[key] for key in SOURCES})
    record("real_experiments", name, figures | {"overrides": overrides}, args.results_dir)
    folder = route_predictions.folder_for(repo, name)
    route_predictions.save(repo, folder)
    after = route_predictions.load(folder)
    held_out = set(halves(pd.read_csv(GENDER_WEB / "labels.csv", dtype=str))[1]["filename"])
    before_held_out = before["web"][before["web"]["file"].isin(held_out)]
    record("web_half", name, {
        "route": args.route, "seed": args.seed, "celeba_only_run": celeba_only,
        "held_out": {"with_half": report(after["web"]), "celeba_only": report(before_held_out),
                     "paired": paired(after["web"], before_held_out)},
        "celeba_test": {"with_half": report(celeba_rows(after["test"])),
                        "celeba_only": report(celeba_rows(before["test"]))},
        "train_half_photos": len(halves(pd.read_csv(GENDER_WEB / "labels.csv"))[0]),
    }, args.results_dir)


COMMAND = "PYTHONPATH=.:src python benchmarks/web_half.py WORKSPACE --seed S --route R"


def table(results: Results) -> str:
    """docs/experiments/web-half.md's table: each route and seed trained on CelebA alone and
    with half of gender_web, scored on the other half."""
    entries = results("web_half")
    if not entries:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    lines = ["| route, seed | trained on | held-out half of gender_web | its ECE | "
             "per front-end group | CelebA test photos |", "|---|---|---|---|---|---|"]
    routes = results("real_experiments")
    for _, entry in sorted(entries.items()):
        f = entry["figures"]
        route = route_label(run_settings(routes[f["celeba_only_run"]]["figures"]))
        for run, label in (("celeba_only", "CelebA"),
                           ("with_half", f"CelebA + {f['train_half_photos']} gender_web")):
            held = f["held_out"][run]
            celeba = f["celeba_test"][run]
            lines.append(f"| {route}, seed {f['seed']} | {label} | "
                         f"{percent(held['accuracy'])}{interval(held['accuracy_ci95'])} | "
                         f"{percent(held['ece'])} | {groups_cell(held)} | "
                         f"{percent(celeba['accuracy'])}{interval(celeba['accuracy_ci95'])} "
                         f"(n={celeba['n_test']}) |")
        pair = f["held_out"]["paired"]
        lines.append(f"| | paired on the {pair['n']} held-out photos | right only with the "
                     f"half: {pair['only_with_half_right']}, only without: "
                     f"{pair['only_celeba_only_right']}, exact McNemar p "
                     f"{pair['p']:.2g} | | | |")
    return ("\n".join(lines) + "\n\nIntervals: Wilson 95%. The CelebA test photos differ "
            "between the two runs (adding photos moves the split): unpaired. Measured with "
            f"`{COMMAND}` on: {provenance_line(list(entries.values()))}.\n")


if __name__ == "__main__":
    main()
