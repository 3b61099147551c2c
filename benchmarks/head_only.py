"""What a head-only change costs, and whether the head's precision moves accuracy.

On the shared CelebA photos (a workspace like real_experiments.py's: the MobileNetV2 file, the
default front end and chapter head, the scratch stages shortened), in order:
1. `dvc repro`: every stage of dvc.yaml, each stage's wall time;
2. the out-of-distribution check (pipelines/gender_ood/dvc.yaml) on gender_web;
3. `train.gender.learning_rate` changed, `dvc repro` again: the stages a head-only change reruns;
4. the learning rate back, the head in the other precision (`train.gender.precision`), and both
   evaluations again: the two heads, trained with the same seed, paired by exact McNemar on the
   CelebA test split and on gender_web.
Records one entry per step in benchmarks/results/head_only.json.

    PYTHONPATH=. python benchmarks/head_only.py WORKSPACE [--learning-rate 0.0005]
        [--other-precision float32] [--timing-only] [--results-dir DIR]

Every stage runs for real (`--force`, `--no-run-cache`): a workspace used before gives the same
timings as a fresh one. `--timing-only` stops after step 3.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from benchmarks.real_experiments import BASELINE, MNV2, read_json, workspace
from benchmarks.results import add_results_dir, record
from benchmarks.tables_format import NOT_MEASURED, Results, percent, provenance_line
from benchmarks.workspace import REPO, run, set_params, stage_seconds, stages_run
from facetl.core.metrics import discordant_counts, mcnemar_exact
from facetl.core.params import load_params, lookup
from facetl.models.precision import TRAINED_BF16_WINS_WITH, resolve_precision

OOD = "pipelines/gender_ood/dvc.yaml"
SETTINGS = BASELINE | MNV2 | {"prepare.gender.input_size": 224, "repeats.splits": 1}


def repro(repo: Path, *targets: str) -> dict:
    """`dvc repro` of `targets`: which stages ran and each one's seconds (run_stage's lines),
    and the chapter head's speed as the train stage wrote it (metrics/train_gender.json)."""
    start = time.perf_counter()
    result = run(["dvc", "repro", *targets], repo)
    output = result.stdout + result.stderr
    stages = stage_seconds(output)
    return {"ran": stages_run(output), "stage_seconds": stages,
            "stages_total_seconds": round(sum(stages.values()), 1),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "train_gender_speed": read_json(repo / "metrics/train_gender.json").get("speed")}


def correct(path: Path) -> pd.Series:
    """Per photo (by file): was the prediction right? Photos that could not be read: dropped."""
    rows = pd.read_csv(path)
    if "correct" not in rows:  # gender_ood's predictions: the label and the predicted gender
        rows = rows[rows["gender"].notna()]
        rows = rows.assign(correct=rows["gender"].str.lower() == rows["label"].str.lower())
    return rows.set_index("source")["correct"]


def scores(repo: Path) -> dict:
    """Both evaluations' per-photo correctness and headline metrics, as they stand."""
    return {"test": correct(repo / "plots/gender/predictions.csv"),
            "ood": correct(repo / "plots/gender_ood/predictions.csv"),
            "metrics": {"gender": read_json(repo / "metrics/gender.json"),
                        "gender_ood": read_json(repo / "metrics/gender_ood.json")}}


