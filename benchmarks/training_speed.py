"""Every trained network's speed against this machine: seconds per epoch, achieved GFLOP/s
(counted from the model by facetl.models.speed) and the share of the float32 matmul peak
measured in the same run, so the figures are ratios that hold on a shared CPU.

Each network trains the way its stage trains it (facetl.models.training.fit on a memory-mapped
feature file; facetl.models.finetune.finetune on uint8 photos, every backbone layer unfrozen),
on random inputs with random weights (speed does not depend on their values). The chapter head
runs in both forms, the chapter's Conv2D and the training form the stages use (PatchConv2D),
and in the leads of issue 33 (the features in memory, XLA, several steps per call, a larger
batch), alternating over `--rounds` so every variant sees the same load; each figure is the
median over rounds of an epoch's time, the first (compiling) epoch left out. The peak is
measured before and after every network's run, and each run's share is against the higher of
its two: on a CPU shared with other work, the load its run saw.

    PYTHONPATH=. python benchmarks/training_speed.py [--networks NAME ...] [--rounds 2]
        [--epochs 3] [--results-dir DIR]

Records benchmarks/results/training_speed.json: `peak-float32` and one entry per
`<network>-<variant>`, with `-jax` or `-torch` after it when KERAS_BACKEND names that backend
(the peak then is that backend's own matmul); `table` renders it (docs/backends-gpu.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from benchmarks.results import add_results_dir, record
from benchmarks.tables_format import NOT_MEASURED, Results
from facetl.gender.scratch import resize_batch, scratch_cnn
from facetl.keypoints.heads import keypoint_head
from facetl.models.backbones import build_extractor
from facetl.models.finetune import finetune, unfreeze_top
from facetl.models.heads import chapter_head
from facetl.models.saving import end_to_end
from facetl.models.speed import SpeedMeter, machine, measure_peak
from facetl.models.training import fit

COMMAND = "PYTHONPATH=. python benchmarks/training_speed.py"
HEAD_CFG = {"learning_rate": 1e-3, "loss": "binary_crossentropy"}  # the chapter's Adam 1e-3
TUNE_CFG = {"learning_rate": 1e-4, "optimizer": "adamw", "weight_decay": 0.004, "patience": 9,
            "loss": "binary_crossentropy"}  # params.yaml's finetune.gender


@dataclass(frozen=True)
class Network:
    """`run(rows, epochs) -> SpeedMeter`: one training as the stage runs it, timed."""

    run: Callable[[int, int], SpeedMeter]
    batch: int
    what: str
    epochs: int | None = None  # fewer than --epochs for the slow ones


def memmap(tmp: Path, name: str, shape: tuple[int, ...], rows: int, dtype: str,
           scale: float) -> np.ndarray:
    """Random inputs written to a .npy and opened as the stages open theirs (mmap_mode="r")."""
    path = tmp / f"{name}-{rows}.npy"
    if not path.is_file():
        out = np.lib.format.open_memmap(path, "w+", dtype, (rows, *shape))
        rng = np.random.default_rng(0)
        for start in range(0, rows, 64):
            block = rng.random((min(64, rows - start), *shape), dtype="float32") * scale
            out[start:start + len(block)] = block.astype(dtype)
        out.flush()
    return np.load(path, mmap_mode="r")


def split(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The stages' 9:1 fit/validation split of `rows` examples."""
    val = max(1, rows // 10)
    return np.arange(rows - val), np.arange(rows - val, rows)


def head_run(tmp: Path, shape: tuple[int, ...], build: Callable[[], keras.Model], batch: int,
             loss: str = "binary_crossentropy", lead: str | None = None
             ) -> Callable[[int, int], SpeedMeter]:
    """A head on cached features: `fit` from the memmap, or (`lead`) Keras' own fit on the
    features in memory, with XLA, several steps per call, or batch 128."""
    def run(rows: int, epochs: int) -> SpeedMeter:
        features = memmap(tmp, "x".join(map(str, shape)), shape, rows, "float32", 5.0)
        keras.utils.set_random_seed(0)
        model = build()
        targets = np.random.default_rng(1).random((rows, model.output_shape[-1]),
                                                  dtype="float32").round()
        fit_rows, val_rows = split(rows)
        meter = SpeedMeter()
        if lead is None:
            fit(model, features, targets, fit_rows, val_rows,
                HEAD_CFG | {"loss": loss, "batch_size": batch, "epochs": epochs}, 0, None,
                speed=meter)
            return meter
        step_batch = 128 if lead == "batch128" else batch
        meter.expect(model, len(fit_rows), len(val_rows), "float32")
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss,
                      jit_compile=lead == "xla",
                      steps_per_execution=16 if lead == "steps16" else 1)
        x = np.asarray(features)
        model.fit(x[fit_rows], targets[fit_rows], validation_data=(x[val_rows], targets[val_rows]),
                  batch_size=step_batch, epochs=epochs, verbose=0, callbacks=[meter])
        return meter
    return run


