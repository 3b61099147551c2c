"""Issue 14's GPU check: the pipeline's model code on a GPU under JAX or PyTorch, in minutes.

Made for a machine with Python, JAX and/or PyTorch and the usual scientific packages (numpy,
scipy, h5py, opencv, pandas) but no TensorFlow, no keras and no network. Two steps:

1. Here (network, TensorFlow): `benchmarks/gpu_check_prepare.sh` fills `build/gpu_check/`
   (ignored by git, about 40 MB): keras' wheels, the MobileNetV2 weights file, 512 real photos
   with their labels when ../shared has them, and the CPU TensorFlow reference features
   (`gpu_check.py --make-reference`).
2. There, from the repository root, `build/gpu_check` carried along:

       python3 benchmarks/gpu_check.py --out OUT_DIR [--backend jax|torch]

   It installs the wheels into a temporary folder (`pip install --no-index --find-links`), then
   (1) extracts features with MobileNetV2 (the shipped weights) and VGG16 (seeded random
   weights, the same numbers on every machine) at 224 and 300 px, and dlib's face network in
   Keras (seeded too) at its 150 px, for `--count` images, in
   float32, bfloat16 and float16, printing images/s and the cosine agreement with the CPU
   TensorFlow features of the same images; (2) trains the chapter head on MobileNetV2 features
   a few epochs, and fine-tunes the end-to-end model one epoch with the pipeline's trainer
   (`facetl.models.finetune.finetune`) with params.yaml's gender settings, printing images/s;
   (3) writes every figure to `OUT_DIR/gpu_check.json`, which `gpu_check_record.py` records
   back here in benchmarks/results/gpu_check.json.

facetl is imported from this repository's src/; nothing needs tensorflow, dvc or dvclive.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FILES = REPO / "build/gpu_check"
SHARED = REPO.parent / "shared"
SHARED_MOBILENET = SHARED / "weights/mobilenet_v2_torchvision_imagenet_notop.weights.h5"
CELEBA = SHARED / "data/gender_celeba"
MOBILENET_FILE = "mobilenet_v2.weights.h5"
WHEELS = ("keras", "namex", "optree")  # what such a machine lacks (keras' other deps are there)
BACKBONES = ("mobilenet_v2", "vgg16", "dlib_face")
# dlib's face network runs at its chip size (at others it only resizes inside the network); its
# weights are seeded like VGG16's, as dlib's 22 MB file would not fit the 64 MiB carried.
OWN_SIZES = {"dlib_face": [150]}
PRECISIONS = ("float32", "bfloat16", "float16")
SEED = 14
PHOTOS = 512  # real photos packed by --make-reference (89x109 CelebA: about 15 MB)
VALIDATION = 64  # of them, held out for the training checks' validation accuracy


def log(message: str) -> None:
    print(message, flush=True)


# --- set-up (before keras is imported) ------------------------------------------------------


def install_wheels(files: Path) -> list[str]:
    """The prepared wheels into a fresh folder put first on sys.path; returns what came from
    there. A package without a wheel for this Python is taken from the machine if it has it."""
    wheels = files / "wheels"
    if not any(wheels.glob("*.whl")):
        if importlib.util.find_spec("keras") is None:  # not imported: the backend is not set yet
            sys.exit(f"no keras here and no wheels in {wheels}: run "
                     "benchmarks/gpu_check_prepare.sh where there is a network, and carry the "
                     "folder along")
        log(f"no wheels in {wheels}: using the installed keras")
        return []
    target = Path(tempfile.mkdtemp(prefix="gpu_check_site_"))
    installed = []
    for package in WHEELS:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                               "--no-deps", "--find-links", str(wheels), "--target",
                               str(target), package], capture_output=True, text=True)
        if done.returncode == 0:
            installed.append(package)
        else:
            log(f"{package}: no wheel for this Python in {wheels}; using the installed one "
                f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'})")
    sys.path.insert(0, str(target))
    return installed


def use_backend(name: str) -> None:
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(REPO / "src"))


# --- inputs that are the same on every machine --------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mobilenet_weights(given: str | None, files: Path) -> Path | None:
    for candidate in (given, files / MOBILENET_FILE, SHARED_MOBILENET):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def seeded_weights(model, seed: int) -> None:
    """He-normal kernels, zero biases, identity batch norms, from numpy's generator: random
    weights that are the same numbers on every machine and backend (Keras' own initialisers
    draw from each backend's generator). Only VGG16's are used (59 MB would not travel)."""
    for number, variable in enumerate(model.weights):
        name, shape = variable.path.split("/")[-1], tuple(variable.shape)
        if name in ("kernel", "depthwise_kernel"):
            fan_in = int(np.prod(shape[:2] if name == "depthwise_kernel" else shape[:-1]))
            rng = np.random.default_rng([seed, number])
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        elif name in ("gamma", "moving_variance"):
            value = np.ones(shape, "float32")
        else:  # bias, beta, moving_mean
            value = np.zeros(shape, "float32")
        variable.assign(value)


def load_photos(files: Path, images: str | None, labels: str | None
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """Real photos (packed by --make-reference, or --images) and labels; else synthetic."""
    if images:
        photos = np.load(images)
        targets = np.load(labels) if labels else np.zeros(len(photos))
        return photos, targets.astype("float32"), f"--images {images}"
    if (files / "photos.npy").is_file():
        return (np.load(files / "photos.npy"), np.load(files / "labels.npy").astype("float32"),
                "CelebA photos (real labels)")
    rng = np.random.default_rng(SEED)
    return (rng.integers(0, 256, (PHOTOS, 109, 89, 3), dtype=np.uint8),
            rng.integers(0, 2, PHOTOS).astype("float32"), "synthetic pixels (random labels)")


def sizes_of(name: str, sizes: list[int]) -> list[int]:
    return OWN_SIZES.get(name, sizes)


def at_size(photos: np.ndarray, size: int, count: int) -> np.ndarray:
    """`count` images at size x size: the photos resized, repeated as often as needed."""
    from facetl.data.images import resize_square

    resized = np.stack([resize_square(photo, size) for photo in photos[:count]])
    return resized[np.arange(count) % len(resized)]


def build(name: str, size: int, precision: str, weights: Path | None, base=None):
    """The pipeline's extractor; `base` (the float32 one) gives its weights to the others."""
    from facetl.models.backbones import build_extractor

    if name == "mobilenet_v2" and weights is not None:
        model = build_extractor(name, str(weights), size, "torch", precision)  # torchvision's
    else:
        model = build_extractor(name, "none", size, None, precision)
        if base is None:
            seeded_weights(model, SEED)
    if base is not None:
        model.set_weights(base.get_weights())
    return model


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype("float64"), b.reshape(len(b), -1).astype("float64")
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                       1e-30)