def paired(first: pd.Series, second: pd.Series) -> dict:
    both = first.index.intersection(second.index)
    only_first, only_second = discordant_counts(first[both].to_numpy(), second[both].to_numpy())
    return {"photos": len(both), "accuracy": [float(first[both].mean()),
                                              float(second[both].mean())],
            "only_first_right": only_first, "only_second_right": only_second,
            "mcnemar_p": mcnemar_exact(only_first, only_second)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--learning-rate", type=float, default=0.0005)
    parser.add_argument("--other-precision", default="float32")
    parser.add_argument("--timing-only", action="store_true")
    add_results_dir(parser)
    args = parser.parse_args()
    repo = workspace(args.workspace)
    set_params(repo, SETTINGS)

    full = repro(repo, "--force")
    print(f"full run: {full['stages_total_seconds']} s in stages", flush=True)
    record("head_only", "full-run", full, args.results_dir)
    if not args.timing_only:
        repro(repo, OOD)
        auto = scores(repo)

    set_params(repo, {"train.gender.learning_rate": args.learning_rate})
    head = repro(repo, "--no-run-cache")
    share = head["stages_total_seconds"] / full["stages_total_seconds"]
    print(f"head-only run: {head['stages_total_seconds']} s in stages, {share:.1%} of the full "
          f"run", flush=True)
    record("head_only", "head-only-run", head | {
        "change": f"train.gender.learning_rate={args.learning_rate}",
        "share_of_full_run": share}, args.results_dir)
    if args.timing_only:
        return

    set_params(repo, {"train.gender.learning_rate": lookup(
        load_params(REPO / "params.yaml"), "train.gender.learning_rate"),
                      "train.gender.precision": args.other_precision})
    repro(repo, "--no-run-cache")
    repro(repo, OOD, "--no-run-cache")
    other = scores(repo)
    figures = {"first": "auto", "second": args.other_precision,
               "auto_resolved_to": resolve_precision(
                   "auto", TRAINED_BF16_WINS_WITH["chapter_head"]),
               "celeba_test": paired(auto["test"], other["test"]),
               "gender_web": paired(auto["ood"], other["ood"]),
               "ece": {"auto": [auto["metrics"][k].get("ece") for k in ("gender", "gender_ood")],
                       args.other_precision: [other["metrics"][k].get("ece")
                                              for k in ("gender", "gender_ood")]}}
    print(figures, flush=True)
    record("head_only", f"precision-auto-vs-{args.other_precision}", figures, args.results_dir)


COMMAND = "PYTHONPATH=. python benchmarks/head_only.py WORKSPACE"


def table(results: Results) -> str:
    """docs/backends-gpu.md's table: each stage's seconds in the full run and in the head-only
    rerun, then the chapter head's two precisions paired photo by photo."""
    entries = results("head_only")
    full, head = entries.get("full-run"), entries.get("head-only-run")
    if not (full and head):
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    full_s, head_s = full["figures"]["stage_seconds"], head["figures"]["stage_seconds"]
    lines = ["| stage | full run, s | head-only rerun, s |", "|---|---|---|"]
    for stage in full_s:
        rerun = f"{head_s[stage]:.0f}" if stage in head_s else "— (not rerun)"
        lines.append(f"| {stage} | {full_s[stage]:.0f} | {rerun} |")
    lines.append(f"| **total** | **{full['figures']['stages_total_seconds']:.0f}** | "
                 f"**{head['figures']['stages_total_seconds']:.0f}** "
                 f"({100 * head['figures']['share_of_full_run']:.1f}%) |")
    text = "\n".join(lines) + f"\n\nThe head-only change: `{head['figures']['change']}`.\n"
    paired = next((e["figures"] for n, e in entries.items() if n.startswith("precision-")), None)
    if paired:
        rows = []
        for split in ("celeba_test", "gender_web"):
            p = paired[split]
            rows.append(f"| {split} | {p['photos']} | {percent(p['accuracy'][0])} | "
                        f"{percent(p['accuracy'][1])} | {p['only_first_right']} / "
                        f"{p['only_second_right']} | {p['mcnemar_p']:.3g} |")
        text += ("\nThe chapter head trained in `auto` precision (here: "
                 f"{paired['auto_resolved_to']}) and in {paired['second']}, the same seed, "
                 "paired photo by photo:\n\n| photos | n | auto | "
                 f"{paired['second']} | right only with auto / only with {paired['second']} | "
                 "exact McNemar p |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    every = list(entries.values())
    return text + f"\nMeasured with `{COMMAND}` on: {provenance_line(every)}.\n"


if __name__ == "__main__":
    main()
