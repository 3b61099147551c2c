"""Fine-tuning step time per compute precision: does mixed precision win on this machine?

Times training steps as the pipeline's fine-tuning trainer runs them (`facetl.models.finetune`:
the backbone unfrozen, AdamW, the backbone computing in the precision asked for) on random images
with random weights (speed does not depend on their values), in ONE run per backbone so the
ratios compare like with like. `finetune.*.precision: auto` picks from what this measures:
float32 on CPUs where bfloat16 is slower for the backbone, mixed precision on a GPU.

    PYTHONPATH=. python benchmarks/finetune_precision.py [--backbones mobilenet_v2 vgg16]
        [--size 160] [--steps 8] [--precisions float32 bfloat16] [--results-dir DIR]

Records benchmarks/results/finetune_precision.json, one entry per `<backbone>-<size>-<precision>`.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from benchmarks.results import add_results_dir, record
from facetl.models.backbones import build_extractor
from facetl.models.export import end_to_end
from facetl.models.finetune import backbone_precision, optimizer, unfreeze_top


class StepTimes(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self.start)


BATCH = 32


def step_seconds(name: str, size: int, steps: int, precision: str, batch: int = BATCH) -> float:
    """Median seconds of a training step, the first two (tracing, kernel set-up) left out."""
    keras.utils.set_random_seed(0)
    extractor = build_extractor(name, "none", size)
    features = keras.Input(extractor.output_shape[1:])
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    head = keras.Model(features, keras.layers.Dense(1, activation="sigmoid")(pooled), name="head")
    model = end_to_end(extractor, head, name)
    unfreeze_top(model, -1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * (steps + 2), size, size, 3)).astype("float32")
    labels = rng.integers(0, 2, len(images)).astype("float32")
    adamw = optimizer({"learning_rate": 1e-4, "epochs": 1, "optimizer": "adamw",
                       "weight_decay": 0.004}, steps + 2)
    if precision == "float16":
        adamw = keras.optimizers.LossScaleOptimizer(adamw)
    times = StepTimes()
    with backbone_precision(model, precision):  # as the trainer runs it
        model.compile(optimizer=adamw, loss="binary_crossentropy")
        model.fit(images, labels, batch_size=batch, epochs=1, verbose=0, callbacks=[times])
    return float(np.median(times.seconds[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", nargs="+", default=["mobilenet_v2"])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    add_results_dir(parser)
    args = parser.parse_args()
    first = args.precisions[0]
    for name in args.backbones:
        base = None
        for precision in args.precisions:
            seconds = step_seconds(name, args.size, args.steps, precision)
            base = base or seconds
            print(f"{name} {args.size}px {precision}: {seconds:.3f} s per step of {BATCH} "
                  f"({base / seconds:.2f}x {first}'s speed)", flush=True)
            figures = {"step_seconds": seconds, "batch": BATCH, "steps": args.steps,
                       "speed_relative": base / seconds, "relative_to": first}
            path = record("finetune_precision", f"{name}-{args.size}-{precision}", figures,
                          args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
