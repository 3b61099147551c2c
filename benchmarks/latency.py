"""Per-photo latency of gender prediction on this CPU, split into its steps (issue 24).

One photo at a time (batch 1, as `facetl serve` answers a request), after a few warm-up photos,
each step timed on its own, with the functions `facetl predict` runs:

- decode: `read_input` (the file's bytes to RGB pixels);
- detection: the face front end's `detect` (HOG, then the padded retry and the CNN detector
  where HOG found nothing); not run for a `faces.align: false` model;
- alignment: `align` on the chosen box (the largest face, or the centred square), then the
  resize to the network's input; for a `faces.align: false` model, the resize alone;
- network: `predict` on the one crop, by the Keras model or by the exported file's runtime;
  for dlib_face this includes dlib's face descriptor, which runs on the host before the head;
- total: the same photo through `facetl.gender.predict.predict_gender`, a cross-check: the
  steps should add up to about this.

    PYTHONPATH=. python benchmarks/latency.py --models models [--runtime keras onnx]
        [--photos DIR] [--n 200] [--label NAME]

--models is the folder holding `gender/` as the pipeline writes it (model.keras, model.json);
for an exported runtime (onnx, saved_model, litert) it is either such a folder, whose model is
then exported into a temporary folder first (`facetl export`, checked as it is), or a folder
that `facetl export` wrote. Writes benchmarks/results/latency.json, one entry per route and
runtime, `<label or backbone-head>-<runtime>`; docs/serve.md shows them (python docs/tables.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.results import RESULTS, record
from benchmarks.shared_data import GENDER_WEB
from benchmarks.tables_format import Results, per_route_table
from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.detect import Box, align, chosen_boxes, detect
from facetl.gender.predict import load_gender, predict_gender
from facetl.models.inference import Network, read_input
from facetl.predict import expand_inputs, runtime_loader
from facetl.ship.export import export, policies
from facetl.ship.runtime import FILES

STEPS = ("decode", "detection", "alignment", "network", "total")
RUNTIMES = ("keras", *FILES)


def sample(photos: str, n: int) -> list[str]:
    """A seeded sample of n photos of the folder (all of them when it holds fewer)."""
    files = expand_inputs([photos])
    chosen = np.random.default_rng(0).choice(files, min(n, len(files)), replace=False)
    return sorted(chosen.tolist())


def load_runtime(runtime: str, models_root: Path, scratch: Path) -> tuple[Network, dict]:
    """The gender network for `runtime` and its model.json, as `facetl predict` loads them; a
    trained Keras model is exported into `scratch` first when an exported runtime is asked."""
    if runtime == "keras":
        return load_gender(models_root)
    if (models_root / "gender/model.keras").is_file():
        export("gender", runtime, scratch / runtime, models_root)
        models_root = scratch / runtime
    return load_gender(models_root, runtime_loader(runtime))


def detection(image: np.ndarray, faces: dict[str, Any]) -> tuple[np.ndarray, str, list[Box]]:
    """The photo as the front end holds it (contiguous, for dlib), which detector answered and
    the boxes it found."""
    image = np.ascontiguousarray(image)
    return image, *detect(image, faces)


def alignment(image: np.ndarray, boxes: list[Box], faces: dict[str, Any],
              size: int) -> np.ndarray:
    """The network's input: the chosen box aligned, or the photo as it is, at `size`."""
    if faces["align"]:
        image = align(image, chosen_boxes(image, boxes)[0], faces["crop_size"], faces["margin"])
    return resize_square(image, size)


