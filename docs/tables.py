"""The figure tables of docs/*.md, generated from benchmarks/results/*.json.

A page marks where a table goes with two lines, `<!-- table: NAME -->` and `<!-- end table -->`;
this script rewrites what lies between them. A figure is typed nowhere by hand: it lives in one
results file (with the command, machine, commit and date that produced it), and
tests/test_docs_tables.py fails when a page and its results file disagree.

    python docs/tables.py           # rewrite the tables
    python docs/tables.py --check   # exit 1 and name the stale tables
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
MARKER = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.DOTALL)
COMMAND = "PYTHONPATH=. python benchmarks/real_experiments.py WORKSPACE --only"

# What each route of benchmarks/real_experiments.py is, for a reader; the key is the
# experiment's name without its seed.
ROUTES = {
    "route-default": "default: faces aligned, frozen MobileNetV2 (torchvision ImageNet file), "
                     "chapter head",
    "route-probe": "frozen MobileNetV2, linear head",
    "route-finetune-cnn-all-layers": "fine-tuned MobileNetV2 (every layer but BatchNorm), "
                                     "linear head",
    "route-best": "best: dlib_face descriptor, linear head",
}
KEYPOINT_RUNS = {
    "kp-light-192-e30-noflip": "the default finetune recipe",
    "kp-chapter": "the chapter's recipe",
}


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


def route_runs(entries: dict[str, dict]) -> dict[str, list[tuple[str, dict]]]:
    """Experiments grouped by route (name without `-seedN`), in ROUTES' order."""
    grouped: dict[str, list[tuple[str, dict]]] = {}
    for name in sorted(entries):
        route = re.sub(r"-seed\d+$", "", name)
        if route in ROUTES:
            grouped.setdefault(route, []).append((name, entries[name]))
    return {route: grouped[route] for route in ROUTES if route in grouped}


def provenance(entries: list[dict[str, Any]]) -> str:
    seen = sorted({(e["provenance"]["machine"], e["provenance"]["commit"],
                    e["provenance"]["date"]) for e in entries})
    return "; ".join(f"{machine}, commit {commit}, {date}" for machine, commit, date in seen)


def routes_table(results: Callable[[str], dict]) -> str:
    entries = results("real_experiments")
    grouped = route_runs(entries)
    if not grouped:
        return "No route has been measured yet: run the command below.\n"
    lines = ["| route | CelebA test (grouped by person) | repeats: grouped splits | "
             "gender_web (never trained on) | minutes per run | experiments |",
             "|---|---|---|---|---|---|"]
    for route, named in grouped.items():
        runs = [entry["figures"] for _, entry in named]
        repeats = [run["repeats"] for run in runs if run.get("repeats", {}).get("repeats", 1) > 1]
        repeat_cell = "; ".join(f"{mean_sd(r['accuracy_values'])} ({r['repeats']} splits)"
                                for r in repeats) or "—"
        minutes = sorted(round(run["seconds"] / 60, 1) for run in runs)
        lines.append(f"| {ROUTES[route]} | {seeds_cell(runs, 'gender')} | {repeat_cell} | "
                     f"{seeds_cell(runs, 'gender_ood')} | "
                     f"{', '.join(str(m) for m in minutes)} | "
                     f"{', '.join(f'`{name}`' for name, _ in named)} |")
    every = [entry for named in grouped.values() for _, entry in named]
    return ("\n".join(lines) + "\n\nIntervals: Wilson 95%. Measured with "
            f"`{COMMAND} NAME ...` on: {provenance(every)}.\n")


def headline_table(results: Callable[[str], dict]) -> str:
    """The README's summary: each route's accuracy and calibration, seeds averaged."""
    grouped = route_runs(results("real_experiments"))
    if not grouped:
        return "No route has been measured yet.\n"
    lines = ["| route | CelebA test | gender_web | gender_web ECE |", "|---|---|---|---|"]
    for route, named in grouped.items():
        runs = [entry["figures"] for _, entry in named]
        eces = [run["gender_ood"]["ece"] for run in runs if run["gender_ood"].get("ece")]
        lines.append(f"| {ROUTES[route]} | {seeds_cell(runs, 'gender')} | "
                     f"{seeds_cell(runs, 'gender_ood')} | "
                     f"{mean_sd(eces) + '%' if eces else '—'} |")
    every = [entry for named in grouped.values() for _, entry in named]
    return "\n".join(lines) + f"\n\nMeasured on: {provenance(every)}.\n"


def groups_cell(metrics: dict[str, Any]) -> str:
    groups = metrics.get("by_face") or {}
    return "; ".join(f"{group} {percent(row['accuracy'])} (n={row['n']}"
                     + (f", ECE {percent(row['ece'])}" if row.get("ece") is not None else "")
                     + ")" for group, row in groups.items()) or "—"


def route_groups_table(results: Callable[[str], dict]) -> str:
    grouped = route_runs(results("real_experiments"))
    if not grouped:
        return "No route has been measured yet.\n"
    lines = ["| route (first experiment) | CelebA test, per front-end group | "
             "gender_web, per front-end group |", "|---|---|---|"]
    for route, named in grouped.items():
        name, entry = named[0]
        figures = entry["figures"]
        lines.append(f"| {ROUTES[route]} (`{name}`) | {groups_cell(figures['gender'])} | "
                     f"{groups_cell(figures['gender_ood'])} |")
    return "\n".join(lines) + ("\n\nGroups: `found` (HOG), `fallback` (padded HOG or the CNN "
                               "detector), `none` (the centred square).\n")


