"""One comparison of every run: the workspace and each DVC experiment, side by side.

A run's figures are read from the files the pipeline wrote (metrics JSON, per-image
predictions, params), from disk for the workspace and from git for experiments
(`refs/exps/...`), so the report needs no DVC lock and works inside `dvc repro`.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from facetl.core.atomic import atomic_path
from facetl.core.metrics import discordant_counts, mcnemar_exact, wilson_interval
from facetl.core.schema import renamed

METRIC_FILES = {"gender": "metrics/gender.json", "keypoints": "metrics/keypoints.json",
                "features": "metrics/features_gender.json",
                "repeats": "metrics/gender_repeats.json", "ood": "metrics/gender_ood.json"}
PREDICTIONS = "plots/gender/predictions.csv"


@dataclass
class Run:
    name: str
    params: dict
    metrics: dict[str, dict]
    predictions: pd.DataFrame | None = None
    label: str = field(init=False)

    def __post_init__(self) -> None:
        backbone = self.metrics.get("gender", {}).get("backbone") or self.params.get("backbone")
        self.label = f"{backbone} ({weights_tag(self.params, backbone)})" if backbone else self.name


def read_params(text: str | None) -> dict:
    """A run's params.yaml, whatever its age: old names read as their new ones (RENAMES),
    and YAML that does not parse as a mapping reads as no params. Nothing is validated:
    the report only labels runs with a few params, and an old run may lack them."""
    try:
        params = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return {}
    return renamed(params) if isinstance(params, dict) else {}


def param(params: dict, dotted: str) -> Any:
    """The value at "a.b.c", or None where the run's params lack it or have another shape."""
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def weights_tag(params: dict, backbone: str) -> str:
    """`imagenet`, `none`, or a weights file's name without its folder."""
    weights = param(params, f"backbones.{backbone}.weights")
    weights = "?" if weights is None else str(weights)
    return Path(weights).name.split(".")[0] if "/" in weights or "." in weights else weights


def read_run(name: str, read_text) -> Run | None:
    """A run from a `read_text(path) -> str | None` reader; None if it has no metrics."""
    metrics = {key: json.loads(text) for key, path in METRIC_FILES.items()
               if (text := read_text(path))}
    if not metrics:
        return None
    predictions = read_text(PREDICTIONS)
    return Run(name, read_params(read_text("params.yaml")), metrics,
               pd.read_csv(io.StringIO(predictions)) if predictions else None)


def workspace_run(root: Path) -> Run | None:
    def read(path: str) -> str | None:
        file = root / path
        return file.read_text() if file.is_file() else None

    return read_run("workspace", read)


