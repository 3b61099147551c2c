"""The keypoint routes of docs/keypoints.md, measured: `dvc repro pipelines/keypoints/dvc.yaml`
on the shared Udacity frames (split by person), once per route, in a workspace exported from
one commit. Each route's metrics (NME, failure rate, pixel error, dlib's 68-point predictor on
the same test frames), the settings it ran with (the docs' route labels come from them) and its
stage times go to benchmarks/results/keypoint_routes.json (`table` renders them).

    python benchmarks/keypoint_routes.py WORKSPACE [--only ROUTE ...]

The default recipe takes about 30 fine-tuning epochs of one to two minutes each on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` as a package

from benchmarks.results import add_results_dir, record  # noqa: E402
from benchmarks.shared_data import KEYPOINTS, MOBILENET  # noqa: E402
from benchmarks.tables_format import (  # noqa: E402
    NOT_MEASURED,
    Results,
    percent,
    provenance_line,
    weights_words,
)
from benchmarks.workspace import (  # noqa: E402
    export_commit,
    head,
    run,
    set_params,
    stage_seconds,
    stages_run,
)

# The research data and the one ImageNet backbone file that can be had here (torch mode).
DATA = {"data.keypoints.csv": str(KEYPOINTS / "training_frames_keypoints.csv"),
        "data.keypoints.images": str(KEYPOINTS / "images"),
        "backbones.mobilenet_v2.weights": str(MOBILENET),
        "backbones.mobilenet_v2.preprocess": "torch"}
# Each route: params.yaml's defaults and these changes, nothing else.
ROUTES = {
    "finetune": {},                              # the default recipe
    "chapter": {"keypoints.recipe": "chapter"},  # the chapter's recipe, one -S away
}
PIPELINE = "pipelines/keypoints/dvc.yaml"
KEPT = ("recipe", "backbone", "nme", "pixel_error", "failure_rate", "n_test", "ced_auc",
        "misses", "baseline_nme", "dlib_nme", "dlib_failure_rate", "boxes_from_detector",
        "boxes_from_prior", "inference_ablation", "val_mae_normalised",
        "test_mae_normalised", "nme_regions")


def settings(params: dict) -> dict:
    """What a route ran with, as the docs' labels need it: recipe, backbone, its weights (the
    file's name) and input side, and the recipe's own section."""
    points = params["keypoints"]
    backbone = points["backbone"]
    weights = str(params["backbones"][backbone]["weights"])
    chapter = points["recipe"] == "chapter"
    return {"recipe": points["recipe"], "backbone": backbone,
            "weights": Path(weights).name, "preprocess": params["backbones"][backbone][
                "preprocess"],
            "input_size": (params["prepare"]["keypoints"]["input_size"] if chapter
                           else points["crop"]["input_size"]),
            "test_size": params["prepare"]["keypoints"]["test_size"], "seed": params["seed"],
            "recipe_params": params["train"]["keypoints"] if chapter else points}


def measure(repo: Path, changes: dict, code: str) -> dict:
    params = set_params(repo, DATA | changes, code)
    start = time.perf_counter()
    output = run(["dvc", "repro", PIPELINE], repo)
    log = output.stdout + output.stderr
    metrics = json.loads((repo / "metrics/keypoints.json").read_text())
    return {"settings": settings(params), "changes": changes,
            "metrics": {key: metrics[key] for key in KEPT if key in metrics},
            "minutes": round((time.perf_counter() - start) / 60, 1),
            "ran": stages_run(log), "stage_seconds": stage_seconds(log)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--only", nargs="+", choices=list(ROUTES), default=list(ROUTES))
    add_results_dir(parser)
    args = parser.parse_args()
    if not KEYPOINTS.is_dir():
        raise SystemExit(f"needs the shared data beside the repository: {KEYPOINTS} is missing")
    code = head()
    if not (args.workspace / ".git").is_dir():
        export_commit(args.workspace, code)
    for name in args.only:
        figures = measure(args.workspace, ROUTES[name], code)
        record("keypoint_routes", name, figures, args.results_dir, code=code)
        print(json.dumps({"route": name} | figures), flush=True)


COMMAND = "python benchmarks/keypoint_routes.py WORKSPACE"


def route_label(settings: dict[str, Any]) -> str:
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


def table(results: Results) -> str:
    """docs/keypoints.md's table: each route against dlib's predictor on the same frames."""
    entries = results("keypoint_routes")
    if not entries:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    lines = ["| route | test frames | NME | failure rate (NME > 10%) | pixel error | "
             "dlib's 68-point predictor: NME / failure rate | minutes |",
             "|---|---|---|---|---|---|---|"]
    for name, entry in sorted(entries.items()):
        figures = entry["figures"]
        points = figures["metrics"]
        lines.append(f"| {route_label(figures['settings'])} (`{name}`) | "
                     f"{points['n_test']} | {percent(points['nme'])} | "
                     f"{percent(points['failure_rate'])} | {points['pixel_error']:.2f} px | "
                     f"{percent(points['dlib_nme'])} / {percent(points['dlib_failure_rate'])} | "
                     f"{figures['minutes']} |")
    return ("\n".join(lines) + "\n\nNME: the mean point error over the distance between the "
            "outer eye corners, on the people held out. Measured with "
            f"`{COMMAND}`: {provenance_line(list(entries.values()))}.\n")


if __name__ == "__main__":
    main()
