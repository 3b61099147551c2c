"""The gender task's columns in `facetl report`: which backbone a run trained, its accuracy
with an interval, its repeated splits, an exact McNemar test against the best run on the same
photos, its accuracy out of distribution and the time its features took; the scratch CNNs as
rows of their own, and every run's interval drawn in accuracy.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetl.core.comparison import Column, Comparison, Run, plain, shown
from facetl.core.params import find

if TYPE_CHECKING:
    import pandas as pd

METRICS = {"gender": "metrics/gender.json", "features": "metrics/features_gender.json",
           "repeats": "metrics/gender_repeats.json", "ood": "metrics/gender_ood.json"}
TABLES = {"predictions": "plots/gender/predictions.csv"}  # per photo: `correct`, `source`
NOTES = ("Accuracy with its 95% Wilson interval on the test split; McNemar: exact two-sided "
         "p-value of the best run against each other one on the same test photos (in "
         "brackets: photos only the best got right vs only the other). A p-value above "
         "0.05 means the data cannot tell the two apart.",
         "Out of distribution: the same model on photos from elsewhere (ood.gender), never "
         "used for training or selection.",
         "Repeated splits: the frozen head retrained on K person-grouped splits. For a "
         "fine-tuned run they are the frozen head's figures (marked so), not the "
         "fine-tuned model's.")


def label(run: Run) -> str:
    """`backbone (weights)`, or the run's name where it names no backbone."""
    backbone = run.metrics.get("gender", {}).get("backbone") or run.params.get("backbone")
    return f"{backbone} ({weights_tag(run.params, backbone)})" if backbone else run.name


def weights_tag(params: dict, backbone: str) -> str:
    """`imagenet`, `none`, or a weights file's name without its folder."""
    weights = find(params, f"backbones.{backbone}.weights")
    weights = "?" if weights is None else str(weights)
    return Path(weights).name.split(".")[0] if "/" in weights or "." in weights else weights


def paired_test(best: Run, other: Run) -> str:
    """Exact McNemar p-value on the photos both runs were tested on, if they are the same."""
    from facetl.core.metrics import discordant_counts, mcnemar_exact  # here: SciPy loads late

    best_photos, other_photos = best.tables.get("predictions"), other.tables.get("predictions")
    if best_photos is None or other_photos is None:
        return "n/a (no per-image predictions)"
    # The source photo, not the stored file: aligned crops of one photo have other names.
    key = "source" if {"source"} <= set(best_photos) & set(other_photos) else "file"
    a = best_photos.set_index(key)["correct"]
    b = other_photos.set_index(key)["correct"]
    if set(a.index) != set(b.index):
        return "n/a (different test photos)"
    only_best, only_other = discordant_counts(a.to_numpy(), b.loc[a.index].to_numpy())
    return f"{mcnemar_exact(only_best, only_other):.3g} ({only_best} vs {only_other})"


def own_repeats(repeats: dict, gender: dict) -> dict:
    """The run's repeated splits, or nothing when they score another model than its own.

    `dvc exp run STAGE` commits files left by earlier runs too. Repeats always score frozen
    heads: with fine-tuning off, split 0 is the very model `gender` scored; with it on, they
    are labelled as the frozen head's figures, never shown as the fine-tuned model's.
    """
    if not repeats or repeats.get("backbone", gender.get("backbone")) != gender.get("backbone"):
        return {}
    if not gender.get("finetuned") and repeats["accuracy_values"][0] != gender.get("accuracy"):
        return {}
    return repeats


def rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Each run's fields; McNemar pairs each with the most accurate run."""
    best = max((run for run in runs if "gender" in run.metrics),
               key=lambda run: run.metrics["gender"]["accuracy"], default=None)
    found = []
    for run in runs:
        g, f, ood = (run.metrics.get(key, {}) for key in ("gender", "features", "ood"))
        rep = own_repeats(run.metrics.get("repeats", {}), g)
        found.append({
            "model": label(run), "input": find(run.params, "prepare.gender.input_size"),
            "accuracy": g.get("accuracy"), "ci95": g.get("accuracy_ci95"), "auc": g.get("auc"),
            "n_test": g.get("n_test"),
            "repeats": (("frozen head: " if g.get("finetuned") else "")
                        + f"{rep['accuracy_mean']:.3f} ± {rep['accuracy_std']:.3f} "
                        f"(K={rep['repeats']})") if rep else "",
            "mcnemar_vs_best": "best" if run is best else (paired_test(best, run) if best and g
                                                           else ""),
            "ood": (f"{ood['accuracy']:.3f} [{ood['accuracy_ci95'][0]:.3f}, "
                    f"{ood['accuracy_ci95'][1]:.3f}] (n={ood['n_test']})") if ood else "",
            "features_s": f.get("seconds"), "features_img_s": f.get("images_per_s"),
        })
    return found


def scratch_rows(root: Path) -> list[dict[str, Any]]:
    """The workspace's scratch CNNs, a row each."""
    found = []
    for file in sorted((root / "metrics").glob("scratch_*.json")):
        metrics = json.loads(file.read_text())
        found.append({"run": "workspace", "model": f"scratch CNN ({file.stem[8:]})",
                      "accuracy": metrics.get("accuracy"), "ci95": metrics.get("accuracy_ci95"),
                      "auc": metrics.get("auc"), "n_test": metrics.get("n_test")})
    return found


def accuracy_text(row: dict[str, Any]) -> str:
    """Accuracy [95% CI]; the interval computed where a run did not record it."""
    from facetl.core.metrics import wilson_interval  # here: scikit-learn loads late

    ci = row["ci95"]
    if not ci and row["accuracy"] is not None and row["n_test"]:
        ci = wilson_interval(round(row["accuracy"] * row["n_test"]), row["n_test"])
    return f"{row['accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def speed_text(row: dict[str, Any]) -> str:
    return (f"{shown(row.get('features_s'), 1)} ({shown(row.get('features_img_s'), 1)})"
            if row.get("features_s") else "")


def accuracy_plot(table: pd.DataFrame, folder: Path) -> None:
    """Dot-and-interval plot: overlapping intervals are the chapter's '89 vs 92%' in a picture."""
    from facetl.core.plots import plt, save_figure

    rows = table.dropna(subset=["accuracy"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for i, row in rows.iterrows():
        low, high = row["ci95"] or (row["accuracy"], row["accuracy"])
        ax.errorbar(row["accuracy"], i, xerr=[[row["accuracy"] - low], [high - row["accuracy"]]],
                    fmt="o", capsize=4)
    ax.set_yticks(range(len(rows)), [f"{r['model']} [{r['run']}]" for _, r in rows.iterrows()])
    ax.set(xlabel="test accuracy (95% Wilson interval)", title="Gender accuracy per run")
    ax.invert_yaxis()
    save_figure(fig, folder / "accuracy.png")


COMPARISON = Comparison(
    metrics=METRICS, tables=TABLES, rows=rows, notes=NOTES, more_rows=scratch_rows,
    draw=accuracy_plot,
    columns={"model": (plain("model", "model"), plain("input", "input")),
             "score": (Column("accuracy [95% CI]", ("accuracy", "ci95"), accuracy_text),
                       plain("AUC", "auc"), plain("n", "n_test"),
                       plain("repeated splits (mean ± sd)", "repeats"),
                       plain("McNemar vs best", "mcnemar_vs_best"),
                       plain("out of distribution [95% CI]", "ood")),
             "cost": (Column("features s (img/s)", ("features_s", "features_img_s"),
                             speed_text),)})
