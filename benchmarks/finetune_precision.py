"""Fine-tuning step time per compute precision: does mixed precision win on this machine?

Times training steps of the pipeline's fine-tuning trainer (`facetl.models.finetune`: the
backbone unfrozen, AdamW, the backbone computing in the precision asked for) on random images
with random weights (speed does not depend on their values), in ONE run per backbone so the
ratios compare like with like. `finetune.*.precision: auto` picks from what this measures:
float32 on CPUs where bfloat16 is slower for the backbone, mixed precision on a GPU.

    PYTHONPATH=. python benchmarks/finetune_precision.py [--backbones mobilenet_v2 vgg16]
        [--size 160] [--steps 8] [--precisions float32 bfloat16]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from facetl.models.backbones import build_extractor
from facetl.models.export import end_to_end
from facetl.models.finetune import finetune, unfreeze_top


def step_seconds(name: str, size: int, steps: int, precision: str, batch: int = 32) -> float:
    """Seconds per training step: an epoch of 2N steps minus one of N, so that what each call
    pays once (compiling, tracing the graphs, the validation step) cancels out."""
    keras.utils.set_random_seed(0)
    extractor = build_extractor(name, "none", size)
    features = keras.Input(extractor.output_shape[1:])
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    head = keras.Model(features, keras.layers.Dense(1, activation="sigmoid")(pooled), name="head")
    model = end_to_end(extractor, head, name)
    unfreeze_top(model, -1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * 2 * steps, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, len(images)).astype("float32")
    cfg = {"learning_rate": 1e-4, "batch_size": batch, "patience": 1, "epochs": 1,
           "loss": "binary_crossentropy"}
    rows = np.arange(len(images))
    seconds = []
    for count in (steps, 2 * steps):
        start = time.perf_counter()
        finetune(model, images, labels, rows[:count * batch], rows[:batch], cfg, 0,
                 precision=precision)
        seconds.append(time.perf_counter() - start)
    return (seconds[1] - seconds[0]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", nargs="+", default=["mobilenet_v2"])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    args = parser.parse_args()
    for name in args.backbones:
        base = None
        for precision in args.precisions:
            seconds = step_seconds(name, args.size, args.steps, precision)
            base = base or seconds
            print(f"{name} {args.size}px {precision}: {seconds:.3f} s per step of 32 "
                  f"({base / seconds:.2f}x float32's speed)", flush=True)


if __name__ == "__main__":
    main()