def time_photo(file: str, model: Network, meta: dict) -> tuple[dict[str, float], str]:
    """Milliseconds of each step of one photo (no `detection` without alignment), and what the
    front end found (found, fallback, none; off without alignment)."""
    faces = meta.get("faces", {"align": False})
    times: dict[str, float] = {}

    def timed(step: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = call()
        times[step] = 1000 * (time.perf_counter() - start)
        return result

    image = timed("decode", lambda: read_input(file))
    status, boxes = "off", []
    if faces["align"]:
        image, status, boxes = timed("detection", lambda: detection(image, faces))
    crop = timed("alignment", lambda: alignment(image, boxes, faces, meta["input_size"]))
    timed("network", lambda: model.predict(crop[None], verbose=0))
    answer = timed("total", lambda: predict_gender([file], loaded=(model, meta)))
    if "error" in answer[0]:  # it was read just above: the file changed meanwhile
        raise FacetlError(answer[0]["error"])
    return times, status


def summary(ms: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(ms, [50, 95])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
            "mean_ms": round(float(np.mean(ms)), 2)}


def route(model: Network, meta: dict, runtime: str) -> dict[str, Any]:
    """What the measured model is: the figures depend on each of these."""
    return {"backbone": meta["backbone"], "head": meta.get("head"),
            "finetuned": bool(meta.get("finetuned", False)), "input_size": meta["input_size"],
            "align": meta.get("faces", {"align": False})["align"],
            "precision": policies(model) if runtime == "keras" else ["float32"]}


def measure(files: list[str], model: Network, meta: dict, warmup: int) -> dict[str, Any]:
    """Each step's p50, p95 and mean over the readable photos, after `warmup` untimed ones."""
    for file in files[:warmup]:
        with suppress(FacetlError):
            time_photo(file, model, meta)
    rows, statuses, unreadable = [], Counter(), 0
    for file in files:
        try:
            times, status = time_photo(file, model, meta)
        except FacetlError:
            unreadable += 1
            continue
        rows.append(times)
        statuses[status] += 1
    if not rows:
        raise FacetlError(f"none of the {len(files)} photos could be read: nothing measured")
    steps = {step: summary([row[step] for row in rows]) if step in rows[0] else None
             for step in STEPS}
    parts = sum(figures["mean_ms"] for step, figures in steps.items()
                if figures and step != "total")
    return {"photos": len(rows), "unreadable": unreadable, "warmup": warmup,
            "faces": dict(sorted(statuses.items())), "steps": steps,
            "steps_sum_over_total": round(parts / steps["total"]["mean_ms"], 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, type=Path,
                        help="folder holding gender/ (trained, or as facetl export wrote it)")
    parser.add_argument("--runtime", nargs="+", default=["keras"], choices=RUNTIMES)
    parser.add_argument("--photos", default=str(GENDER_WEB / "images"))
    parser.add_argument("--n", type=int, default=200, help="photos timed, a seeded sample")
    parser.add_argument("--warmup", type=int, default=3, help="untimed photos first")
    parser.add_argument("--label", help="the entry's name (default: backbone-head)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not Path(args.photos).is_dir():
        print(f"no photos folder {args.photos} (the gender_web images, or pass --photos DIR): "
              "nothing measured")
        return
    files = sample(args.photos, args.n)
    with tempfile.TemporaryDirectory() as scratch:
        for runtime in args.runtime:
            model, meta = load_runtime(runtime, args.models, Path(scratch))
            figures = {"route": route(model, meta, runtime), "runtime": runtime,
                       "source": args.photos, **measure(files, model, meta, args.warmup)}
            if meta["backbone"] == "dlib_face":
                figures["network_note"] = "dlib's face descriptor (on the host) and the head"
            label = args.label or f"{meta['backbone']}-{meta.get('head')}"
            path = record("latency", f"{label}-{runtime}", figures, args.results_dir)
            steps = figures["steps"]
            print(f"{label} ({runtime}), {figures['photos']} photos, p50 / p95 ms: " + ", ".join(
                f"{step} {steps[step]['p50_ms']} / {steps[step]['p95_ms']}"
                for step in STEPS if steps[step]) + f" -> {path}")


COMMAND = "PYTHONPATH=. python benchmarks/latency.py --models models --runtime keras onnx"


def route_words(route: dict[str, Any]) -> str:
    """A measured model in words: what its latency depends on."""
    reduced = [policy for policy in route["precision"] if policy != "float32"]
    faces = "faces aligned" if route["align"] else "no face front end"
    return (f"{route['backbone']}, {route['head']} head, "
            f"{'fine-tuned' if route['finetuned'] else 'frozen'}, {route['input_size']} px, "
            f"{faces}" + (f", computes in {', '.join(reduced)}" if reduced else ""))


def step_cell(step: dict[str, float] | None) -> str:
    return "—" if step is None else f"{step['p50_ms']:.1f} / {step['p95_ms']:.1f}"


def table(results: Results) -> str:
    """docs/serve.md's table: each step's p50 / p95 per model and runtime."""
    def rows(name: str, figures: dict) -> list[str]:
        notes = {"network": f" ({figures['network_note']})" if "network_note" in figures else ""}
        cells = [step_cell(figures["steps"][step]) + notes.get(step, "") for step in STEPS]
        return [f"| {route_words(figures['route'])} ({name}) | {figures['runtime']} | "
                f"{figures['photos']} | {' | '.join(cells)} |"]

    return per_route_table(
        results, "latency", COMMAND,
        ["route", "runtime", "photos", "decode", "face detection", "alignment", "network",
         "total"], rows,
        lambda _: "Milliseconds per photo, p50 / p95, one photo at a time. A dash: the step "
                  "does not run for that model.")

if __name__ == "__main__":
    main()
