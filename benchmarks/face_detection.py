"""Face-detection chains for the gender front end: coverage, speed, and what they cost in accuracy.

Every chain is a list of stages tried in order until one returns a face box; the last stage
always "succeeds" (the whole photo, or the whole photo taken as the face box). Each photo falls in
one group: `found` (first stage), `fallback` (a later detector) or `none` (the last resort). The
largest box is aligned with dlib's 5-point landmarks (`get_face_chip`, 150 px, padding 0.25) and
described by dlib's ResNet face descriptor; `whole` instead resizes the photo to 150x150 unaligned.
A StandardScaler + LogisticRegression head (C by 5-fold GroupKFold on identity) is trained on
the CelebA photos of a 90% person-grouped split (seed 42), processed by the same chain, and
evaluated on the other 10% and on all of gender_web (never trained on).

Detections and descriptors are cached under --cache (default /tmp/facetl_face_detection), so a
rerun only computes what is new; detection times are those measured when first computed.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/face_detection.py [--limit N] [--out PATH]
        [--variants a,b,...] [--data DIR] [--cache DIR] [--results-dir DIR]

Besides --out (every chain in one file), records benchmarks/results/face_detection.json, one
entry per chain (`<chain>`, or `<chain>-n<N>` for a --limit N sample): its summary, its rows
and the run's settings.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, GroupShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from benchmarks.results import add_results_dir, record
from benchmarks.shared_data import SHARED
from facetl.faces.detect import resized

with warnings.catch_warnings():  # it imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import face_recognition_models as frm
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

DATA = SHARED / "data"
CHIP = 150
SEED = 42
C_GRID = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
TERMINAL = ("whole", "full", "square")

Box = tuple[float, float, float, float, float]  # angle, left, top, right, bottom in frame(angle)


# ----------------------------------------------------------------------------- stages and chains


@dataclass(frozen=True)
class Stage:
    """One detector call: how the photo is resized, padded and rotated before it."""

    detector: str  # hog | cnn | lbp, or a terminal: whole | full | square
    min_side: int = 0  # upscale (never down) so the short side is at least this
    long_side: int = 0  # resize (up or down) so the long side is this
    pad: float = 0.0  # border on each side, as a share of the long side
    pad_mode: str = "constant"  # constant (black) | reflect
    angles: tuple[float, ...] = (0.0,)  # rotations tried; the largest box over all wins

    @property
    def key(self) -> str:
        """Cache key: every parameter that changes the result."""
        return (
            f"{self.detector}|min{self.min_side}|long{self.long_side}|pad{self.pad}"
            f"{self.pad_mode}|rot{','.join(f'{a:g}' for a in self.angles)}"
        )


HOG = Stage("hog")
HOG_UP = Stage("hog", min_side=200)
LBP = Stage("lbp")
PAD_CONST = Stage("hog", min_side=200, pad=0.3)
PAD_REFLECT = Stage("hog", min_side=200, pad=0.3, pad_mode="reflect")
ROT = Stage("hog", min_side=200, pad=0.3, angles=(-25.0, 25.0))
CNN = Stage("cnn", long_side=200)
HOG_NORM = Stage("hog", long_side=240)  # every photo to one size: a bounded cost per photo
PAD_NORM = Stage("hog", long_side=240, pad=0.3)
WHOLE, FULL, SQUARE = Stage("whole"), Stage("full"), Stage("square")

CHAINS: dict[str, list[Stage]] = {
    "a_hog_lbp_whole": [HOG, LBP, WHOLE],
    "b_hog_whole": [HOG, WHOLE],
    "b2_hogup_whole": [HOG_UP, WHOLE],
    "c_hogup_padconst_whole": [HOG_UP, PAD_CONST, WHOLE],
    "c2_hogup_padreflect_whole": [HOG_UP, PAD_REFLECT, WHOLE],
    "d_hogup_cnn_whole": [HOG_UP, CNN, WHOLE],
    "d2_cnn_whole": [CNN, WHOLE],
    "e_hogup_rot_whole": [HOG_UP, ROT, WHOLE],
    "f_hogup_full": [HOG_UP, FULL],
    "f2_hogup_square": [HOG_UP, SQUARE],
    "g_hogup_padconst_full": [HOG_UP, PAD_CONST, FULL],
    "h_hogup_pad_rot_cnn_full": [HOG_UP, PAD_CONST, ROT, CNN, FULL],
    "i_cnn_full": [CNN, FULL],
    "j_hognorm_padnorm_full": [HOG_NORM, PAD_NORM, FULL],
    "j2_hognorm_padnorm_square": [HOG_NORM, PAD_NORM, SQUARE],  # the pipeline's default
    "k_hognorm_padnorm_cnn_square": [HOG_NORM, PAD_NORM, CNN, SQUARE],  # faces.cnn: true
}


class Models:
    """dlib's and OpenCV's detectors, the 5-point landmarks and the face descriptor."""

    def __init__(self) -> None:
        self.hog = dlib.get_frontal_face_detector()
        self.cnn = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        # OpenCV 5 dropped CascadeClassifier: scikit-image runs OpenCV's LBP cascade file.
        self.lbp = Cascade(lbp_frontal_face_cascade_filename())
        self.landmarks = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.descriptor = dlib.face_recognition_model_v1(frm.face_recognition_model_location())


# ----------------------------------------------------------------------------- geometry


def rotation(h: int, w: int, angle: float) -> tuple[np.ndarray, int, int]:
    """Affine matrix rotating an h x w image about its centre onto a canvas that holds it all."""
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * sin + w * cos)), int(round(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, nw, nh


def frame(img: np.ndarray, angle: float) -> np.ndarray:
    """The photo rotated by `angle` (black corners); the photo itself at 0."""
    if angle == 0:
        return img
    m, nw, nh = rotation(*img.shape[:2], angle)
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR)


def raw_boxes(view: np.ndarray, detector: str, models: Models) -> list[tuple[float, ...]]:
    """(left, top, right, bottom) of every face the detector finds in `view`."""
    if detector == "hog":
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in models.hog(view, 1)]
    if detector == "cnn":
        return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
                for d in models.cnn(view, 0)]
    if detector == "lbp":
        side = min(view.shape[:2])  # the pipeline's settings: faces >= 20% of the short side
        smallest = max(24, int(0.2 * side))
        found = models.lbp.detect_multi_scale(view, scale_factor=1.1, step_ratio=1,
                                              min_size=(smallest, smallest), max_size=(side, side))
        return [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]
    raise ValueError(detector)


def detect(img: np.ndarray, stage: Stage, models: Models) -> Box | None:
    """The largest face box of one stage, mapped back to frame(img, angle); None if none."""
    h, w = img.shape[:2]
    if stage.detector == "full":
        return (0.0, 0.0, 0.0, w - 1.0, h - 1.0)
    if stage.detector == "square":
        side = min(h, w)
        x0, y0 = (w - side) / 2, (h - side) / 2
        return (0.0, x0, y0, x0 + side - 1, y0 + side - 1)
    scale = 1.0
    if stage.long_side:
        scale = stage.long_side / max(h, w)
    elif stage.min_side and min(h, w) < stage.min_side:
        scale = stage.min_side / min(h, w)
    work = resized(img, scale)  # the pipeline's resize (cubic up, area down)
    if stage.pad:
        p = int(round(stage.pad * max(work.shape[:2])))
        border = cv2.BORDER_REFLECT_101 if stage.pad_mode == "reflect" else cv2.BORDER_CONSTANT
        work = cv2.copyMakeBorder(work, p, p, p, p, border, value=0)
    best, best_area = None, 0.0
    for angle in stage.angles:
        view = frame(work, angle)
        _, fw, fh = rotation(h, w, angle)
        cx, cy = view.shape[1] / 2, view.shape[0] / 2
        for left, top, right, bottom in raw_boxes(view, stage.detector, models):
            # Padding and scale change nothing about positions relative to the centre.
            box = ((left - cx) / scale + fw / 2, (top - cy) / scale + fh / 2,
                   (right - cx) / scale + fw / 2, (bottom - cy) / scale + fh / 2)
            mid_x, mid_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if not (0 <= mid_x < fw and 0 <= mid_y < fh):  # a face in the (mirrored) border
                continue
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area > best_area:
                best, best_area = (float(angle), *box), area
    return best


def describe(img: np.ndarray, box: Box | None, models: Models) -> np.ndarray:
    """128-d descriptor of the aligned chip of `box`, or of the whole photo resized if None."""
    if box is None:
        h, w = img.shape[:2]
        interp = cv2.INTER_AREA if min(h, w) > CHIP else cv2.INTER_LINEAR
        chip = cv2.resize(img, (CHIP, CHIP), interpolation=interp)
    else:
        view = frame(img, box[0])
        rect = dlib.rectangle(*(int(round(v)) for v in box[1:]))
        shape = models.landmarks(view, rect)
        chip = dlib.get_face_chip(view, shape, size=CHIP, padding=0.25)
    return np.asarray(models.descriptor.compute_face_descriptor(chip), dtype=np.float32)


def descriptor_key(box: Box | None) -> str:
    """Boxes that round to the same pixels share a descriptor."""
    if box is None:
        return "whole"
    return f"{box[0]:g}|" + ",".join(str(int(round(v))) for v in box[1:])


# ----------------------------------------------------------------------------- cache


class Cache:
    """Per-dataset detections (box, ms) and descriptors, kept in /tmp across runs."""

    def __init__(self, root: Path, dataset: str) -> None:
        self.dir = root / dataset
        self.dir.mkdir(parents=True, exist_ok=True)
        det_path = self.dir / "detections.json"
        self.detections: dict[str, dict[str, list]] = (
            json.loads(det_path.read_text()) if det_path.exists() else {})
        self.descriptors: dict[str, np.ndarray] = {}
        desc_path = self.dir / "descriptors.npz"
        if desc_path.exists():
            with np.load(desc_path) as z:
                self.descriptors = dict(zip(z["keys"].tolist(), z["values"], strict=True))
        self.new = 0

    def detection(self, stage: Stage, name: str, image: Callable[[], np.ndarray],
                  models: Models) -> tuple[Box | None, float]:
        """A stage's box (or None) on one photo and the ms it took, computed once."""
        per_stage = self.detections.setdefault(stage.key, {})
        if name not in per_stage:
            img = image()
            start = time.perf_counter()
            box = detect(img, stage, models) if stage.detector != "whole" else None
            per_stage[name] = [box, (time.perf_counter() - start) * 1000]
            self.tick()
        box, ms = per_stage[name]
        return (tuple(box) if box is not None else None), ms

    def descriptor(self, name: str, box: Box | None, image: Callable[[], np.ndarray],
                   models: Models) -> np.ndarray:
        """The descriptor of one photo's box, computed once."""
        key = f"{name}#{descriptor_key(box)}"
        if key not in self.descriptors:
            self.descriptors[key] = describe(image(), box, models)
            self.tick()
        return self.descriptors[key]

    def tick(self) -> None:
        """Save now and then, so an interrupted run keeps its work."""
        self.new += 1
        if self.new % 500 == 0:
            self.save()

    def save(self) -> None:
        """Write both caches atomically."""
        tmp = self.dir / "detections.json.tmp"
        tmp.write_text(json.dumps(self.detections))
        tmp.replace(self.dir / "detections.json")
        if self.descriptors:
            keys = np.array(list(self.descriptors))
            values = np.stack(list(self.descriptors.values()))
            with open(self.dir / "descriptors.tmp.npz", "wb") as f:
                np.savez(f, keys=keys, values=values)
            (self.dir / "descriptors.tmp.npz").replace(self.dir / "descriptors.npz")