def scratch_run(tmp: Path, size: int, batch: int) -> Callable[[int, int], SpeedMeter]:
    """The scratch CNN as its stage trains it: the prepared 300 px photos resized per batch."""
    def run(rows: int, epochs: int) -> SpeedMeter:
        images = memmap(tmp, "photos300", (300, 300, 3), rows, "uint8", 255.0)
        keras.utils.set_random_seed(0)
        model = scratch_cnn(size, 2, 255.0)
        targets = (np.arange(rows) % 2).astype("float32")
        meter = SpeedMeter()
        fit(model, images, targets, *split(rows),
            HEAD_CFG | {"batch_size": batch, "epochs": epochs}, 0, None,
            lambda x: resize_batch(x, size), speed=meter)
        return meter
    return run


def finetune_run(tmp: Path, backbone: str, size: int, batch: int
                 ) -> Callable[[int, int], SpeedMeter]:
    """Fine-tuning as finetune_gender runs it, every weight layer of the backbone trainable,
    without augmentation (this measures the network, not the augmentation threads)."""
    def run(rows: int, epochs: int) -> SpeedMeter:
        images = memmap(tmp, f"photos{size}", (size, size, 3), rows, "uint8", 255.0)
        keras.utils.set_random_seed(0)
        extractor = build_extractor(backbone, "none", size)
        features = keras.Input(extractor.output_shape[1:])
        pooled = (keras.layers.GlobalAveragePooling2D()(features) if len(features.shape) == 4
                  else features)  # dlib_face ends in its 128-d descriptor
        head = keras.Model(features, keras.layers.Dense(1, activation="sigmoid")(pooled))
        model = end_to_end(extractor, head, backbone)
        unfreeze_top(model, -1)
        meter = SpeedMeter()
        finetune(model, images, (np.arange(rows) % 2).astype("float32"), *split(rows),
                 TUNE_CFG | {"batch_size": batch, "epochs": epochs}, 0, speed=meter)
        return meter
    return run


def networks(tmp: Path) -> dict[str, tuple[Network, int]]:
    """name -> (network, examples per epoch). Feature maps at the measured routes' sizes."""
    def chapter(shape: tuple[int, ...], blocks: int, patches: bool) -> Callable[[], keras.Model]:
        return lambda: chapter_head(shape, blocks, 1, "sigmoid", 5.0, patches=patches)

    mnv2 = (7, 7, 1280)  # MobileNetV2 at 224 px
    found = {
        "chapter_head-mobilenet_v2-224-conv2d": (Network(head_run(
            tmp, mnv2, chapter(mnv2, 1, False), 16), 16, "the chapter's Conv2D"), 640),
        "chapter_head-mobilenet_v2-224-patches": (Network(head_run(
            tmp, mnv2, chapter(mnv2, 1, True), 16), 16, "PatchConv2D (the stage)"), 640),
    }
    for lead, what in (("memory", "in memory, Keras fit"), ("xla", "in memory, XLA"),
                       ("steps16", "in memory, 16 steps per call"),
                       ("batch128", "in memory, batch 128")):
        found[f"chapter_head-mobilenet_v2-224-patches-{lead}"] = (Network(head_run(
            tmp, mnv2, chapter(mnv2, 1, True), 16, lead=lead), 128 if lead == "batch128" else 16,
            f"PatchConv2D, {what}"), 640)
    vgg = (9, 9, 512)  # VGG16 at 300 px
    found |= {
        "chapter_head-vgg16-300-conv2d": (Network(head_run(
            tmp, vgg, chapter(vgg, 1, False), 16), 16, "the chapter's Conv2D"), 640),
        "chapter_head-vgg16-300-patches": (Network(head_run(
            tmp, vgg, chapter(vgg, 1, True), 16), 16, "PatchConv2D (the stage)"), 640),
        "keypoint_head-mobilenet_v2-192": (Network(head_run(
            tmp, (6, 6, 1280), lambda: keypoint_head((6, 6, 1280), "gdconv", 128, 0.0,
                                                     np.full(136, 0.5)), 32, loss="mae"),
            32, "gdconv head (the stage)"), 960),
        "scratch_cnn-50": (Network(scratch_run(tmp, 50, 32), 32, "the stage"), 640),
        "finetune-vgg16-224": (Network(finetune_run(tmp, "vgg16", 224, 32), 32,
                                       "every layer trainable", epochs=2), 40),
        "finetune-mobilenet_v2-224": (Network(finetune_run(tmp, "mobilenet_v2", 224, 32), 32,
                                              "every layer trainable", epochs=2), 128),
        "finetune-dlib_face-150": (Network(finetune_run(tmp, "dlib_face", 150, 32), 32,
                                           "every layer trainable", epochs=2), 128),
    }
    return found


