"""The photos no HOG detector finds: which crop and which features classify them best.

On CelebA the best route (dlib_face + linear head) loses 15-20 points on the `fallback` and
`none` groups of the face front end (profiles, strong tilts, hands or microphones over the
face). This measures the candidate fixes on those photos with the front end's own code
(`facetl.faces.detect`, the params' defaults): each variant is a feature vector per photo, a
StandardScaler + LogisticRegression head (C=0.1) is scored by 5-fold person-grouped CV on all
CelebA photos, then trained on all of them and scored on all of gender_web (never trained on).
Found photos keep the aligned chip in the crop variants, so only the missed photos change.

    aligned   today's chip (5-point alignment, 150 px, padding 0.25) -> dlib descriptor
    wide      the chip widened to at least 2x the detector's box (same centre and angle)
    upright   an upright crop of the box, side 1.6x its width, no landmarks
    flip      the mean of the chip's descriptor and its mirror image's
    jitter    dlib's own test-time jitter (10 random crops and flips, averaged)
    fusion    the chip's descriptor beside frozen ImageNet MobileNetV2 features (global
              average) of the whole photo padded square: hair and clothes as context
    flip+group  `flip` plus a 0/1 feature saying HOG missed the face: a bias for that group

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/fallback_group.py [--limit N]
        [--cache DIR] [--results-dir DIR]

Records benchmarks/results/fallback_group.json, one entry per variant (`<variant>`, or
`<variant>-n<N>` for the first N photos of each source).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import dlib
import keras
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import CELEBA, GENDER_WEB, MOBILENET
from facetl.core.metrics import accuracy_by_group, group_row
from facetl.core.params import load_params
from facetl.data.images import read_image
from facetl.faces.detect import chosen_boxes, detect, landmarks
from facetl.faces.dlib_models import PACKAGED, recognition_model
from facetl.models.backbones import build_extractor
from facetl.models.dlib_face import CHIP_SIZE

CONTEXT_SIZE = 224
VARIANTS = ("aligned", "wide", "upright", "flip", "jitter", "fusion", "flip+group")


def square_chip(image: np.ndarray, centre_x: float, centre_y: float, side: float,
                angle: float) -> np.ndarray:
    """The square window of `side` about a centre, turned by `angle`, as a descriptor chip."""
    half = side / 2
    rect = dlib.drectangle(centre_x - half, centre_y - half, centre_x + half, centre_y + half)
    return dlib.extract_image_chip(
        image, dlib.chip_details(rect, dlib.chip_dims(CHIP_SIZE, CHIP_SIZE), angle))


def upright_crop(image: np.ndarray, box: tuple, side_ratio: float) -> np.ndarray:
    return square_chip(image, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                       side_ratio * (box[2] - box[0]), 0.0)


def widened_chip(image: np.ndarray, chip: dlib.chip_details, box: tuple, least: float
                 ) -> np.ndarray:
    """The aligned chip's window grown to at least `least` x the box width, same centre/angle."""
    centre = chip.rect.center()
    return square_chip(image, centre.x, centre.y,
                       max(chip.rect.width(), least * (box[2] - box[0])), chip.angle)


def padded_square(image: np.ndarray) -> np.ndarray:
    """The whole photo, edge-padded to a square and resized for the context network."""
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(image, top, side - h - top, left, side - w - left,
                                cv2.BORDER_REPLICATE)
    return cv2.resize(square, (CONTEXT_SIZE, CONTEXT_SIZE), interpolation=cv2.INTER_AREA)


def describe_source(labels: pd.DataFrame, images: Path, faces: dict) -> pd.DataFrame:
    """One row per photo: label, person, whether HOG missed the face, every variant's features."""
    network = recognition_model(PACKAGED)

    def describe(chip: np.ndarray, jitters: int = 0) -> np.ndarray:
        return np.asarray(network.compute_face_descriptor(np.ascontiguousarray(chip), jitters),
                          "float32")

    context = keras.Sequential([build_extractor("mobilenet_v2", str(MOBILENET), CONTEXT_SIZE,
                                                "torch"), keras.layers.GlobalAveragePooling2D()])
    rows, wholes = [], []
    for _, row in tqdm(labels.iterrows(), total=len(labels), desc=images.parent.name):
        image = read_image(images / row["filename"])
        status, boxes = detect(image, faces)
        [box] = chosen_boxes(image, boxes)
        chip_details = dlib.get_face_chip_details(landmarks(image, box), CHIP_SIZE,
                                                  faces["margin"])
        chip = dlib.extract_image_chip(image, chip_details)
        aligned = describe(chip)
        missed = status != "found"
        rows.append({
            "male": row["gender"] == "male", "person": row.get("identity", row["filename"]),
            "missed": missed, "aligned": aligned,
            "wide": describe(widened_chip(image, chip_details, box, 2.0)) if missed else aligned,
            "upright": describe(upright_crop(image, box, 1.6)) if missed else aligned,
            "flip": (aligned + describe(chip[:, ::-1])) / 2,
            "jitter": describe(chip, 10) if missed else aligned})
        wholes.append(padded_square(image))
    table = pd.DataFrame(rows)
    context_features = context.predict(np.stack(wholes).astype("float32"), batch_size=32,
                                       verbose=0)
    table["fusion"] = list(np.hstack([np.stack(table.aligned), context_features]))
    return table


def with_group_feature(table: pd.DataFrame) -> pd.DataFrame:
    missed = table.missed.to_numpy("float32")[:, None]
    return table.assign(**{"flip+group": list(np.hstack([np.stack(table.flip), missed]))})


def group_scores(correct: np.ndarray, missed: pd.Series) -> dict:
    """All photos, then found and missed ones: accuracy, share and Wilson interval each."""
    return {"all": group_row(int(correct.sum()), len(correct), len(correct)),
            **accuracy_by_group(correct, np.where(missed, "missed", "found"))}


def head() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))


def score(celeba: pd.DataFrame, web: pd.DataFrame, variant: str) -> dict:
    features, labels = np.stack(celeba[variant]), celeba.male.to_numpy()
    predicted = np.zeros(len(celeba), bool)
    for train, test in GroupKFold(5).split(features, labels, celeba.person):
        predicted[test] = head().fit(features[train], labels[train]).predict(features[test])
    web_predicted = head().fit(features, labels).predict(np.stack(web[variant]))
    return {"variant": variant,
            "celeba_cv": group_scores(predicted == labels, celeba.missed),
            "gender_web": group_scores(web_predicted == web.male.to_numpy(), web.missed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="first N photos of each source (a quick try)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/facetl_fallback_group"))
    add_results_dir(parser)
    args = parser.parse_args()
    faces = load_params(Path(__file__).resolve().parents[1] / "params.yaml")["faces"]
    args.cache.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name, root in (("celeba", CELEBA), ("web", GENDER_WEB)):
        cached = args.cache / f"{name}-{args.limit or 'all'}.pkl"
        if not cached.exists():
            labels = pd.read_csv(root / "labels.csv").head(args.limit)
            describe_source(labels, root / "images", faces).to_pickle(cached)
        tables[name] = with_group_feature(pd.read_pickle(cached))
    for variant in VARIANTS:
        scores = score(tables["celeba"], tables["web"], variant)
        print(json.dumps(scores), flush=True)
        key = variant + (f"-n{args.limit}" if args.limit else "")
        record("fallback_group", key, scores | {"limit": args.limit}, args.results_dir)
    print(f"recorded in {args.results_dir / 'fallback_group.json'}")


if __name__ == "__main__":
    main()