# --- the CPU reference (here, under TensorFlow) -------------------------------------------


def make_reference(args: argparse.Namespace) -> None:
    files = Path(args.files)
    files.mkdir(parents=True, exist_ok=True)
    weights = mobilenet_weights(args.mobilenet_weights, files)
    if weights is not None and weights != files / MOBILENET_FILE:
        shutil.copyfile(weights, files / MOBILENET_FILE)
        weights = files / MOBILENET_FILE
    if CELEBA.is_dir() and not args.images and not (files / "photos.npy").is_file():
        pack_celeba(files)
    photos, _, source = load_photos(files, args.images, args.labels)
    arrays, meta = {}, {"seed": SEED, "source": source, "count": args.reference_count,
                        "mobilenet_weights_sha256": sha256(weights) if weights else None}
    import keras

    from facetl.models import backend

    meta |= {"backend": backend.NAME, "keras": keras.__version__}
    for name in args.backbones:
        for size in sizes_of(name, args.sizes):
            images = at_size(photos, size, args.reference_count)
            arrays[f"images_{size}"] = images
            model = build(name, size, "float32", weights)
            arrays[f"features_{name}_{size}"] = backend.compiled_forward(model)(images)
            log(f"reference {name} {size}px: {arrays[f'features_{name}_{size}'].shape}")
    np.savez(files / "reference.npz", **arrays)
    (files / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"wrote {files / 'reference.npz'} ({(files / 'reference.npz').stat().st_size >> 20} MB)")