def experiment_commits(root: Path) -> list[tuple[str, str]]:
    """(name, commit) of every DVC experiment of the repository, from its git ref."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)",
                           "refs/exps"], cwd=root, capture_output=True, text=True)
    return [(ref.rsplit("/", 1)[-1], sha)
            for ref, sha in (line.split() for line in refs.stdout.splitlines())
            if not any(f"/{kind}/" in ref for kind in ("exec", "runs", "temp"))]  # DVC's own


def experiment_runs(root: Path) -> list[Run]:
    """Every DVC experiment of the repository, read from its commit."""
    runs = []
    for name, sha in experiment_commits(root):

        def read(path: str, sha: str = sha) -> str | None:
            shown = subprocess.run(["git", "show", f"{sha}:{path}"], cwd=root,
                                   capture_output=True, text=True)
            return shown.stdout if shown.returncode == 0 else None

        if (run := read_run(name, read)) is not None:
            runs.append(run)
    return runs


def unique_runs(runs: list[Run]) -> list[Run]:
    """Drop repeats: the workspace usually holds the last experiment's results too."""
    seen, kept = set(), []
    for run in runs:
        key = json.dumps(run.metrics, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(run)
    return kept


def scratch_rows(root: Path) -> list[dict]:
    rows = []
    for file in sorted((root / "metrics").glob("scratch_*.json")):
        metrics = json.loads(file.read_text())
        rows.append({"run": "workspace", "model": f"scratch CNN ({file.stem[8:]})",
                     "accuracy": metrics.get("accuracy"), "ci95": metrics.get("accuracy_ci95"),
                     "auc": metrics.get("auc"), "n_test": metrics.get("n_test")})
    return rows


def paired_test(best: Run, other: Run) -> str:
    """Exact McNemar p-value on the photos both runs were tested on, if they are the same."""
    if best.predictions is None or other.predictions is None:
        return "n/a (no per-image predictions)"
    # The source photo, not the stored file: aligned crops of one photo have other names.
    key = "source" if {"source"} <= set(best.predictions) & set(other.predictions) else "file"
    a = best.predictions.set_index(key)["correct"]
    b = other.predictions.set_index(key)["correct"]
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


def comparison_table(runs: list[Run], root: Path) -> pd.DataFrame:
    gender = [r for r in runs if "gender" in r.metrics]
    best = max(gender, key=lambda r: r.metrics["gender"]["accuracy"], default=None)
    rows = []
    for run in runs:
        g, k, f, rep, ood = (run.metrics.get(key, {}) for key in ("gender", "keypoints",
                                                                   "features", "repeats", "ood"))
        rep = own_repeats(rep, g)
        if k.get("backbone") and k["backbone"] != param(run.params, "keypoints.backbone"):
            k = {}  # another run's keypoint model (both recipes use keypoints.backbone)
        rows.append({
            "run": run.name, "model": run.label,
            "input": param(run.params, "prepare.gender.input_size"),
            "accuracy": g.get("accuracy"), "ci95": g.get("accuracy_ci95"), "auc": g.get("auc"),
            "n_test": g.get("n_test"),
            "repeats": (("frozen head: " if g.get("finetuned") else "")
                        + f"{rep['accuracy_mean']:.3f} ± {rep['accuracy_std']:.3f} "
                        f"(K={rep['repeats']})") if rep else "",
            "mcnemar_vs_best": "best" if run is best else (paired_test(best, run) if best and g
                                                           else ""),
            "ood": (f"{ood['accuracy']:.3f} [{ood['accuracy_ci95'][0]:.3f}, "
                    f"{ood['accuracy_ci95'][1]:.3f}] (n={ood['n_test']})") if ood else "",
            "nme": k.get("nme"), "failure_rate": k.get("failure_rate"),
            "features_s": f.get("seconds"), "features_img_s": f.get("images_per_s"),
        })
    return pd.DataFrame(rows + scratch_rows(root), dtype=object)  # keeps ints as ints


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(table: pd.DataFrame) -> str:
    lines = ["# Backbone comparison", "",
             "Accuracy with its 95% Wilson interval on the test split; McNemar: exact two-sided "
             "p-value of the best run against each other one on the same test photos (in "
             "brackets: photos only the best got right vs only the other). A p-value above "
             "0.05 means the data cannot tell the two apart.", "",
             "Out of distribution: the same model on photos from elsewhere (ood.gender), never "
             "used for training or selection.", "",
             "Repeated splits: the frozen head retrained on K person-grouped splits. For a "
             "fine-tuned run they are the frozen head's figures (marked so), not the "
             "fine-tuned model's.", "",
             "| run | model | input | accuracy [95% CI] | AUC | n | repeated splits (mean ± sd) | "
             "McNemar vs best | out of distribution [95% CI] | NME | failure rate | "
             "features s (img/s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.astype(object).where(table.notna(), None).to_dict("records"):
        ci = row["ci95"]
        if not ci and row["accuracy"] is not None and row["n_test"]:
            ci = wilson_interval(round(row["accuracy"] * row["n_test"]), row["n_test"])
        accuracy = f"{row['accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        speed = (f"{fmt(row.get('features_s'), 1)} ({fmt(row.get('features_img_s'), 1)})"
                 if row.get("features_s") else "")
        lines.append(f"| {row['run']} | {row['model']} | {fmt(row.get('input'))} | {accuracy} | "
                     f"{fmt(row.get('auc'))} | {fmt(row.get('n_test'))} | "
                     f"{row.get('repeats') or ''} | {row.get('mcnemar_vs_best') or ''} | "
                     f"{row.get('ood') or ''} | "
                     f"{fmt(row.get('nme'), 4)} | {fmt(row.get('failure_rate'))} | {speed} |")
    return "\n".join(lines) + "\n"


def accuracy_plot(table: pd.DataFrame, path: Path) -> None:
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
    save_figure(fig, path)


def build_report(root: Path = Path("."), out_dir: Path = Path("reports")) -> pd.DataFrame:
    """Write `comparison.md`, `comparison.csv` and `accuracy.png` under out_dir."""
    # Experiments first: where the workspace repeats one, the row keeps the experiment's name.
    runs = unique_runs(experiment_runs(root) + [r for r in [workspace_run(root)] if r])
    table = comparison_table(runs, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "comparison.md") as tmp:
        tmp.write_text(markdown(table))
    with atomic_path(out_dir / "comparison.csv") as tmp:
        table.to_csv(tmp, index=False)
    accuracy_plot(table, out_dir / "accuracy.png")
    return table
