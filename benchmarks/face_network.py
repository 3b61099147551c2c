"""dlib's face ResNet in Keras against dlib's own descriptor: parity, speed, the route's answers.

On the aligned 150 px chips a face route prepared (a workspace of benchmarks/real_experiments.py
after `route-face-seed42`: data/prepared/gender/, 4000 CelebA photos) and on gender_web's photos
through facetl's face front end:
- parity: the cosine of each Keras descriptor (float32, then bfloat16) to dlib's
  `compute_face_descriptor` of the same chip;
- speed: photos/s of both on the 4000 CelebA chips, in one run on one CPU, batch by batch in
  turn (load from other work slows both alike), and the Keras network's FLOP/s against this
  machine's peak (a large matmul, measured in the same run);
- the route: the pipeline's linear head fitted on each implementation's features of the same
  split (the workspace's params and seed), its answers on the test split and on gender_web
  paired by exact McNemar.

    PYTHONPATH=. python benchmarks/face_network.py WORKSPACE
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.gpu_check import cosines
from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import web_crops
from benchmarks.tables_format import NOT_MEASURED, Results, percent, provenance_line
from facetl.core.metrics import discordant_counts, mcnemar_exact
from facetl.core.params import load_params, lookup
from facetl.data.splits import load_split
from facetl.faces.dlib_models import PACKAGED, recognition_model
from facetl.gender.head import fit_classifier_head
from facetl.models.backbones import build_extractor
from facetl.models.backend import compiled_forward
from facetl.models.dlib_face import CHIP_SIZE
from facetl.models.speed import forward_flops, peak_flops

BATCH = 32
PARITY_BF16 = 1000  # chips for the bfloat16 parity and speed (emulated bf16 is slow)


def interleaved(chips: np.ndarray, precision: str) -> dict:
    """dlib's and the Keras network's descriptors of the same chips, batch by batch in turn,
    so that other work on the machine slows both alike: each one's descriptors and seconds,
    the network's forward FLOPs per photo, and the machine's peak measured just before."""
    dlib_model = recognition_model(PACKAGED)
    extractor = build_extractor("dlib_face", PACKAGED, CHIP_SIZE, precision=precision)
    forward = compiled_forward(extractor)
    forward(chips[:BATCH])  # compiles for the batch shape
    peak = peak_flops(precision, refresh=True)
    out = {"dlib": [], "keras": []}
    seconds = {"dlib": 0.0, "keras": 0.0}
    for first in tqdm(range(0, len(chips), BATCH), desc=f"dlib and keras {precision}",
                      unit="batch"):
        batch = chips[first:first + BATCH]
        start = time.perf_counter()
        out["dlib"].append(np.array(dlib_model.compute_face_descriptor(
            [np.ascontiguousarray(chip) for chip in batch]), dtype="float32"))
        middle = time.perf_counter()
        out["keras"].append(np.asarray(forward(batch), dtype="float32"))
        seconds["dlib"] += middle - start
        seconds["keras"] += time.perf_counter() - middle
    return {"dlib": np.concatenate(out["dlib"]), "keras": np.concatenate(out["keras"]),
            "seconds": seconds, "flops": forward_flops(extractor), "peak": peak}


def speed(run: dict, precision: str) -> dict:
    photos = len(run["keras"])
    keras_rate = photos / run["seconds"]["keras"]
    return {"photos": photos, "precision": precision,
            "dlib_photos_per_s": photos / run["seconds"]["dlib"],
            "keras_photos_per_s": keras_rate,
            "speedup": run["seconds"]["dlib"] / run["seconds"]["keras"],
            "forward_gflop_per_photo": run["flops"] / 1e9,
            "achieved_gflop_per_s": keras_rate * run["flops"] / 1e9,
            "peak_gflop_per_s": run["peak"] / 1e9,
            "share_of_peak": keras_rate * run["flops"] / run["peak"]}


def parity(ours: np.ndarray, theirs: np.ndarray) -> dict:
    cos = cosines(ours, theirs)
    return {"n": len(cos), "cosine_min": float(cos.min()),
            "cosine_p01": float(np.percentile(cos, 1)), "cosine_median": float(np.median(cos)),
            "max_abs_difference": float(np.abs(ours - theirs).max())}


def paired(correct_dlib: np.ndarray, correct_keras: np.ndarray) -> dict:
    only_dlib, only_keras = discordant_counts(correct_dlib, correct_keras)
    return {"n": len(correct_dlib), "accuracy_dlib": float(correct_dlib.mean()),
            "accuracy_keras": float(correct_keras.mean()), "only_dlib_right": only_dlib,
            "only_keras_right": only_keras, "mcnemar_p": mcnemar_exact(only_dlib, only_keras)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    add_results_dir(parser)
    args = parser.parse_args()
    params = load_params(args.workspace / "params.yaml")
    chips = np.load(args.workspace / "data/prepared/gender/images.npy")
    if chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise SystemExit(f"prepared images are {chips.shape[1:]}: run route-face-seed42 first")

    float32 = interleaved(chips, "float32")
    theirs, ours = float32["dlib"], float32["keras"]
    bfloat16 = interleaved(chips[:PARITY_BF16], "bfloat16")
    speeds = [speed(float32, "float32"), speed(bfloat16, "bfloat16")]
    print(speeds)

    os.chdir(args.workspace)  # the split and params as the route's stages read them
    index, train, test = load_split("gender")
    labels = index["label_index"].to_numpy().astype(bool)
    seed = lookup(params, "seed")
    heads = {name: fit_classifier_head("dlib_face", features, index, train, params, seed)
             for name, features in (("dlib", theirs), ("keras", ours))}
    web, web_labels = web_crops(lookup(params, "faces"), CHIP_SIZE)
    on_web = interleaved(web, "float32")
    web_theirs, web_ours = on_web["dlib"], on_web["keras"]

    def correct(name: str, features: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return (heads[name].predict(features, verbose=0)[:, 0] >= 0.5) == truth

    figures = {
        "parity_celeba_float32": parity(ours, theirs),
        "parity_celeba_bfloat16": parity(bfloat16["keras"], bfloat16["dlib"]),
        "parity_web_float32": parity(web_ours, web_theirs),
        "speed": speeds,
        "route_seed": seed,
        "route_celeba_test": paired(correct("dlib", theirs[test], labels[test]),
                                    correct("keras", ours[test], labels[test])),
        "route_gender_web": paired(correct("dlib", web_theirs, web_labels),
                                   correct("keras", web_ours, web_labels)),
    }
    record("face_network", "celeba_and_web", figures, args.results_dir)
    print(figures)


COMMAND = "PYTHONPATH=. python benchmarks/face_network.py WORKSPACE"


def table(results: Results) -> str:
    """docs/experiments/face-network.md's tables: dlib's face network in Keras against dlib's
    descriptor: parity, speed, the route."""
    entries = results("face_network")
    if not entries:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
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
            f"measured in the same run. Measured with `{COMMAND}` on: "
            f"{provenance_line(list(entries.values()))}.\n")


if __name__ == "__main__":
    main()