def keypoints_table(results: Callable[[str], dict]) -> str:
    entries = {name: entry for name, entry in results("real_experiments").items()
               if name in KEYPOINT_RUNS}
    if not entries:
        return ("No keypoint run has been measured yet: run "
                f"`{COMMAND} {' '.join(KEYPOINT_RUNS)}`.\n")
    lines = ["| run | NME | failure rate (NME > 10%) | pixel error | dlib's predictor, NME | "
             "minutes |", "|---|---|---|---|---|---|"]
    for name in KEYPOINT_RUNS:
        if name in entries:
            figures = entries[name]["figures"]
            points = figures["keypoints"]
            dlib = points.get("dlib_nme")
            lines.append(f"| {KEYPOINT_RUNS[name]} (`{name}`) | {percent(points['nme'])} | "
                         f"{percent(points['failure_rate'])} | {points['pixel_error']:.2f} px | "
                         f"{percent(dlib)} | {round(figures['seconds'] / 60, 1)} |")
    return ("\n".join(lines) + f"\n\nMeasured with `{COMMAND} NAME` on: "
            f"{provenance(list(entries.values()))}.\n")


def calibration_cell(metrics: dict[str, Any]) -> str:
    if metrics.get("ece") is None:
        return "—"
    return f"{percent(metrics['ece'])}{interval(metrics.get('ece_ci95'))}"


def coverage_cell(metrics: dict[str, Any]) -> str:
    at = metrics.get("accuracy_at_coverage") or {}
    return " / ".join(percent(at.get(share)) for share in ("0.95", "0.90")) if at else "—"


def route_calibration_table(results: Callable[[str], dict]) -> str:
    grouped = route_runs(results("real_experiments"))
    if not grouped:
        return "No route has been measured yet.\n"
    lines = ["| route | experiment | CelebA ECE [95% CI] | CelebA Brier | CelebA accuracy at "
             "95% / 90% coverage | gender_web ECE [95% CI] | gender_web Brier | gender_web "
             "accuracy at 95% / 90% coverage |", "|---|---|---|---|---|---|---|---|"]
    for route, named in grouped.items():
        for name, entry in named:
            gender, web = entry["figures"]["gender"], entry["figures"]["gender_ood"]
            brier = [f"{m['brier']:.4f}" if m.get("brier") is not None else "—"
                     for m in (gender, web)]
            lines.append(f"| {ROUTES[route]} | `{name}` | {calibration_cell(gender)} | "
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
        return f"Latency not measured yet: run `{LATENCY_COMMAND}`.\n"
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
        return ("Parity not measured yet: run "
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


PRECISION_COMMAND = "PYTHONPATH=. python benchmarks/training_precision.py"


def training_precision_table(results: Callable[[str], dict]) -> str:
    entries = results("training_precision")
    networks = sorted({name.rsplit("-", 1)[0] for name in entries if not name.startswith("peak")})
    if not networks:
        return f"Training precision not measured yet: run `{PRECISION_COMMAND}`.\n"
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
        return f"Not measured yet: run `{HEAD_ONLY_COMMAND}`.\n"
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
        return f"Not measured yet: run `{COMBINED_COMMAND}`.\n"
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
        return f"Not measured yet: run `{WEB_HALF_COMMAND}`.\n"
    lines = ["| route, seed | trained on | held-out half of gender_web | its ECE | "
             "per front-end group | CelebA test photos |", "|---|---|---|---|---|---|"]
    for _, entry in sorted(entries.items()):
        f = entry["figures"]
        for run, label in (("celeba_only", "CelebA"),
                           ("with_half", f"CelebA + {f['train_half_photos']} gender_web")):
            held = f["held_out"][run]
            celeba = f["celeba_test"][run]
            lines.append(f"| {f['route']}, {f['seed']} | {label} | "
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
        return f"Not measured yet: run `{command}`.\n"
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
        f"{first['faceless']['n']} not fitted on, five kinds. The last column: every CelebA "
        "test photo scored as if its face had been missed (what the group's temperature costs "
        "a real face).")


TABLES: dict[str, Callable[[Callable[[str], dict]], str]] = {
    "routes": routes_table, "route_groups": route_groups_table,
    "route_calibration": route_calibration_table, "keypoints": keypoints_table,
    "latency": latency_table, "export_parity": export_parity_table,
    "headline": headline_table, "training_precision": training_precision_table,
    "head_only": head_only_table, "combined_route": combined_route_table,
    "web_half": web_half_table, "no_face": no_face_table,
    "calibration_methods": calibration_methods_table,
    "temperature_transfer": temperature_transfer_table,
    "flip_average": flip_average_table,
}


def render(page: str, results: Callable[[str], dict] = load) -> str:
    """The page with every marked table regenerated; an unknown table name is an error."""
    def table(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name](results) + match.group(4)
    return MARKER.sub(table, page)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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
