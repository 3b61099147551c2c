"""The figures of README.md and docs/**/*.md, generated from benchmarks/results/*.json.

A page marks where a table goes with two lines, `<!-- table: NAME -->` and `<!-- end table -->`,
and a figure inside prose with `<!-- value: BENCHMARK | ENTRY | KEY.PATH | FORMAT -->` before
it and `<!-- end value -->` after it; this script rewrites what lies between. A figure is typed
nowhere by hand: it lives in one results file (with the command, machine, commit and date that
produced it), and tests/test_docs_tables.py fails when a page and its results file disagree.
The `stage_graph` block is drawn from the pipeline files the same way.

    python docs/tables.py           # rewrite the tables and values
    python docs/tables.py --check   # exit 1 and name the stale pages
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
MARKER = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.DOTALL)
VALUE = re.compile(r"(<!-- value: ([^|]+?) \| ([^|]+?) \| ([^|]+?) \| (\w+) -->)(.*?)"
                   r"(<!-- end value -->)", re.DOTALL)
COMMAND = "PYTHONPATH=. python benchmarks/real_experiments.py WORKSPACE --only"
NOT_MEASURED = "Not measured yet"  # what a table says when its results file has no entry

# The gender routes with a row in the README's headline and docs/routes.md, in order: the
# names of benchmarks/real_experiments.py's experiments without their `-seedN`. A new route is
# one more name here once its runs are in the results file; its label comes from its settings.
ROUTES = ("route-default", "route-finetune-cnn-all-layers", "route-face", "route-face-finetune")


def load(benchmark: str) -> dict[str, dict[str, Any]]:
    path = RESULTS / f"{benchmark}.json"
    return json.loads(path.read_text())["entries"] if path.is_file() else {}


def percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.2f}%"


def interval(ci: list[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def mean_sd(values: list[float]) -> str:
    spread = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.2f}{spread}"


def seeds_cell(runs: list[dict[str, Any]], key: str) -> str:
    """One run: its accuracy and Wilson interval; several seeds: each, then mean ± sd."""
    metrics = [run[key] for run in runs if run[key].get("accuracy") is not None]
    if not metrics:
        return "—"
    if len(metrics) == 1:
        return percent(metrics[0]["accuracy"]) + interval(metrics[0].get("accuracy_ci95"))
    values = [m["accuracy"] for m in metrics]
    return (", ".join(percent(v) for v in values) + f": **{mean_sd(values)}** "
            f"({len(values)} seeds)")


# --- where figures come from ---------------------------------------------------------------


@cache
def commit_time(commit: str) -> float:
    """When `commit` was made (its `+changes` suffix aside), to order a range; unknown: last."""
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%ct", commit.split("+")[0]],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return float(out.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        return float("inf")


def provenance(entries: list[dict[str, Any]]) -> str:
    """One short line for a table: the machines, the date range and the commit range."""
    sources = [entry["provenance"] for entry in entries]
    machines = sorted({source["machine"] for source in sources})
    dates = sorted({source["date"] for source in sources})
    commits = sorted({source["commit"].split("+")[0] for source in sources},
                     key=lambda c: (commit_time(c), c))
    dirty = sum(source["commit"].endswith("+changes") for source in sources)
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    code = (f"commit {commits[0]}" if len(commits) == 1
            else f"commits {commits[0]} to {commits[-1]}")
    changes = f", {dirty} of them with uncommitted changes" if dirty else ""
    runs = f"{len(sources)} run{'s' if len(sources) > 1 else ''}"
    return f"{'; '.join(machines)}; {when}; {code} ({runs}{changes})"


# --- what a run was: its label from its settings ---------------------------------------------


@cache
def experiment_settings() -> Callable[[dict], dict]:
    """benchmarks/real_experiments.py's `settings`: every param an experiment ran with."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.real_experiments import settings
    return settings


def weights_words(weights: str) -> str:
    if weights == "imagenet":
        return "ImageNet weights, downloaded by Keras"
    if weights == "none":
        return "random weights"
    if weights == "face_recognition_models":
        return "the file the face_recognition_models package installs"
    return f"local weights file `{Path(weights).name}`"


