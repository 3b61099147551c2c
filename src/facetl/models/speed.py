"""How fast a network trains, against what this machine can do.

Three pieces, so every trainer can say what share of the hardware it used:
- `forward_flops` / `training_flops`: the arithmetic of a Keras model, counted from its layers
  (a multiply-add is 2 FLOPs; convolutions of every kind and Dense layers, the layers that hold
  nearly all of a network's arithmetic; bias, activations, normalisation and pooling are left
  out). A training step is the forward pass, the weight gradient of every trainable layer and
  the input gradient of every layer above the first trainable one: the work backpropagation
  cannot skip.
- `peak_flops`: the machine's measured peak for a precision, one large matmul (the shape its
  vector or matrix units are built for), cached per CPU model (or GPU) and backend, because the
  figure belongs to the hardware and measuring it costs about a second.
- `SpeedMeter`: a callback that times `fit` and turns the counts into achieved FLOP/s and the
  share of that peak, the figures each training stage writes to its metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from facetl.core.atomic import write_json
from facetl.models import backend

MATMUL = 2048  # the peak: the best of a few (MATMUL x MATMUL) @ (MATMUL x MATMUL) products
CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def leaf_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """The layers that compute, in the order the model calls them (nested models opened)."""
    children = getattr(model, "layers", None)
    if children is None:
        yield model
        return
    for child in children:
        yield from leaf_layers(child)


def _positions(shape: tuple) -> int:
    """Spatial positions of a (batch, ..., channels) shape: 1 for (batch, features)."""
    return math.prod(int(d) for d in shape[1:-1])


def layer_flops(layer: keras.layers.Layer) -> float:
    """Forward FLOPs of one example through `layer` (0 for layers this count leaves out)."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw, c_in, multiplier = layer.depthwise_kernel.shape
        c_out = layer.pointwise_kernel.shape[-1]
        return 2.0 * _positions(layer.output.shape) * (kh * kw + c_out) * c_in * multiplier
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2.0 * _positions(layer.output.shape) * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return 2.0 * _positions(layer.input.shape) * math.prod(layer.kernel.shape)
    if isinstance(layer, CONV_TYPES):  # kernel (k..., c_in / groups, c_out)
        # a layer that computes only some of its output positions says how many
        positions = getattr(layer, "computed_positions", None) or _positions(layer.output.shape)
        return 2.0 * positions * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return 2.0 * _positions(layer.output.shape) * math.prod(layer.kernel.shape)
    return 0.0


def forward_flops(model: keras.Model) -> float:
    """FLOPs of one example's forward pass (inference, or a validation step)."""
    return sum(layer_flops(layer) for layer in leaf_layers(model))


def training_flops(model: keras.Model) -> float:
    """FLOPs of one example's training step, with the model's trainable flags as they are now:
    forward everywhere, weight gradient where a layer trains, input gradient above the first
    layer that trains (below it nothing needs a gradient; the data needs none). In a model
    with branches, every layer called after the first trainable one counts its input gradient."""
    total, below_first_trainable = 0.0, True
    for layer in leaf_layers(model):
        flops = layer_flops(layer)
        trains = bool(layer.trainable_weights) and flops > 0
        total += flops * (1 + trains + (not below_first_trainable))
        below_first_trainable = below_first_trainable and not trains
    return total


# --- the machine's peak ------------------------------------------------------------------


def machine() -> str:
    """What the peak belongs to: the GPU's name, or the CPU's model and the cores this
    process may use (a 2-core share of a 64-core CPU has a 2-core peak)."""
    gpu = backend.gpu_name()
    if gpu:
        return gpu
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def cache_file() -> Path:
    """Where measured peaks are kept: the user's cache folder (XDG_CACHE_HOME), not the
    project: the figure belongs to the machine, whichever clone runs on it."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "facetl" / "peak_flops.json"


def measure_peak(precision: str, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` (MATMUL x MATMUL) products in `precision`, now."""
    a = keras.ops.convert_to_tensor(
        np.random.default_rng(0).random((MATMUL, MATMUL), dtype="float32"), precision)
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        best = min(best, time.perf_counter() - start)
    return 2.0 * MATMUL**3 / best


def peak_flops(precision: str, refresh: bool = False) -> float:
    """The measured peak FLOP/s of this machine in `precision` (float32 | bfloat16 | float16),
    from the cache when this CPU model (or GPU) and backend were measured before. A cached
    figure only ever rises: a measurement taken while other work shared the cores is low."""
    path = cache_file()
    key = f"{machine()} | {keras.backend.backend()} | {precision}"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key in cached and not refresh:
        return float(cached[key]["flop_per_s"])
    measured = measure_peak(precision)
    if key in cached:
        measured = max(measured, float(cached[key]["flop_per_s"]))
    cached[key] = {"flop_per_s": measured, "matmul": MATMUL,
                   "measured": time.strftime("%Y-%m-%d")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, cached)
    except OSError:  # a read-only home still trains; it only measures again next time
        pass
    return measured


# --- the figures a training stage reports ---------------------------------------------------


class SpeedMeter(keras.callbacks.Callback):
    """Times every epoch of a `fit` (training and validation, as the stage spends it).

    The trainer calls `expect(...)` before fitting, with the example counts and precision;
    `figures()` afterwards gives what the stage writes to its metrics. A trainer that is not
    Keras' `fit` (the linear head's scikit-learn search) hands its own figures to `record`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.recorded: dict[str, Any] | None = None
        self.epoch_seconds: list[float] = []
        self.train_flops = self.val_flops = 0.0
        self.n_train = self.n_val = 0
        self.precision = "float32"

    def expect(self, model: keras.Model, n_train: int, n_val: int, precision: str) -> None:
        """Count the model's work now, with its trainable flags as they will train."""
        self.train_flops, self.val_flops = training_flops(model), forward_flops(model)
        self.n_train, self.n_val, self.precision = n_train, n_val, precision

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self.start)

    def record(self, figures: dict[str, Any]) -> None:
        self.recorded = figures

    def figures(self) -> dict[str, Any]:
        """Achieved FLOP/s over every epoch (the first, which compiles, included) and its share
        of the measured peak for the precision the network trained in."""
        if self.recorded is not None:
            return self.recorded
        seconds = sum(self.epoch_seconds)
        flops = len(self.epoch_seconds) * (self.n_train * self.train_flops
                                           + self.n_val * self.val_flops)
        achieved = flops / seconds if seconds else 0.0
        peak = peak_flops(self.precision)
        return {"gflop_per_example_step": float(f"{self.train_flops / 1e9:.4g}"),
                "epochs": len(self.epoch_seconds),
                "seconds_per_epoch": round(float(np.median(self.epoch_seconds)), 2)
                if self.epoch_seconds else None,
                "gflop_per_s": float(f"{achieved / 1e9:.4g}"),
                "peak_gflop_per_s": round(peak / 1e9, 1), "precision": self.precision,
                "share_of_peak": float(f"{achieved / peak:.4g}"), "machine": machine(),
                "backend": keras.backend.backend()}