def steady(meter: SpeedMeter) -> tuple[float, float]:
    """(seconds of the median epoch after the first, its achieved FLOP/s)."""
    seconds = float(np.median(meter.epoch_seconds[1:] or meter.epoch_seconds))
    work = meter.n_train * meter.train_flops + meter.n_val * meter.val_flops
    return seconds, work / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    tmp = Path(tempfile.mkdtemp(prefix="training_speed-"))
    every = networks(tmp)
    parser.add_argument("--networks", nargs="+", default=list(every), choices=list(every))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="examples per epoch, as a multiple of each network's default")
    add_results_dir(parser)
    args = parser.parse_args()
    peaks = [measure_peak("float32")]
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in args.networks}
    meters: dict[str, SpeedMeter] = {}
    for round_ in range(args.rounds):  # alternate, so every variant sees the same load
        order = args.networks if round_ % 2 == 0 else args.networks[::-1]
        for name in order:
            network, rows = every[name]
            start = time.perf_counter()
            meters[name] = network.run(max(20, round(rows * args.scale)),
                                       network.epochs or args.epochs)
            peaks.append(measure_peak("float32"))
            times[name].append((*steady(meters[name]), max(peaks[-2:])))
            seconds, achieved, peak = times[name][-1]
            print(f"{name} round {round_}: {seconds:.2f} s/epoch, {achieved / 1e9:.1f} GFLOP/s, "
                  f"{achieved / peak:.0%} of {peak / 1e9:.0f} "
                  f"({time.perf_counter() - start:.0f} s)",
                  flush=True)
    suffix = "" if keras.backend.backend() == "tensorflow" else f"-{keras.backend.backend()}"
    path = record("training_speed", f"peak-float32{suffix}", {
        "max_gflop_per_s": max(peaks) / 1e9, "min_gflop_per_s": min(peaks) / 1e9,
        "median_gflop_per_s": float(np.median(peaks)) / 1e9, "measurements": len(peaks),
        "matmul": 2048}, args.results_dir)
    for name in args.networks:
        network, meter = every[name][0], meters[name]
        seconds = float(np.median([s for s, _, _ in times[name]]))
        achieved = float(np.median([f for _, f, _ in times[name]]))
        share = float(np.median([f / p for _, f, p in times[name]]))
        figures: dict[str, Any] = {
            "what": network.what, "batch": network.batch, "precision": meter.precision,
            "examples_per_epoch": meter.n_train + meter.n_val,
            "gflop_per_example_step": meter.train_flops / 1e9,
            "seconds_per_epoch": seconds,
            "examples_per_s": (meter.n_train + meter.n_val) / seconds,
            "gflop_per_s": achieved / 1e9, "share_of_peak": share,
            "peaks_gflop_per_s": [p / 1e9 for _, _, p in times[name]],
            "rounds": args.rounds, "epochs": network.epochs or args.epochs, "cpu": machine(),
            "backend": keras.backend.backend()}
        print(f"{name}: {achieved / 1e9:.1f} GFLOP/s, {share:.0%} of the float32 peak",
              flush=True)
        path = record("training_speed", name + suffix, figures, args.results_dir)
    print(f"recorded in {path}")


def share(value: float) -> str:
    return f"{100 * value:.0f}%" if value >= 0.01 else f"{100 * value:.2f}%"


def table(results: Results) -> str:
    """docs/backends-gpu.md's table: one row per network and variant, from the results file."""
    entries = results("training_speed")
    rows = {name: entry for name, entry in entries.items() if not name.startswith("peak-")}
    if not rows:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    lines = ["| network | how it trains | backend | batch | s per epoch (examples) | GFLOP/s | "
             "share of float32 peak |", "|---|---|---|---|---|---|---|"]
    for name, entry in rows.items():
        f = entry["figures"]
        lines.append(f"| {name} | {f['what']} | {f.get('backend', 'tensorflow')} | {f['batch']} | "
                     f"{f['seconds_per_epoch']:.2f} "
                     f"({f['examples_per_epoch']}) | {f['gflop_per_s']:.1f} | "
                     f"{share(f['share_of_peak'])} |")
    peaks = [p for entry in rows.values() for p in entry["figures"]["peaks_gflop_per_s"]]
    span = f"{min(peaks):.0f}-{max(peaks):.0f}"
    sources = sorted({f"{e['provenance']['machine']}, commit {e['provenance']['commit']}, "
                      f"{e['provenance']['date']}" for e in entries.values()})
    return ("\n".join(lines) + "\n\nEpochs after the first (median over alternating rounds); "
            "GFLOP/s counted from the model (forward and backward, "
            "`facetl.models.speed`); each share is against the float32 peak (the best 2048² "
            "matmul, in that backend) measured just before or after that network's run, "
            f"{span} GFLOP/s over the runs as other work came and went. Measured with "
            f"`{COMMAND}` on: {'; '.join(sources)}.\n")


if __name__ == "__main__":
    main()