def route_label(settings: dict[str, Any]) -> str:
    """A gender route in words, from the params it ran with."""
    def get(key: str) -> Any:
        node: Any = settings
        for part in key.split("."):
            node = node[part]
        return node

    backbone = get("backbone")
    if get("finetune.gender.enabled"):
        unfreeze = get("finetune.gender.unfreeze")
        trained = ("fine-tuned (every layer but BatchNorm)" if unfreeze == -1
                   else f"fine-tuned (top {unfreeze} weight layers)")
    else:
        trained = "frozen"
    return (f"`{backbone}` ({weights_words(str(get(f'backbones.{backbone}.weights')))}), "
            f"{trained}, {get('head.type')} head, "
            f"{'faces aligned' if get('faces.align') else 'whole photos'} at "
            f"{get('prepare.gender.input_size')} px")


def run_settings(figures: dict[str, Any]) -> dict[str, Any]:
    """The params a real_experiments run used: recorded with it (`settings`), or rebuilt
    from the overrides it recorded and the benchmark's fixed settings."""
    return figures.get("settings") or experiment_settings()(figures["overrides"])


def route_runs(entries: dict[str, dict]) -> dict[str, list[tuple[str, dict]]]:
    """Experiments grouped by route (name without `-seedN`), in ROUTES' order."""
    grouped: dict[str, list[tuple[str, dict]]] = {}
    for name in sorted(entries):
        route = re.sub(r"-seed\d+$", "", name)
        if route in ROUTES:
            grouped.setdefault(route, []).append((name, entries[name]))
    return {route: grouped[route] for route in ROUTES if route in grouped}


def grouped_routes(results: Callable[[str], dict]) -> dict[str, tuple[str, list]]:
    """route -> (its label, its runs); a route whose seeds ran with other settings but the
    seed is an error, not a row that mixes them."""
    found = {}
    for route, named in route_runs(results("real_experiments")).items():
        labels = {route_label(run_settings(entry["figures"])) for _, entry in named}
        if len(labels) > 1:
            raise ValueError(f"{route}: runs with different settings: {sorted(labels)}")
        found[route] = (labels.pop(), named)
    return found


def routes_table(results: Callable[[str], dict]) -> str:
    grouped = grouped_routes(results)
    if not grouped:
        return f"{NOT_MEASURED}: run `{COMMAND} NAME ...`.\n"
    lines = ["| route | CelebA test (grouped by person) | repeats: grouped splits | "
             "gender_web (never trained on) | minutes per run | experiments |",
             "|---|---|---|---|---|---|"]
    for label, named in grouped.values():
        runs = [entry["figures"] for _, entry in named]
        repeats = [run["repeats"] for run in runs if run.get("repeats", {}).get("repeats", 1) > 1]
        repeat_cell = "; ".join(f"{mean_sd(r['accuracy_values'])} ({r['repeats']} splits)"
                                for r in repeats) or "—"
        minutes = sorted(round(run["seconds"] / 60, 1) for run in runs)
        lines.append(f"| {label} | {seeds_cell(runs, 'gender')} | {repeat_cell} | "
                     f"{seeds_cell(runs, 'gender_ood')} | "
                     f"{', '.join(str(m) for m in minutes)} | "
                     f"{', '.join(f'`{name}`' for name, _ in named)} |")
    every = [entry for _, named in grouped.values() for _, entry in named]
    return ("\n".join(lines) + "\n\nIntervals: Wilson 95%. Measured with "
            f"`{COMMAND} NAME ...`: {provenance(every)}.\n")


def project_params() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def headline_table(results: Callable[[str], dict]) -> str:
    """The README's summary: what `dvc repro` runs, then each measured route's accuracy and
    calibration, seeds averaged."""
    default = route_label(project_params())
    lines = ["| route | CelebA test | gender_web | gender_web ECE |", "|---|---|---|---|",
             f"| `dvc repro`: {default}, the chapter's CSV of photo URLs | not measured here "
             "(it downloads the photos and the weights) | — | — |"]
    grouped = grouped_routes(results)
    for label, named in grouped.values():
        runs = [entry["figures"] for _, entry in named]
        eces = [run["gender_ood"]["ece"] for run in runs if run["gender_ood"].get("ece")]
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
            f"{provenance(every)}.\n")


def groups_cell(metrics: dict[str, Any]) -> str:
    groups = metrics.get("by_face") or {}
    return "; ".join(f"{group} {percent(row['accuracy'])} (n={row['n']}"
                     + (f", ECE {percent(row['ece'])}" if row.get("ece") is not None else "")
                     + ")" for group, row in groups.items()) or "—"


