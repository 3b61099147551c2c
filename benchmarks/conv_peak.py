"""The machine's ceiling for VGG-like work: GFLOP/s of one 3x3 convolution, float32 vs bfloat16.

`extraction_speed.py` prints the effective GFLOP/s of each backbone; this script says how close
that is to what the hardware gives a single large convolution (VGG16's conv3 shape, batch 32),
so a speed target can be judged against the ceiling rather than against another machine.

It also profiles the chapter head's dominant operation, the 3x3 convolution from MobileNetV2's
7x7x1280 map to 5x5x512 at the chapter's batch of 16, forward and weight gradient (what a
training step computes of it): as TensorFlow's convolution, the same with XLA, and as patches
times the kernel matrix (facetl's PatchConv2D), against a 2048² matmul timed in the same
rounds; all at the FLOPs of the full 5x5 output.

Then where a whole training step of the stage's head goes (`--step-profile`): the chapter head
as the train stage builds it (PatchConv2D), batch 16, a step of Keras' `fit` (an epoch of
`steps` batches in memory, divided), against its two parts timed alone in the same rounds, the
loss and its gradients (forward and backward) and Adam's update of the weights, and a 2048²
matmul.

    PYTHONPATH=. python benchmarks/conv_peak.py [--repeats 5] [--step-profile]
        [--results-dir DIR]

Records benchmarks/results/conv_peak.json, entries `vgg16_block3-batch32`,
`chapter_head_conv-batch16` and (`--step-profile`) `chapter_head_step-batch16`.
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks.results import add_results_dir, record
from facetl.models.heads import chapter_head
from facetl.models.precision import cpu_flags
from facetl.models.speed import training_flops

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


def chapter_conv_shares(rounds: int = 5, steps: int = 5) -> dict:
    """GFLOP/s of the chapter head's conv step in each form, and its share of the matmul peak
    (the best of each over `rounds` alternating rounds)."""
    x = tf.random.uniform((16, 7, 7, 1280))
    kernel = tf.Variable(tf.random.uniform((3, 3, 1280, 512), -0.01, 0.01))

    def conv(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.conv2d(x, kernel, 1, "VALID")

    def patches(x: tf.Tensor) -> tf.Tensor:
        columns = tf.concat([x[:, i:i + 5, j:j + 5, :] for i in range(3) for j in range(3)], -1)
        return tf.matmul(tf.reshape(columns, (-1, 9 * 1280)), tf.reshape(kernel, (-1, 512)))

    def step(forward):
        def run(x: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.relu(forward(x)))
            return tape.gradient(loss, kernel)
        return run

    forms = {"conv": tf.function(step(conv)), "conv_xla": tf.function(step(conv), jit_compile=True),
             "patches_matmul": tf.function(step(patches))}
    flops = 2 * 2 * 16 * 5 * 5 * 9 * 1280 * 512
    a = tf.random.uniform((2048, 2048))
    matmul = tf.function(lambda a: tf.matmul(a, a))
    for form in [*forms.values(), matmul]:
        form(a if form is matmul else x).numpy()  # warm-up
    best = {name: 0.0 for name in [*forms, "matmul_peak"]}
    for _ in range(rounds):
        start = time.perf_counter()
        matmul(a).numpy()
        best["matmul_peak"] = max(best["matmul_peak"], 2 * 2048**3 / (time.perf_counter() - start))
        for name, form in forms.items():
            start = time.perf_counter()
            for _ in range(steps):
                form(x).numpy()
            best[name] = max(best[name], flops * steps / (time.perf_counter() - start))
    return {"rounds": rounds, "steps": steps,
            **{f"{name}_gflop_per_s": round(value / 1e9, 1) for name, value in best.items()},
            **{f"{name}_share_of_peak": round(best[name] / best["matmul_peak"], 3)
               for name in forms}}


def head_step_profile(rounds: int = 5, steps: int = 20) -> dict:
    """Milliseconds per step of the chapter head's training in Keras' fit and of its parts alone
    (the median over `rounds` alternating rounds of `steps` steps each), the step's achieved
    share of the matmul peak, and what is left for Keras' own per-step work."""
    keras.utils.set_random_seed(0)
    head = chapter_head((7, 7, 1280), 1, 1, "sigmoid", 5.0, patches=True)
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    many_x = np.random.default_rng(0).uniform(0, 5, (16 * steps, 7, 7, 1280)).astype("float32")
    many_y = (np.arange(16 * steps) % 2).astype("float32")[:, None]
    x, y = tf.constant(many_x[:16]), tf.constant(many_y[:16])
    loss = keras.losses.BinaryCrossentropy()
    adam = keras.optimizers.Adam(1e-3)
    adam.build(head.trainable_variables)

    @tf.function
    def gradients() -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            value = loss(y, head(x, training=True))
        return tape.gradient(value, head.trainable_variables)

    grads = gradients()
    update = tf.function(lambda: adam.apply(grads, head.trainable_variables))
    a = tf.random.uniform((2048, 2048))
    matmul = tf.function(lambda a: tf.matmul(a, a))
    parts = {"fit_step": lambda: head.fit(many_x, many_y, batch_size=16, epochs=1, verbose=0,
                                          shuffle=False),
             "forward_backward": lambda: [g.numpy() for g in gradients()],
             "adam_update": lambda: (update(), head.trainable_variables[0].numpy())}
    for part in parts.values():
        part()  # warm-up: tracing
    matmul(a).numpy()
    times: dict[str, list[float]] = {name: [] for name in parts}
    peak = 0.0
    for round_ in range(rounds):
        start = time.perf_counter()
        matmul(a).numpy()
        peak = max(peak, 2 * 2048**3 / (time.perf_counter() - start))
        for name, part in (parts.items() if round_ % 2 == 0 else list(parts.items())[::-1]):
            start = time.perf_counter()
            for _ in range(1 if name == "fit_step" else steps):  # fit: `steps` steps a call
                part()
            times[name].append((time.perf_counter() - start) / steps)
    ms = {name: 1000 * float(np.median(values)) for name, values in times.items()}
    step_flops = 16 * training_flops(head)
    return {"rounds": rounds, "steps": steps, "batch": 16,
            **{f"{name}_ms": round(value, 2) for name, value in ms.items()},
            "keras_overhead_ms": round(ms["fit_step"] - ms["forward_backward"]
                                       - ms["adam_update"], 2),
            "arithmetic_at_peak_ms": round(1000 * step_flops / peak, 2),
            "fit_step_share_of_peak": round(step_flops / (ms["fit_step"] / 1000) / peak, 3),
            "matmul_peak_gflop_per_s": round(peak / 1e9, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step-profile", action="store_true",
                        help="only the chapter head's training step, part by part")
    add_results_dir(parser)
    args = parser.parse_args()
    if args.step_profile:
        profile = head_step_profile(args.repeats)
        print(json.dumps(profile))
        path = record("conv_peak", "chapter_head_step-batch16", profile, args.results_dir)
        print(f"recorded in {path}")
        return
    flags = sorted(flag for flag in cpu_flags() if "bf16" in flag or "amx" in flag)
    fp32, bf16 = (conv_gflop_per_s(dtype, args.repeats) for dtype in (tf.float32, tf.bfloat16))
    figures = {"cpu_flags": flags, "input": SHAPE, "kernel": KERNEL, "repeats": args.repeats,
               "float32_gflop_per_s": round(fp32), "bfloat16_gflop_per_s": round(bf16),
               "bfloat16_over_float32": round(bf16 / fp32, 2)}
    print(json.dumps(figures))
    path = record("conv_peak", f"vgg16_block3-batch{SHAPE[0]}", figures, args.results_dir)
    chapter = chapter_conv_shares(args.repeats)
    print(json.dumps(chapter))
    path = record("conv_peak", "chapter_head_conv-batch16", chapter, args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
