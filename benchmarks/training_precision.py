"""Training speed per compute precision: does mixed precision win on this machine, and for which
network? `auto` (precision.py) decides from what this measures.

Times training steps of every network the pipeline trains, as its trainer runs it (the layers
switched to the precision by `computing_in`, the output in float32), on random inputs with random
weights (speed does not depend on their values): the chapter head on each backbone's cached
feature map, the keypoint head, the scratch CNNs, and fine-tuning (the backbone unfrozen, AdamW).
The precisions alternate over `--rounds` rounds in ONE process, so the ratios compare like with
like on a shared machine; each figure is the median step over all rounds. Work per image is
counted from the layers (facetl.models.speed.training_flops), and set against the machine's
measured peak: a large matmul in each precision (facetl.models.speed.measure_peak).

    PYTHONPATH=. python benchmarks/training_precision.py [--networks NAME ...] [--steps 6]
        [--rounds 3] [--precisions float32 bfloat16] [--results-dir DIR]

Records benchmarks/results/training_precision.json, one entry per `<network>-<precision>`, and
`peak-<precision>`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from benchmarks.results import add_results_dir, record
from benchmarks.tables_format import NOT_MEASURED, Results, provenance_line
from facetl.gender.scratch import scratch_cnn
from facetl.keypoints.heads import keypoint_head
from facetl.models.backbones import build_extractor
from facetl.models.finetune import find_backbone, optimizer, unfreeze_top
from facetl.models.heads import chapter_head
from facetl.models.precision import computing_in, hidden_layers
from facetl.models.saving import end_to_end
from facetl.models.speed import MATMUL, measure_peak, training_flops
from facetl.ship.export import all_layers


@dataclass(frozen=True)
class Network:
    """A trained network: `build()` -> (model, the layers switched to the precision)."""

    build: Callable[[], tuple[keras.Model, list[keras.layers.Layer]]]
    batch: int
    fine_tuning: bool = False


def head_network(build: Callable[[], keras.Model]) -> Callable[[], tuple[keras.Model, list]]:
    def built() -> tuple[keras.Model, list]:
        model = build()
        return model, hidden_layers(model)
    return built


def finetuned(name: str, size: int) -> Callable[[], tuple[keras.Model, list]]:
    """The fine-tuning trainer's model: extractor + a pooled head, every backbone layer free."""
    def built() -> tuple[keras.Model, list]:
        extractor = build_extractor(name, "none", size)
        features = keras.Input(extractor.output_shape[1:])
        pooled = keras.layers.GlobalAveragePooling2D()(features)
        head = keras.Model(features, keras.layers.Dense(1, activation="sigmoid")(pooled))
        model = end_to_end(extractor, head, name)
        unfreeze_top(model, -1)
        return model, list(all_layers(find_backbone(model)))
    return built


# Feature maps at the pipeline's input sizes: gender at 300 px (the params' default), keypoint
# crops at 192 px.
NETWORKS = {
    "chapter_head-mobilenet_v2": Network(head_network(lambda: chapter_head(
        (10, 10, 1280), 1, 1, "sigmoid", 1.0)), batch=16),
    "chapter_head-vgg16": Network(head_network(lambda: chapter_head(
        (9, 9, 512), 1, 1, "sigmoid", 1.0)), batch=16),
    "chapter_head-resnet50": Network(head_network(lambda: chapter_head(
        (10, 10, 2048), 2, 1, "sigmoid", 1.0)), batch=16),
    "keypoint_head-mobilenet_v2": Network(head_network(lambda: keypoint_head(
        (6, 6, 1280), "gdconv", 128, 0.0, np.zeros(136))), batch=32),
    "scratch_cnn-300": Network(head_network(lambda: scratch_cnn(300, 2, 255)), batch=32),
    "scratch_cnn-50": Network(head_network(lambda: scratch_cnn(50, 2, 255)), batch=32),
    # Fine-tuning at the gender input (224 px in the measured routes) and the keypoint crop.
    "finetune-mobilenet_v2-224": Network(finetuned("mobilenet_v2", 224), batch=32,
                                         fine_tuning=True),
    "finetune-mobilenet_v2-192": Network(finetuned("mobilenet_v2", 192), batch=32,
                                         fine_tuning=True),
}