def route_groups_table(results: Callable[[str], dict]) -> str:
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


KEYPOINT_COMMAND = "python benchmarks/keypoint_routes.py WORKSPACE"


def keypoint_label(settings: dict[str, Any]) -> str:
    """A keypoint route in words, from the settings it ran with."""
    chapter = settings["recipe"] == "chapter"
    recipe = settings["recipe_params"]
    if chapter:
        how = (f"whole frames at {settings['input_size']} px, frozen features, the chapter's "
               f"head ({recipe['activation']} outputs, {recipe['loss']} loss, "
               f"{recipe['epochs']} epochs)")
    else:
        how = (f"face crops at {settings['input_size']} px, {recipe['head']['type']} head, "
               f"backbone fine-tuned up to {recipe['finetune']['epochs']} epochs, "
               f"{recipe['loss']} loss, {recipe['inference']['passes']} passes from a "
               f"{recipe['inference']['detector']} box")
    return (f"{settings['recipe']} recipe: `{settings['backbone']}` "
            f"({weights_words(settings['weights'])}), {how}")


def keypoints_table(results: Callable[[str], dict]) -> str:
    entries = results("keypoint_routes")
    if not entries:
        return f"{NOT_MEASURED}: run `{KEYPOINT_COMMAND}`.\n"
    lines = ["| route | test frames | NME | failure rate (NME > 10%) | pixel error | "
             "dlib's 68-point predictor: NME / failure rate | minutes |",
             "|---|---|---|---|---|---|---|"]
    for name, entry in sorted(entries.items()):
        figures = entry["figures"]
        points = figures["metrics"]
        lines.append(f"| {keypoint_label(figures['settings'])} (`{name}`) | "
                     f"{points['n_test']} | {percent(points['nme'])} | "
                     f"{percent(points['failure_rate'])} | {points['pixel_error']:.2f} px | "
                     f"{percent(points['dlib_nme'])} / {percent(points['dlib_failure_rate'])} | "
                     f"{figures['minutes']} |")
    return ("\n".join(lines) + "\n\nNME: the mean point error over the distance between the "
            "outer eye corners, on the people held out. Measured with "
            f"`{KEYPOINT_COMMAND}`: {provenance(list(entries.values()))}.\n")


def calibration_cell(metrics: dict[str, Any]) -> str:
    if metrics.get("ece") is None:
        return "—"
    return f"{percent(metrics['ece'])}{interval(metrics.get('ece_ci95'))}"


def coverage_cell(metrics: dict[str, Any]) -> str:
    at = metrics.get("accuracy_at_coverage") or {}
    return " / ".join(percent(at.get(share)) for share in ("0.95", "0.90")) if at else "—"


def route_calibration_table(results: Callable[[str], dict]) -> str:
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


LATENCY_COMMAND = ("PYTHONPATH=. python benchmarks/latency.py --models models "
                   "--runtime keras onnx")
LATENCY_STEPS = ("decode", "detection", "alignment", "network", "total")


def latency_route(route: dict[str, Any]) -> str:
    """A measured model in words: what its latency depends on."""
    reduced = [policy for policy in route["precision"] if policy != "float32"]
    faces = "faces aligned" if route["align"] else "no face front end"
    return (f"{route['backbone']}, {route['head']} head, "
            f"{'fine-tuned' if route['finetuned'] else 'frozen'}, {route['input_size']} px, "
            f"{faces}" + (f", computes in {', '.join(reduced)}" if reduced else ""))


def latency_cell(step: dict[str, float] | None) -> str:
    return "—" if step is None else f"{step['p50_ms']:.1f} / {step['p95_ms']:.1f}"


