"""dlib's face ResNet in Keras against dlib's own descriptor: parity, speed, the route's answers.

On the aligned 150 px chips a face route prepared (a workspace of benchmarks/real_experiments.py
after `route-face-seed42`: data/prepared/gender/, 4000 CelebA photos) and on gender_web's photos
through facetl's face front end:
- parity: the cosine of each Keras descriptor (float32, then bfloat16) to dlib's
  `compute_face_descriptor` of the same chip;
- speed: photos/s of both on the 4000 CelebA chips, in one run on one CPU, and the Keras
  network's FLOP/s against this machine's measured peak;
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
import pandas as pd
from tqdm import tqdm

from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import GENDER_WEB
from facetl.core.params import load_params, lookup
from facetl.data.images import read_image, resize_square
from facetl.data.splits import load_split
from facetl.faces.detect import face_crop
from facetl.faces.dlib_models import PACKAGED, recognition_model
from facetl.gender.head import fit_classifier_head
from facetl.models.backbones import build_extractor
from facetl.models.dlib_face import CHIP_SIZE
from facetl.models.speed import forward_flops, peak_flops
from facetl.report.compare import discordant_counts, mcnemar_exact

BATCH = 32


def dlib_descriptors(chips: np.ndarray) -> tuple[np.ndarray, float]:
    """dlib's descriptors and the seconds they took, a batch at a time as the old layer ran."""
    model = recognition_model(PACKAGED)
    out, start = [], time.perf_counter()
    for first in tqdm(range(0, len(chips), BATCH), desc="dlib", unit="batch"):
        batch = [np.ascontiguousarray(chip) for chip in chips[first:first + BATCH]]
        out.append(np.array(model.compute_face_descriptor(batch), dtype="float32"))
    return np.concatenate(out), time.perf_counter() - start


def keras_descriptors(chips: np.ndarray, precision: str) -> tuple[np.ndarray, float, float]:
    """The Keras network's descriptors, the seconds they took (after one warm-up batch) and
    its forward FLOPs per photo."""
    extractor = build_extractor("dlib_face", PACKAGED, CHIP_SIZE, precision=precision)
    extractor.predict(chips[:BATCH], batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    out = extractor.predict(chips, batch_size=BATCH, verbose=0)
    return np.asarray(out, dtype="float32"), time.perf_counter() - start, forward_flops(
        extractor)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def parity(ours: np.ndarray, theirs: np.ndarray) -> dict:
    cos = cosines(ours, theirs)
    return {"n": len(cos), "cosine_min": float(cos.min()),
            "cosine_p01": float(np.percentile(cos, 1)), "cosine_median": float(np.median(cos)),
            "max_abs_difference": float(np.abs(ours - theirs).max())}


def web_chips(faces: dict) -> tuple[np.ndarray, np.ndarray]:
    """gender_web's photos through the face front end, resized to dlib's chip, and labels."""
    rows = pd.read_csv(GENDER_WEB / "labels.csv")
    chips = [resize_square(face_crop(read_image(GENDER_WEB / "images" / name), faces).image,
                           CHIP_SIZE)
             for name in tqdm(rows["filename"], desc="gender_web faces", unit="photo")]
    return np.stack(chips), (rows["gender"] == "male").to_numpy()


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

    theirs, dlib_seconds = dlib_descriptors(chips)
    ours, keras_seconds, flops = keras_descriptors(chips, "float32")
    ours_bf16, bf16_seconds, _ = keras_descriptors(chips, "bfloat16")
    speed = {"photos": len(chips), "dlib_photos_per_s": len(chips) / dlib_seconds,
             "keras_float32_photos_per_s": len(chips) / keras_seconds,
             "keras_bfloat16_photos_per_s": len(chips) / bf16_seconds,
             "speedup_float32": dlib_seconds / keras_seconds,
             "speedup_bfloat16": dlib_seconds / bf16_seconds,
             "forward_gflop_per_photo": flops / 1e9,
             "share_of_float32_peak": flops * len(chips) / keras_seconds
             / peak_flops("float32"),
             "share_of_bfloat16_peak": flops * len(chips) / bf16_seconds
             / peak_flops("bfloat16")}
    print(speed)

    os.chdir(args.workspace)  # the split and params as the route's stages read them
    index, train, test = load_split("gender")
    labels = index["label_index"].to_numpy().astype(bool)
    seed = lookup(params, "seed")
    heads = {name: fit_classifier_head("dlib_face", features, index, train, params, seed)
             for name, features in (("dlib", theirs), ("keras", ours))}
    web, web_labels = web_chips(lookup(params, "faces"))
    web_theirs, _ = dlib_descriptors(web)
    web_ours, _, _ = keras_descriptors(web, "float32")

    def correct(name: str, features: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return (heads[name].predict(features, verbose=0)[:, 0] >= 0.5) == truth

    figures = {
        "parity_celeba_float32": parity(ours, theirs),
        "parity_celeba_bfloat16": parity(ours_bf16, theirs),
        "parity_web_float32": parity(web_ours, web_theirs),
        "speed": speed,
        "route_seed": seed,
        "route_celeba_test": paired(correct("dlib", theirs[test], labels[test]),
                                    correct("keras", ours[test], labels[test])),
        "route_gender_web": paired(correct("dlib", web_theirs, web_labels),
                                   correct("keras", web_ours, web_labels)),
    }
    record("face_network", "celeba_and_web", figures, args.results_dir)
    print(figures)


if __name__ == "__main__":
    main()
