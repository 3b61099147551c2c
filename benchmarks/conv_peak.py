"""The machine's ceiling for VGG-like work: GFLOP/s of one 3x3 convolution, float32 vs bfloat16.

`extraction_speed.py` prints the effective GFLOP/s of each backbone; this script says how close
that is to what the hardware gives a single large convolution (VGG16's conv3 shape, batch 32),
so a speed target can be judged against the ceiling rather than against another machine.

    PYTHONPATH=. python benchmarks/conv_peak.py [--repeats 5] [--results-dir DIR]

Records benchmarks/results/conv_peak.json, entry `vgg16_block3-batch32`.
"""

from __future__ import annotations

import argparse
import json
import time

import tensorflow as tf

from benchmarks.results import add_results_dir, record
from facetl.models.precision import cpu_flags

SHAPE = (32, 56, 56, 256)  # batch, height, width, channels: VGG16 block3
KERNEL = (3, 3, 256, 256)


def conv_gflop_per_s(dtype: tf.DType, repeats: int) -> float:
    images = tf.cast(tf.random.uniform(SHAPE), dtype)
    kernel = tf.cast(tf.random.uniform(KERNEL, -0.05, 0.05), dtype)
    conv = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"))
    conv(images).numpy()  # warm-up: graph building, oneDNN primitive creation
    start = time.perf_counter()
    for _ in range(repeats):
        conv(images).numpy()
    seconds = (time.perf_counter() - start) / repeats
    batch, height, width, _ = SHAPE
    kh, kw, c_in, c_out = KERNEL
    return 2.0 * batch * height * width * kh * kw * c_in * c_out / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    add_results_dir(parser)
    args = parser.parse_args()
    flags = sorted(flag for flag in cpu_flags() if "bf16" in flag or "amx" in flag)
    fp32, bf16 = (conv_gflop_per_s(dtype, args.repeats) for dtype in (tf.float32, tf.bfloat16))
    figures = {"cpu_flags": flags, "input": SHAPE, "kernel": KERNEL, "repeats": args.repeats,
               "float32_gflop_per_s": round(fp32), "bfloat16_gflop_per_s": round(bf16),
               "bfloat16_over_float32": round(bf16 / fp32, 2)}
    print(json.dumps(figures))
    path = record("conv_peak", f"vgg16_block3-batch{SHAPE[0]}", figures, args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
