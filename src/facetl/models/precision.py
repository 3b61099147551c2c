"""Which float precision a network computes in, given what the hardware can do fast.

bfloat16 pays off on recent GPUs, and on CPUs by how much bf16 hardware they have and how
dense the network is: measured, VGG16 gains ~7x with AMX and ~2.6x with AVX512-BF16 alone,
ResNet50 ~1.3x with either, MobileNetV2 loses on both (0.77x). So `auto` asks which CPU flag
a network needs before bf16 wins: the backbone registry for extraction and fine-tuning,
`TRAINED_BF16_WINS_WITH` for the networks trained on cached features or from scratch (a task's
own network states its flag beside it; benchmarks/training_precision.py measures them all; AMX
only, for networks not measured yet).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import keras

from facetl.core.errors import FacetlError
from facetl.models import backend

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# Trained networks (not backbones): the CPU flag from which bf16 trains faster, measured by
# benchmarks/training_precision.py (results: benchmarks/results/training_precision.json).
TRAINED_BF16_WINS_WITH: dict[str, str | None] = {
    "chapter_head": "avx512_bf16",  # the chapter's Conv512 on the feature map: dense
    "scratch_cnn": "avx512_bf16",
}


@cache
def cpu_flags() -> frozenset[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return frozenset()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@cache
def gpu_capability() -> tuple[int, int] | None:
    """Compute capability of the first GPU the Keras backend sees, or None without one."""
    return backend.gpu_capability()


def supported(precision: str) -> bool:
    capability = gpu_capability()
    if precision == "float32":
        return True
    if capability is not None:
        return capability >= ((8, 0) if precision == "bfloat16" else (7, 0))
    return precision == "bfloat16" and bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_precision(requested: str, bf16_wins_with: str | None,
                      setting: str = "features.precision") -> str:
    """The precision to run in; an unsupported request falls back to float32 with a warning.

    `bf16_wins_with`: the CPU flag (`avx512_bf16` or `amx_bf16`) from which bfloat16 is faster
    for this backbone, or None where it never is; `setting` names the param in errors.
    """
    if requested not in PRECISIONS:
        raise FacetlError(f"{setting} must be one of {PRECISIONS}, got {requested!r}")
    if requested == "auto":
        if gpu_capability() is not None:
            return next(p for p in ("bfloat16", "float16", "float32") if supported(p))
        return "bfloat16" if bf16_wins_with in cpu_flags() else "float32"
    if not supported(requested):
        warnings.warn(f"{requested} is not fast on this hardware; running in float32",
                      stacklevel=2)
        return "float32"
    return requested


def trained_precision(requested: str, bf16_wins_with: str | None, setting: str) -> str:
    """`resolve_precision` for a trained network (its flag: `TRAINED_BF16_WINS_WITH`, or its
    own), printed: what ran."""
    precision = resolve_precision(requested, bf16_wins_with, setting)
    print(f"{setting}: {requested} -> {precision}")
    return precision


def loss_scaled(optimizer: keras.optimizers.Optimizer, precision: str
                ) -> keras.optimizers.Optimizer:
    """`optimizer`, wrapped in loss scaling where the precision is float16 (its small
    gradients would underflow to zero otherwise); as it is for bfloat16 and float32."""
    return keras.optimizers.LossScaleOptimizer(optimizer) if precision == "float16" else optimizer


@contextmanager
def computing_in(layers: Iterable[keras.layers.Layer], precision: str) -> Iterator[None]:
    """Inside the block `layers` compute in `precision` (float32 | bfloat16 | float16) with
    float32 weights (Keras mixed precision); afterwards each has its own policy again, so a
    model saved after training runs on any hardware."""
    layers = list(layers)
    policies = [layer.dtype_policy for layer in layers]
    if precision != "float32":
        for layer in layers:
            layer.dtype_policy = POLICY[precision]
    try:
        yield
    finally:
        for layer, policy in zip(layers, policies, strict=True):
            layer.dtype_policy = policy


def hidden_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """`model`'s layers less those that give its outputs: the loss stays in float32."""
    outputs = set(model.output_names)
    return [layer for layer in model.layers if layer.name not in outputs]