# ----------------------------------------------------------------------------- running the chains


def load_image(path: Path) -> np.ndarray:
    """RGB uint8, three channels even for grey photos."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def run_chains(labels: pd.DataFrame, images: Path, chains: dict[str, list[Stage]],
               cache: Cache, models: Models, desc: str) -> dict[str, pd.DataFrame]:
    """For each chain: per photo the group, the stage that answered, detection ms, descriptor."""
    rows: dict[str, list[dict]] = {name: [] for name in chains}
    for name in tqdm(labels["filename"], desc=desc, unit="photo"):
        loaded: list[np.ndarray] = []

        def image(name: str = name, loaded: list[np.ndarray] = loaded) -> np.ndarray:
            if not loaded:
                loaded.append(load_image(images / name))
            return loaded[0]

        for chain_name, stages in chains.items():
            total_ms = 0.0
            for i, stage in enumerate(stages):  # noqa: B007 (i and stage are used below)
                box, ms = cache.detection(stage, name, image, models)
                total_ms += ms
                if box is not None or stage.detector in TERMINAL:
                    break
            group = ("none" if stage.detector in TERMINAL
                     else "found" if i == 0 else "fallback")
            rows[chain_name].append({
                "filename": name, "group": group, "stage": stage.key, "ms": total_ms,
                "x": cache.descriptor(name, box, image, models)})
    cache.save()
    return {k: pd.DataFrame(v) for k, v in rows.items()}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of k successes out of n."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def fit_head(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[object, float]:
    """StandardScaler + LogisticRegression, C by 5-fold GroupKFold accuracy."""
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        {"logisticregression__C": C_GRID}, cv=GroupKFold(n_splits=5), scoring="accuracy")
    search.fit(x, y, groups=groups)
    return search.best_estimator_, float(search.best_params_["logisticregression__C"])


def group_rows(variant: str, dataset: str, frame_: pd.DataFrame, correct: np.ndarray,
               small: np.ndarray) -> list[dict]:
    """One row per group and one for all: photos, share, accuracy [Wilson], detection ms."""
    out = []
    for group in ["found", "fallback", "none", "all"]:
        mask = np.ones(len(frame_), bool) if group == "all" else (frame_["group"] == group).values
        n, k = int(mask.sum()), int(correct[mask].sum())
        lo, hi = wilson(k, n)
        ms = frame_["ms"].values[mask]
        out.append({
            "variant": variant, "dataset": dataset, "group": group, "n": n,
            "share": n / len(frame_), "acc": k / n if n else math.nan, "lo": lo, "hi": hi,
            "ms_mean": float(ms.mean()) if n else math.nan,
            "ms_p95": float(np.percentile(ms, 95)) if n else math.nan,
            "small_n": int(small[mask].sum()),
        })
    return out


def main() -> None:
    """Run every chain on both datasets, fit a head per chain, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/facetl_face_detection"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/face_detection.json"))
    parser.add_argument("--limit", type=int, default=0, help="photos per dataset (0: all)")
    parser.add_argument("--variants", default="", help="comma-separated prefixes, e.g. a,b2")
    add_results_dir(parser)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    wanted = [v for v in args.variants.split(",") if v]
    chains = {k: v for k, v in CHAINS.items()
              if not wanted or any(k.split("_")[0] == w for w in wanted)}
    started = time.perf_counter()
    models = Models()

    celeba = pd.read_csv(args.data / "gender_celeba" / "labels.csv")
    web = pd.read_csv(args.data / "gender_web" / "labels.csv")
    if args.limit:
        celeba = celeba.sample(n=min(args.limit, len(celeba)), random_state=SEED)
        web = web.sample(n=min(args.limit, len(web)), random_state=SEED)
    celeba, web = celeba.reset_index(drop=True), web.reset_index(drop=True)
    split = GroupShuffleSplit(n_splits=1, test_size=0.1, random_state=SEED)
    train_idx, test_idx = next(split.split(celeba, groups=celeba["identity"]))

    runs = {
        "celeba": run_chains(celeba, args.data / "gender_celeba" / "images", chains,
                             Cache(args.cache, "gender_celeba"), models, "celeba"),
        "web": run_chains(web, args.data / "gender_web" / "images", chains,
                          Cache(args.cache, "gender_web"), models, "web"),
    }
    y_celeba = (celeba["gender"] == "male").values
    y_web = (web["gender"] == "male").values
    small_celeba = np.minimum(celeba["width"], celeba["height"]).values < 100
    small_web = np.minimum(web["width"], web["height"]).values < 100

    rows, summary = [], []
    for variant in chains:
        cel, wb = runs["celeba"][variant], runs["web"][variant]
        x_cel, x_web = np.stack(cel["x"].values), np.stack(wb["x"].values)
        head, c = fit_head(x_cel[train_idx], y_celeba[train_idx],
                           celeba["identity"].values[train_idx])
        cel_test = cel.iloc[test_idx].reset_index(drop=True)
        ok_test = head.predict(x_cel[test_idx]) == y_celeba[test_idx]
        ok_web = head.predict(x_web) == y_web
        vrows = (group_rows(variant, "celeba_test", cel_test, ok_test, small_celeba[test_idx])
                 + group_rows(variant, "web", wb, ok_web, small_web))
        rows += vrows
        groups = [r for r in vrows if r["group"] != "all" and r["n"] >= 20]
        small_found = (wb["group"].values[small_web] != "none").mean() if small_web.any() else 0
        summary.append({
            "variant": variant, "C": c,
            "celeba_acc": next(r["acc"] for r in vrows
                               if r["dataset"] == "celeba_test" and r["group"] == "all"),
            "web_acc": next(r["acc"] for r in vrows
                            if r["dataset"] == "web" and r["group"] == "all"),
            "worst_group_acc": min(r["acc"] for r in groups),
            "celeba_all_detected": float((cel["group"] != "none").mean()),
            "web_detected": float((wb["group"] != "none").mean()),
            "web_small_detected": float(small_found),
            "celeba_ms_mean": float(cel["ms"].mean()), "web_ms_mean": float(wb["ms"].mean()),
            "web_ms_p95": float(np.percentile(wb["ms"], 95)),
        })

    table = pd.DataFrame(rows)
    shown = table.assign(
        share=(100 * table["share"]).round(1),
        acc=[f"{100 * a:5.1f} [{100 * lo:5.1f}, {100 * hi:5.1f}]" if n else "-"
             for a, lo, hi, n in zip(table["acc"], table["lo"], table["hi"], table["n"],
                                     strict=True)],
        ms_mean=table["ms_mean"].round(1), ms_p95=table["ms_p95"].round(1),
    ).drop(columns=["lo", "hi"])
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(shown.to_string(index=False))
        print()
        print(pd.DataFrame(summary).round(3).to_string(index=False))
    wall = time.perf_counter() - started
    print(f"\nwall time {wall:.0f} s; descriptor+landmarks cost not included in ms columns")
    config = {"limit": args.limit, "seed": SEED, "c_grid": C_GRID, "chip": CHIP,
              "chains": {k: [s.key for s in v] for k, v in chains.items()},
              "celeba_train": int(len(train_idx)), "celeba_test": int(len(test_idx)),
              "web": int(len(web)), "wall_s": wall}
    args.out.write_text(json.dumps({"config": config, "rows": rows, "summary": summary},
                                   indent=1, default=float).replace("NaN", "null"))
    print(f"wrote {args.out}")
    settings = {k: v for k, v in config.items() if k != "chains"}
    for chain in summary:
        variant = chain["variant"]
        figures = {"summary": chain, "rows": [r for r in rows if r["variant"] == variant],
                   "stages": config["chains"][variant], "config": settings}
        key = variant + (f"-n{args.limit}" if args.limit else "")
        print(f"recorded {key} in {record('face_detection', key, figures, args.results_dir)}")


if __name__ == "__main__":
    main()