def pack_celeba(files: Path) -> None:
    """The first PHOTOS CelebA photos (89x109, sorted by name) and their labels (male = 1)."""
    import pandas as pd

    from facetl.data.images import read_image

    table = pd.read_csv(CELEBA / "labels.csv").sort_values("filename").head(PHOTOS)
    photos = np.stack([read_image(CELEBA / "images" / name) for name in table["filename"]])
    np.save(files / "photos.npy", photos)
    np.save(files / "labels.npy", (table["gender"] == "male").to_numpy().astype("uint8"))
    log(f"packed {len(photos)} CelebA photos {photos.shape[1:]} into {files}")


# --- the checks (there, under JAX or PyTorch) ---------------------------------------------


def extraction(args, photos, weights, reference, reference_meta) -> list[dict]:
    from facetl.models import backend

    rows = []
    for name in args.backbones:
        for size in sizes_of(name, args.sizes):
            images = at_size(photos, size, args.count)
            base = None
            for precision in args.precisions:
                start = time.perf_counter()
                model = build(name, size, precision, weights, base)
                base = model if base is None else base
                forward = backend.compiled_forward(model)
                built = time.perf_counter()
                forward(images[:args.batch])  # compiles for this batch shape
                compiled = time.perf_counter()
                for first in range(0, len(images), args.batch):
                    forward(images[first:first + args.batch])
                seconds = time.perf_counter() - compiled
                row = {"backbone": name, "size": size, "precision": precision,
                       "images": len(images), "batch": args.batch,
                       "images_per_s": round(len(images) / seconds, 1),
                       "build_s": round(built - start, 2), "compile_s": round(compiled - built, 2)}
                row |= agreement(forward, name, size, weights, reference, reference_meta)
                rows.append(row)
                log(" ".join(f"{k}={v}" for k, v in row.items()))
    return rows