class StepTimes(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def step_seconds(network: Network, steps: int, precision: str) -> tuple[list[float], float]:
    """Seconds of each training step (the first two, tracing and set-up, left out) and the
    network's FLOPs per image and training step."""
    keras.utils.set_random_seed(0)
    model, switched = network.build()
    rng = np.random.default_rng(0)
    shape = model.input_shape[1:]
    inputs = rng.random((network.batch * (steps + 2), *shape), dtype="float32") * 255
    targets = rng.random((len(inputs), model.output_shape[-1]), dtype="float32")
    if network.fine_tuning:
        steps_optimizer = optimizer({"learning_rate": 1e-4, "epochs": 1, "optimizer": "adamw",
                                     "weight_decay": 0.004}, steps + 2)
    else:
        steps_optimizer = keras.optimizers.Adam(1e-3)
    if precision == "float16":
        steps_optimizer = keras.optimizers.LossScaleOptimizer(steps_optimizer)
    times = StepTimes()
    with computing_in(switched, precision):  # as the trainers run it
        model.compile(optimizer=steps_optimizer, loss="mse")
        model.fit(inputs, targets, batch_size=network.batch, epochs=1, verbose=0,
                  callbacks=[times])
    return times.seconds[2:], training_flops(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    add_results_dir(parser)
    args = parser.parse_args()
    peaks = {precision: measure_peak(precision) for precision in args.precisions}
    for precision, flops in peaks.items():
        print(f"peak {precision}: {flops / 1e9:.0f} GFLOP/s ({MATMUL}^3 matmul)", flush=True)
        path = record("training_precision", f"peak-{precision}",
                      {"gflops": flops / 1e9, "matmul": MATMUL}, args.results_dir)
    for name in args.networks:
        network = NETWORKS[name]
        seconds: dict[str, list[float]] = {precision: [] for precision in args.precisions}
        flops = 0.0
        for round_ in range(args.rounds):  # alternate, so both see the same machine load
            order = args.precisions if round_ % 2 == 0 else args.precisions[::-1]
            for precision in order:
                steps, flops = step_seconds(network, args.steps, precision)
                seconds[precision] += steps
        first = args.precisions[0]
        base = float(np.median(seconds[first]))
        for precision in args.precisions:
            step = float(np.median(seconds[precision]))
            images = network.batch / step
            share = flops * images / peaks[precision]
            figures: dict[str, Any] = {
                "step_seconds": step, "batch": network.batch, "steps": len(seconds[precision]),
                "images_per_s": images, "gflop_per_image": flops / 1e9,
                "share_of_peak": share, "speed_relative": base / step, "relative_to": first}
            print(f"{name} {precision}: {images:.1f} img/s, {share:.0%} of the {precision} peak, "
                  f"{base / step:.2f}x {first}'s speed", flush=True)
            path = record("training_precision", f"{name}-{precision}", figures, args.results_dir)
    print(f"recorded in {path}")


COMMAND = "PYTHONPATH=. python benchmarks/training_precision.py"


def table(results: Results) -> str:
    """docs/backends-gpu.md's table: each network's training speed per precision."""
    entries = results("training_precision")
    networks = sorted({name.rsplit("-", 1)[0] for name in entries if not name.startswith("peak")})
    if not networks:
        return f"{NOT_MEASURED}: run `{COMMAND}`.\n"
    peaks = ", ".join(f"{name.split('-', 1)[1]} {entries[name]['figures']['gflops']:.0f}"
                      for name in sorted(entries) if name.startswith("peak-"))
    lines = ["| network (batch) | precision | images/s | share of the precision's measured "
             "peak | speed vs float32 |", "|---|---|---|---|---|"]
    for network in networks:
        for name in sorted(n for n in entries if n.rsplit("-", 1)[0] == network):
            f = entries[name]["figures"]
            lines.append(f"| {network} ({f['batch']}) | {name.rsplit('-', 1)[1]} | "
                         f"{f['images_per_s']:.1f} | {100 * f['share_of_peak']:.0f}% | "
                         f"{f['speed_relative']:.2f}x |")
    return ("\n".join(lines) + "\n\nTraining steps (median over alternating rounds). Each "
            "share is against the peak measured in the same run (GFLOP/s of a 2048² matmul; "
            f"the latest: {peaks}). Measured with `{COMMAND}` "
            f"on: {provenance_line(list(entries.values()))}.\n")


if __name__ == "__main__":
    main()