def latency_table(results: Callable[[str], dict]) -> str:
    entries = results("latency")
    if not entries:
        return f"{NOT_MEASURED}: run `{LATENCY_COMMAND}`.\n"
    lines = ["| route | runtime | photos | decode | face detection | alignment | network | "
             "total |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted(entries):
        figures = entries[name]["figures"]
        notes = {"network": f" ({figures['network_note']})" if "network_note" in figures else ""}
        cells = [latency_cell(figures["steps"][step]) + notes.get(step, "")
                 for step in LATENCY_STEPS]
        lines.append(f"| {latency_route(figures['route'])} (`{name}`) | {figures['runtime']} | "
                     f"{figures['photos']} | {' | '.join(cells)} |")
    return ("\n".join(lines) + "\n\nMilliseconds per photo, p50 / p95, one photo at a time. "
            "A dash: the step does not run for that model. Measured with "
            f"`{LATENCY_COMMAND}` on: {provenance(list(entries.values()))}.\n")


def export_parity_table(results: Callable[[str], dict]) -> str:
    entries = results("export_parity")
    if not entries:
        return (f"{NOT_MEASURED}: run "
                "`PYTHONPATH=. python benchmarks/export_parity.py --n 300`.\n")
    lines = ["| model / format | photos | same label | largest \\|Δp\\| | 99th percentile "
             "\\|Δp\\| | within 1e-4 | file MB |", "|---|---|---|---|---|---|---|"]
    for name in sorted(entries):
        f = entries[name]["figures"]
        lines.append(f"| `{name}` | {f['photos']} | {f['same_label']} | {f['max_abs_dp']:.1e} | "
                     f"{f['p99_abs_dp']:.1e} | {'yes' if f['within_tolerance'] else 'no'} | "
                     f"{f['file_mb']:.1f} |")
    return ("\n".join(lines) + "\n\nΔp: the exported file's `p_male` minus the float32 Keras "
            "model's, on the same crops. Measured with "
            "`PYTHONPATH=. python benchmarks/export_parity.py --n 300` on: "
            f"{provenance(list(entries.values()))}.\n")


def training_speed_table(results: Callable[[str], dict]) -> str:
    """benchmarks/training_speed.py's own renderer (imported here only: it imports Keras)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.training_speed import speed_table

    return speed_table(results)


FACE_NETWORK_COMMAND = "PYTHONPATH=. python benchmarks/face_network.py WORKSPACE"


def face_network_table(results: Callable[[str], dict]) -> str:
    """dlib's face network in Keras against dlib's descriptor: parity, speed, the route."""
    entries = results("face_network")
    if not entries:
        return f"{NOT_MEASURED}: run `{FACE_NETWORK_COMMAND}`.\n"
    f = entries["celeba_and_web"]["figures"]
    lines = ["| chips | precision | photos | lowest cosine | 1st percentile | largest "
             "\\|difference\\| |", "|---|---|---|---|---|---|"]
    for key, chips, precision in (("parity_celeba_float32", "CelebA", "float32"),
                                  ("parity_celeba_bfloat16", "CelebA", "bfloat16"),
                                  ("parity_web_float32", "gender_web", "float32")):
        row = f[key]
        lines.append(f"| {chips} | {precision} | {row['n']} | {row['cosine_min']:.7f} | "
                     f"{row['cosine_p01']:.7f} | {row['max_abs_difference']:.1e} |")
    lines += ["", "| precision | photos | dlib photos/s | Keras photos/s | Keras / dlib | "
              "Keras GFLOP/s | share of the measured peak |", "|---|---|---|---|---|---|---|"]
    for row in f["speed"]:
        lines.append(f"| {row['precision']} | {row['photos']} | {row['dlib_photos_per_s']:.1f} | "
                     f"{row['keras_photos_per_s']:.1f} | {row['speedup']:.1f}x | "
                     f"{row['achieved_gflop_per_s']:.1f} | {percent(row['share_of_peak'])} |")
    lines += ["", f"| the route at seed {f['route_seed']} | photos | accuracy on dlib's "
              "descriptors | on the Keras network's | only dlib's right | only Keras' right | "
              "McNemar p |", "|---|---|---|---|---|---|---|"]
    for key, name in (("route_celeba_test", "CelebA test split"),
                      ("route_gender_web", "gender_web")):
        row = f[key]
        lines.append(f"| {name} | {row['n']} | {percent(row['accuracy_dlib'])} | "
                     f"{percent(row['accuracy_keras'])} | {row['only_dlib_right']} | "
                     f"{row['only_keras_right']} | {row['mcnemar_p']:.2g} |")
    return ("\n".join(lines) + "\n\nCosine: each chip's Keras descriptor against dlib's "
            "`compute_face_descriptor` of the same chip. Speed: both on the same chips, batch "
            "by batch in turn, in one run; the peak is a large matmul in that precision, "
            f"measured in the same run. Measured with `{FACE_NETWORK_COMMAND}` on: "
            f"{provenance(list(entries.values()))}.\n")


FACE_FINETUNE_COMMAND = "PYTHONPATH=. python benchmarks/face_finetune.py PREDICTIONS --seeds 42 1 2"


def face_finetune_table(results: Callable[[str], dict]) -> str:
    """The face network fine-tuned against the same route frozen, seed by seed."""
    entries = results("face_finetune")
    if not entries:
        return f"{NOT_MEASURED}: run `{FACE_FINETUNE_COMMAND}`.\n"
    runs = results("real_experiments")
    lines = ["| seed | photos | frozen: accuracy [95% CI], ECE | fine-tuned: accuracy "
             "[95% CI], ECE | only frozen right | only fine-tuned right | McNemar p | "
             "finetune stage, s |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted(entries, key=lambda n: entries[n]["figures"]["seed"]):
        f = entries[name]["figures"]
        run = runs.get(f"route-face-finetune-seed{f['seed']}", {}).get("figures", {})
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
            f"shared. Measured with `{FACE_FINETUNE_COMMAND}` on: "
            f"{provenance(list(entries.values()))}.\n")


PRECISION_COMMAND = "PYTHONPATH=. python benchmarks/training_precision.py"


def training_precision_table(results: Callable[[str], dict]) -> str:
    entries = results("training_precision")
    networks = sorted({name.rsplit("-", 1)[0] for name in entries if not name.startswith("peak")})
    if not networks:
        return f"{NOT_MEASURED}: run `{PRECISION_COMMAND}`.\n"
    peaks = ", ".join(f"{name.split('-', 1)[1]} {entries[name]['figures']['gflops']:.0f}"
                      for name in sorted(entries) if name.startswith("peak-"))
    lines = ["| network (batch) | precision | images/s | share of the precision's measured "
             "peak | speed vs float32 |", "|---|---|---|---|---|"]
    for network in networks:
        for name in sorted(n for n in entries if n.rsplit("-", 1)[0] == network):
            f = entries[name]["figures"]
            lines.append(f"| {network} ({f['batch']}) | {name.rsplit('-', 1)[1]} | "
                         f"{f['images_per_s']:.1f} | {100 * f['share_of_peak']:.0f}% | "
                         f"{f['speed_relative']:.2f}x |")
    return ("\n".join(lines) + "\n\nTraining steps (median over alternating rounds). Each "
            "share is against the peak measured in the same run (GFLOP/s of a 2048² matmul; "
            f"the latest: {peaks}). Measured with `{PRECISION_COMMAND}` "
            f"on: {provenance(list(entries.values()))}.\n")


HEAD_ONLY_COMMAND = "PYTHONPATH=. python benchmarks/head_only.py WORKSPACE"


def head_only_table(results: Callable[[str], dict]) -> str:
    entries = results("head_only")
    full, head = entries.get("full-run"), entries.get("head-only-run")
    if not (full and head):
        return f"{NOT_MEASURED}: run `{HEAD_ONLY_COMMAND}`.\n"
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
    return text + f"\nMeasured with `{HEAD_ONLY_COMMAND}` on: {provenance(every)}.\n"


COMBINED_COMMAND = "PYTHONPATH=.:src python benchmarks/combined_route.py WORKSPACE --seeds S"


def paired_cell(row: dict[str, Any]) -> str:
    """Accuracy, errors, and the paired test against the best route."""
    versus = row["vs_best"]
    return (f"{percent(row['accuracy'])} ({row['errors']} wrong; {versus['only_this_right']} / "
            f"{versus['only_best_right']}, p {versus['p']:.2g})")


def combined_route_table(results: Callable[[str], dict]) -> str:
    entries = results("combined_route")
    seeds = sorted(name for name in entries if name.startswith("seed"))
    if not seeds:
        return f"{NOT_MEASURED}: run `{COMBINED_COMMAND}`.\n"
    lines = ["| seed | way | CelebA test | gender_web | gender_web ECE | gender_web, "
             "per front-end group |", "|---|---|---|---|---|---|"]
    for seed in seeds:
        figures = entries[seed]["figures"]
        for way, web in figures["web"].items():
            lines.append(f"| {seed.removeprefix('seed')} | {way} | "
                         f"{paired_cell(figures['test'][way])} | {paired_cell(web)} | "
                         f"{percent(web['ece'])} | {groups_cell(web)} |")
    verdict = entries.get("verdict", {}).get("figures", {}).get("combinations", {})
    kept = [way for way, row in verdict.items() if row["keep"]]
    text = ("\n".join(lines) + "\n\nEach cell: accuracy (errors; photos only this way got "
            "right / only the best route got right, exact McNemar p). Fitted on "
            f"{', '.join(str(entries[s]['figures']['n_validation']) for s in seeds)} validation "
            "photos (per seed). ")
    text += (f"Kept: {', '.join(kept)}." if kept else
             "Verdict: no combination beats the best route on gender_web at every seed "
             "measured; none is kept as a route.")
    every = list(entries.values())
    return text + f"\n\nMeasured with `{COMBINED_COMMAND}` on: {provenance(every)}.\n"


WEB_HALF_COMMAND = (
    "PYTHONPATH=.:src python benchmarks/web_half.py WORKSPACE --seed S --route R")


def web_half_table(results: Callable[[str], dict]) -> str:
    entries = results("web_half")
    if not entries:
        return f"{NOT_MEASURED}: run `{WEB_HALF_COMMAND}`.\n"
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
        paired = f["held_out"]["paired"]
        lines.append(f"| | paired on the {paired['n']} held-out photos | right only with the "
                     f"half: {paired['only_with_half_right']}, only without: "
                     f"{paired['only_celeba_only_right']}, exact McNemar p "
                     f"{paired['p']:.2g} | | | |")
    return ("\n".join(lines) + "\n\nIntervals: Wilson 95%. The CelebA test photos differ "
            "between the two runs (adding photos moves the split): unpaired. Measured with "
            f"`{WEB_HALF_COMMAND}` on: {provenance(list(entries.values()))}.\n")


def per_route_table(results: Callable[[str], dict], benchmark: str, command: str,
                    header: list[str], rows: Callable[[str, dict], list[str]],
                    note: Callable[[dict], str]) -> str:
    """The table of a benchmark measured on saved route folders: `rows` of each folder's
    figures, then `note` (given the first entry's figures) and where it was measured."""
    entries = results(benchmark)
    if not entries:
        return f"{NOT_MEASURED}: run `{command}`.\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in sorted(entries.items()):
        lines.extend(rows(f"`{name}`", entry["figures"]))
    first = next(iter(entries.values()))["figures"]
    return ("\n".join(lines) + f"\n\n{note(first)} Measured with `{command}` on: "
            f"{provenance(list(entries.values()))}.\n")


METHODS = ("temperature", "platt", "temperature per group")


def calibration_methods_table(results: Callable[[str], dict]) -> str:
    def rows(name: str, figures: dict) -> list[str]:
        return [f"| {name} | {method} | {calibration_cell(figures[method]['test'])} | "
                f"{calibration_cell(figures[method]['web'])} | "
                f"{figures[method]['web']['brier']:.4f} |" for method in METHODS]

    return per_route_table(
        results, "calibration_methods",
        "PYTHONPATH=.:src python benchmarks/calibration_methods.py FOLDER",
        ["route (experiment)", "method", "CelebA ECE [95% CI]", "gender_web ECE [95% CI]",
         "gender_web Brier"], rows,
        lambda _: "Each method fitted on the route's validation people only.")


def temperature_span(span: list[float] | None) -> str:
    return "none" if span is None else f"{span[0]:.2f}–{span[1]:.2f}"


def temperature_transfer_table(results: Callable[[str], dict]) -> str:
    fits = ("validation", "test", "validation+test", "none")

    def rows(name: str, f: dict) -> list[str]:
        temperatures = " / ".join(f"{f['fits'][fit]['temperature']:.2f}" for fit in fits[:3])
        return [f"| {name} | {percent(f['accuracy']['test'])} / {percent(f['accuracy']['web'])} "
                f"| {temperatures} | "
                f"{' / '.join(percent(f['fits'][fit]['web']['ece']) for fit in fits)} | "
                f"{temperature_span(f['within_goal']['web'])} | "
                f"{temperature_span(f['within_goal']['test'])} |"]

    return per_route_table(
        results, "temperature_transfer",
        "PYTHONPATH=.:src python benchmarks/temperature_transfer.py FOLDER",
        ["route (experiment)", "accuracy CelebA / gender_web",
         "T fitted on: validation / test / both", "gender_web ECE at those T / uncalibrated",
         "gender_web within 2% for T in", "CelebA test within 2% for T in"], rows,
        lambda _: "T: the temperature the logit is divided by (larger: less sure). `test` and "
        "`both` are fitted on CelebA's test photos (with the validation people): a diagnosis "
        "of what more in-distribution photos could reach, never a route. The spans: the "
        "lowest and highest T on a grid 1.5% apart whose ECE is within 2%.")


def flip_average_table(results: Callable[[str], dict]) -> str:
    def rows(name: str, figures: dict) -> list[str]:
        return [f"| {name} | {way} | {f['temperature']:.2f} | "
                f"{percent(f['test']['accuracy'])} / {calibration_cell(f['test'])} | "
                f"{percent(f['web']['accuracy'])} / {calibration_cell(f['web'])} |"
                for way, f in ((way, figures[way]) for way in ("plain", "flip average"))]

    return per_route_table(
        results, "flip_average", "PYTHONPATH=.:src python benchmarks/flip_average.py FOLDER",
        ["route (experiment)", "answer", "T", "CelebA accuracy / ECE [95% CI]",
         "gender_web accuracy / ECE [95% CI]"], rows,
        lambda _: "Each way's temperature fitted on the route's validation people.")


def no_face_table(results: Callable[[str], dict]) -> str:
    def rows(name: str, f: dict) -> list[str]:
        faceless, noise = f["faceless"], f["noise_40px"]["p_positive"]
        costs = f["test_photos_as_none"]
        return [f"| {name} | {f['no_face']['model_temperature']:.2f} / "
                f"{f['no_face']['temperature']:.2f} | "
                f"{percent(faceless['before']['mean_confidence'])} → "
                f"{percent(faceless['after']['mean_confidence'])} | "
                f"{percent(faceless['before']['share_sure'])} → "
                f"{percent(faceless['after']['share_sure'])} | "
                f"{percent(noise['before']['mean_confidence'])} → "
                f"{percent(noise['after']['mean_confidence'])} | "
                f"{percent(costs['ece_model_temperature'])} → "
                f"{percent(costs['ece_no_face_temperature'])} |"]

    return per_route_table(
        results, "no_face", "PYTHONPATH=.:src python benchmarks/no_face.py FOLDER",
        ["route (experiment)", "temperature: model / no-face group",
         "faceless pictures: mean confidence", "answered with p >= 0.9",
         "40x40 noise, confidence", "a face photo in the group: ECE"], rows,
        lambda first: f"Before → after the no-face temperature. Faceless pictures: "
        f"{first['faceless']['n']} not fitted on, {len(first['faceless']['by_kind'])} kinds. "
        "The last column: every CelebA test photo scored as if its face had been missed "
        "(what the group's temperature costs a real face).")


PIPELINES = ("dvc.yaml", "pipelines/gender_ood/dvc.yaml", "pipelines/keypoints/dvc.yaml")


def lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        node = node[part]
    return node


def resolve(text: str, params: dict[str, Any], item: str | None = None) -> str:
    """A dvc.yaml string with its `${a.b}` (and a foreach's `${item}`) filled in."""
    return re.sub(r"\$\{([^}]+)\}",
                  lambda m: item if m.group(1) == "item" else str(lookup(params, m.group(1))),
                  text)


def names(entries: list[Any]) -> list[str]:
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]


@cache
def stages() -> dict[str, dict[str, list[str]]]:
    """Every stage of the three pipeline files: its params, deps and outputs (metrics and
    plots included), paths from the repository root, `${...}` resolved with params.yaml.
    A foreach stage is one entry, `scratch@large / ...`, its params those of its first item."""
    params = project_params()
    found = {}
    for file in PIPELINES:
        for name, stage in yaml.safe_load((ROOT / file).read_text())["stages"].items():
            items = stage.get("foreach", [None])
            body = stage.get("do", stage)
            label = name if items == [None] else f"{name}@{' / '.join(items)}"
            found[label] = {
                "file": file,
                "params": [resolve(str(key), params, items[0]) for key in body.get("params", [])],
                "deps": [resolve(dep, params, item) for item in items
                         for dep in body.get("deps", [])],
                "outs": [resolve(out, params, item) for item in items
                         for kind in ("outs", "metrics", "plots")
                         for out in names(body.get(kind, []))]}
    return found


def feeds(out: str, dep: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


@cache
def stage_edges() -> frozenset[tuple[str, str]]:
    """(A, B) where B reads what A writes, reduced to the direct links: an edge A -> C that a
    path A -> B -> C already implies is left out."""
    found = stages()
    edges = {(a, b) for a in found for b in found if a != b
             and any(feeds(out, dep) for out in found[a]["outs"] for dep in found[b]["deps"])}

    def reaches(start: str, goal: str, skip: tuple[str, str]) -> bool:
        todo, seen = [start], set()
        while todo:
            node = todo.pop()
            for a, b in edges:
                if a == node and (a, b) != skip and b not in seen:
                    if b == goal:
                        return True
                    seen.add(b)
                    todo.append(b)
        return False

    return frozenset(edge for edge in edges if not reaches(*edge, skip=edge))


def downstream(stage_names: set[str]) -> set[str]:
    """These stages and every stage that reads, directly or not, what they write."""
    found, todo = set(stage_names), list(stage_names)
    while todo:
        node = todo.pop()
        for a, b in stage_edges():
            if a == node and b not in found:
                found.add(b)
                todo.append(b)
    return found


def reruns(key: str, file: str = "dvc.yaml") -> set[str]:
    """The stages of pipeline `file` that a `-S key=...` change reruns there: those that list
    the param (or a section holding it), then everything downstream of them."""
    direct = {name for name, stage in stages().items()
              if any(key == p or key.startswith(p + ".") for p in stage["params"])}
    return {name for name in downstream(direct) if stages()[name]["file"] == file}


def stage_graph(_: Callable[[str], dict]) -> str:
    """The README's stage map, as a mermaid chart of every pipeline file's stages."""
    def node(name: str) -> str:
        return f'{name.split("@")[0]}["{name}"]' if "@" in name else name

    order = list(stages())
    lines = [f"  {node(a)} --> {node(b)}" for a, b in
             sorted(stage_edges(), key=lambda edge: (order.index(edge[0]), order.index(edge[1])))]
    return "```mermaid\nflowchart LR\n" + "\n".join(lines) + "\n```\n"


VALUE_FORMATS: dict[str, Callable[[Any], str]] = {
    "percent": lambda v: f"{100 * v:.2f}%", "percent1": lambda v: f"{100 * v:.1f}%",
    "number2": lambda v: f"{v:.2f}", "number4": lambda v: f"{v:.4f}",
    "int": lambda v: f"{v:d}", "p": lambda v: f"{v:.2g}",
}


def value(results: Callable[[str], dict], benchmark: str, entry: str, path: str,
          form: str) -> str:
    """One figure of a results file, as a page's prose shows it."""
    entries = results(benchmark)
    if entry not in entries:
        raise KeyError(f"{benchmark}.json has no entry {entry!r}")
    return VALUE_FORMATS[form](lookup(entries[entry]["figures"], path))


TABLES: dict[str, Callable[[Callable[[str], dict]], str]] = {
    "routes": routes_table, "route_groups": route_groups_table,
    "route_calibration": route_calibration_table, "keypoints": keypoints_table,
    "latency": latency_table, "export_parity": export_parity_table,
    "headline": headline_table, "training_precision": training_precision_table,
    "head_only": head_only_table, "combined_route": combined_route_table,
    "web_half": web_half_table, "no_face": no_face_table,
    "calibration_methods": calibration_methods_table,
    "temperature_transfer": temperature_transfer_table,
    "flip_average": flip_average_table, "stage_graph": stage_graph,
    "face_network": face_network_table, "face_finetune": face_finetune_table,
    "training_speed": training_speed_table,
}


def render(page: str, results: Callable[[str], dict] = load) -> str:
    """The page with every marked table and value regenerated; an unknown table name, or a
    value no results file holds, is an error."""
    def table(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name](results) + match.group(4)

    def figure(match: re.Match) -> str:
        return match.group(1) + value(results, *match.group(2, 3, 4, 5)) + match.group(7)

    return VALUE.sub(figure, MARKER.sub(table, page))


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale tables")
    args = parser.parse_args()
    stale = []
    for page in pages():
        text = page.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(page.relative_to(ROOT))
            if not args.check:
                page.write_text(fresh)
    if args.check and stale:
        sys.exit(f"stale tables in {', '.join(map(str, stale))}: run python docs/tables.py")
    print(f"{'stale' if args.check else 'rewritten'}: {[str(p) for p in stale]}")


if __name__ == "__main__":
    main()