def agreement(forward, name, size, weights, reference, meta) -> dict:
    """Cosine between these features and the CPU TensorFlow float32 ones, image by image."""
    key = f"features_{name}_{size}"
    if reference is None or key not in reference:
        return {"agreement": "no reference"}
    if name == "mobilenet_v2" and meta.get("mobilenet_weights_sha256") != (
            sha256(weights) if weights else None):
        return {"agreement": "reference made with other MobileNetV2 weights"}
    expected = reference[key]
    got = np.concatenate([forward(batch) for batch in np.array_split(
        reference[f"images_{size}"], max(1, len(expected) // 8))])
    similarity = cosines(got, expected)
    error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    return {"cosine_min": float(similarity.min()), "cosine_mean": float(similarity.mean()),
            "relative_l2": float(error)}


def step_timer(batch_sizes: list[int]):
    """A Keras callback: images/s over each epoch's training steps after its first (which
    compiles), the step's loss read back so that each step has finished when timed."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs: list[dict] = []
            self.times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.times = []

        def on_train_batch_end(self, batch, logs=None) -> None:
            if logs and "loss" in logs:
                float(logs["loss"])
            self.times.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None) -> None:
            steps = len(self.times)
            rate = (round(sum(batch_sizes[1:steps]) / (self.times[-1] - self.times[0]), 1)
                    if steps > 1 else None)
            self.epochs.append({"steps": steps, "images_per_s": rate,
                                **{k: round(float(v), 4) for k, v in (logs or {}).items()}})

    return StepTimer()


def batch_sizes(count: int, batch: int) -> list[int]:
    return [min(batch, count - first) for first in range(0, count, batch)]


def settings() -> tuple[dict, dict]:
    """params.yaml's gender head and fine-tuning settings (the pipeline's own), else defaults."""
    import yaml

    head = {"batch_size": 16, "learning_rate": 1e-3, "dropout": 0.5}
    tune = {"unfreeze": 30, "batch_size": 32, "learning_rate": 1e-4, "warmup_epochs": 0.5,
            "optimizer": "adamw", "weight_decay": 0.004}
    try:
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        head |= {k: params["train"]["gender"][k] for k in head}
        tune |= {k: params["finetune"]["gender"][k] for k in tune}
    except (OSError, KeyError, TypeError) as exc:
        log(f"params.yaml: {exc!r}; using the defaults")
    return head, tune


def training(args, photos, labels, weights) -> dict:
    """The chapter head on MobileNetV2 features, then one fine-tuning epoch end to end, with
    params.yaml's gender settings (batch sizes, learning rates, layers unfrozen, warm-up)."""
    import keras

    from facetl.models import backend, finetune
    from facetl.models.backbones import get_spec
    from facetl.models.heads import chapter_head
    from facetl.models.precision import (
        TRAINED_BF16_WINS_WITH,
        computing_in,
        hidden_layers,
        resolve_precision,
    )
    from facetl.models.saving import end_to_end
    from facetl.models.training import FeatureBatches, feature_max

    size, name = 224, "mobilenet_v2"
    head_cfg, tune_cfg = settings()
    if args.train_photos:
        photos, labels = photos[:args.train_photos], labels[:args.train_photos]
    held = min(VALIDATION, len(photos) // 4)
    train_photos, val_photos = photos[:-held], photos[-held:]
    keras.utils.set_random_seed(SEED)
    extractor = build(name, size, "float32", weights)
    forward = backend.compiled_forward(extractor)
    images = np.concatenate([at_size(train_photos, size, len(train_photos)),
                             at_size(val_photos, size, held)])
    features = np.concatenate([forward(images[i:i + args.batch])
                               for i in range(0, len(images), args.batch)])
    targets = labels[:, None]  # the photos' order: train, then validation
    train_idx, val_idx = np.arange(len(train_photos)), np.arange(len(train_photos), len(images))

    # Each in the precision the pipeline's `auto` picks on this machine (mixed on a GPU).
    head_precision = resolve_precision("auto", TRAINED_BF16_WINS_WITH["chapter_head"])
    tune_precision = resolve_precision("auto", get_spec(name).bf16_wins_with)
    batch = head_cfg["batch_size"]
    head = chapter_head(features.shape[1:], get_spec(name).head_blocks, 1, "sigmoid",
                        feature_max(features, train_idx), head_cfg["dropout"])
    loader = FeatureBatches(features, targets, train_idx, batch, shuffle=True, seed=SEED)
    timer = step_timer(batch_sizes(len(train_idx), batch))
    start = time.perf_counter()
    with computing_in(hidden_layers(head), head_precision):  # as training.fit runs it
        head.compile(optimizer=keras.optimizers.Adam(head_cfg["learning_rate"]),
                     loss="binary_crossentropy", metrics=["accuracy"])
        head.fit(loader, validation_data=FeatureBatches(features, targets, val_idx, batch),
                 epochs=args.head_epochs, verbose=0, callbacks=[timer])
    result = {"head": {"features": f"{name} {size}px", "train": len(train_idx),
                       "precision": head_precision, "validation": len(val_idx), "batch": batch,
                       "seconds": round(time.perf_counter() - start, 2), "epochs": timer.epochs}}
    log(f"head: {result['head']}")

    # Fine-tuning: the pipeline's trainer on `train_count` images (the train photos repeated).
    batch = tune_cfg["batch_size"]
    train_count = max(batch, (args.finetune_count // batch) * batch)  # no partial batch
    model = end_to_end(extractor, head, f"gender_{name}")
    unfrozen = finetune.unfreeze_top(model, tune_cfg["unfreeze"])
    tune_images = np.concatenate([at_size(train_photos, size, train_count), images[val_idx]])
    tune_targets = np.concatenate([targets[np.arange(train_count) % len(train_photos)],
                                   targets[val_idx]])
    timer = step_timer(batch_sizes(train_count, batch))
    plain = finetune.callbacks
    finetune.callbacks = lambda cfg, live_dir: [*plain(cfg, live_dir), timer]
    cfg = tune_cfg | {"epochs": 1, "patience": 1, "loss": "binary_crossentropy",
                      "metrics": ["accuracy"]}
    os.environ["FACETL_WORKERS"] = str(args.workers)  # the trainer's loader threads
    start = time.perf_counter()
    try:
        finetune.finetune(model, tune_images, tune_targets, np.arange(train_count),
                          np.arange(train_count, len(tune_images)), cfg, SEED,
                          precision=tune_precision)
    finally:
        finetune.callbacks = plain
    result["finetune"] = {"model": f"{name} {size}px + chapter head", "train": train_count,
                          "precision": tune_precision,
                          "unfrozen_layers": len(unfrozen), "settings": cfg,
                          "epoch_seconds": round(time.perf_counter() - start, 2),
                          "epochs": timer.epochs}
    log(f"finetune: {result['finetune']}")
    return result


def versions() -> dict:
    import keras

    from facetl.models import backend

    found = {"python": platform.python_version(), "keras": keras.__version__,
             "keras_from": str(Path(keras.__file__).parent.parent), "backend": backend.NAME,
             "numpy": np.__version__}
    library = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}[backend.NAME]
    found[library] = __import__(library).__version__
    if backend.NAME == "jax":
        import jax

        found["devices"] = [str(device) for device in jax.devices()]
    return found


def check(args: argparse.Namespace) -> None:
    files = Path(args.files)
    installed = [] if args.no_install else install_wheels(files)
    use_backend(args.backend)
    from facetl.models import backend

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = mobilenet_weights(args.mobilenet_weights, files)
    photos, labels, source = load_photos(files, args.images, args.labels)
    reference, reference_meta = None, {}
    if (files / "reference.npz").is_file() and not args.no_reference:
        reference = dict(np.load(files / "reference.npz"))
        reference_meta = json.loads((files / "reference.json").read_text())
    report = {"gpu": backend.gpu_name(), "gpu_capability": backend.gpu_capability(),
              "versions": versions(), "installed_from_wheels": installed, "photos": source,
              "mobilenet_weights": str(weights) if weights else "seeded random",
              "reference": reference_meta or None, "args": vars(args)}
    log(f"{report['gpu'] or 'no GPU'}: {json.dumps(report['versions'])}")
    start = time.perf_counter()
    report["extraction"] = extraction(args, photos, weights, reference, reference_meta)
    if not args.no_training:
        report["training"] = training(args, photos, labels, weights)
    report["seconds"] = round(time.perf_counter() - start, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"wrote {out / 'gpu_check.json'} after {report['seconds']} s")


def command_line() -> argparse.ArgumentParser:
    """The command line; gpu_check_record.py reads its defaults to rebuild a run's command."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for gpu_check.json (required to check)")
    parser.add_argument("--backend", choices=["jax", "torch"], default="jax")
    parser.add_argument("--files", default=str(FILES), help="the prepared folder")
    parser.add_argument("--make-reference", action="store_true",
                        help="here, under TensorFlow: pack photos and the CPU reference features")
    parser.add_argument("--mobilenet-weights", help="weights file (default: the prepared copy, "
                        "else ../shared's, else seeded random)")
    parser.add_argument("--images", help=".npy of uint8 (N, H, W, 3) photos (default: the "
                        "prepared CelebA photos, else synthetic)")
    parser.add_argument("--labels", help=".npy of N 0/1 labels for --images")
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 300])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--count", type=int, default=2048, help="images per extraction")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reference-count", type=int, default=8)
    parser.add_argument("--head-epochs", type=int, default=3)
    parser.add_argument("--finetune-count", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=4, help="fine-tuning loader threads")
    parser.add_argument("--train-photos", type=int, help="use only this many photos for the "
                        "training checks (a quick run on a CPU)")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="use the installed keras")
    return parser


def main() -> None:
    parser = command_line()
    args = parser.parse_args()
    if args.make_reference:
        use_backend("tensorflow")
        make_reference(args)
    elif not args.out:
        parser.error("--out is required (or --make-reference)")
    else:
        check(args)


if __name__ == "__main__":
    main()
