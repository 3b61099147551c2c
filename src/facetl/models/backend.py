"""Everything that depends on which Keras backend runs (KERAS_BACKEND: tensorflow, jax, torch).

The rest of facetl is plain Keras 3 (`keras.Model`, `keras.layers`, `keras.ops`) and runs on
any backend; the few things Keras does not abstract live here, one function each, with a
branch per backend. TensorFlow is the default and the CPU path; JAX and PyTorch are for GPUs
where TensorFlow is not installed. Each backend's library is imported only when it is the
active one, so this module needs nothing but the backend in use.

| piece | tensorflow | jax | torch |
|---|---|---|---|
| `compiled_forward` | `tf.function` | `jax.jit` of a stateless call | eager, no autograd |
| `replica_strategy` | `tf.distribute` Mirrored | `keras.distribution` DataParallel | one device |
| `layer_gradients` | `GradientTape` | `jax.grad` of a zero probe | `torch.autograd` |
| `gpu_count` / `gpu_capability` / `gpu_name` | `tf.config` | `jax.devices()` | `torch.cuda` |
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import keras
import numpy as np
from keras import ops

NAME = keras.backend.backend()
BACKENDS = ("tensorflow", "jax", "torch")

Forward = Callable[[np.ndarray], np.ndarray]


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(f"{what} is not implemented for the Keras backend {NAME!r}; "
                               f"facetl runs on {', '.join(BACKENDS)}")


# --- devices ----------------------------------------------------------------------------


def _jax_gpus() -> list:
    import jax

    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU platform initialised
        return []


def gpu_count() -> int:
    """How many GPUs the active backend sees."""
    if NAME == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if NAME == "jax":
        return len(_jax_gpus())
    if NAME == "torch":
        import torch

        return torch.cuda.device_count()
    raise _unsupported("gpu_count")


def gpu_capability() -> tuple[int, int] | None:
    """Compute capability of the first GPU the active backend sees, or None without one."""
    if NAME == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        details = tf.config.experimental.get_device_details(gpus[0])
        return tuple(details.get("compute_capability", (0, 0)))
    if NAME == "jax":
        gpus = _jax_gpus()
        if not gpus:
            return None
        version = str(getattr(gpus[0], "compute_capability", "0.0"))
        major, _, minor = version.partition(".")
        return int(major or 0), int(minor or 0)
    if NAME == "torch":
        import torch

        return tuple(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None
    raise _unsupported("gpu_capability")


def gpu_name() -> str | None:
    """The first GPU's name (e.g. "NVIDIA H200"), or None without one."""
    if gpu_count() == 0:
        return None
    if NAME == "tensorflow":
        import tensorflow as tf

        first = tf.config.list_physical_devices("GPU")[0]
        return tf.config.experimental.get_device_details(first).get("device_name")
    if NAME == "jax":
        return _jax_gpus()[0].device_kind
    import torch

    return torch.cuda.get_device_name(0)


# --- data parallelism -------------------------------------------------------------------


class Replicas(Protocol):
    """What the features stage needs of a multi-device strategy (tf.distribute's interface):
    build the model inside `scope()`; `num_replicas_in_sync` devices then share each batch."""

    num_replicas_in_sync: int

    def scope(self) -> contextlib.AbstractContextManager: ...


class OneDevice:
    num_replicas_in_sync = 1

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


class DataParallel:
    """keras.distribution's DataParallel (JAX): variables built in `scope()` are replicated on
    every device; `compiled_forward(..., distributed=True)` then splits each batch across them."""

    def __init__(self, devices: list[str]) -> None:
        self.distribution = keras.distribution.DataParallel(devices=devices)
        self.num_replicas_in_sync = len(devices)

    def scope(self) -> contextlib.AbstractContextManager:
        return self.distribution.scope()


def replica_strategy(multi_gpu: bool) -> Replicas:
    """Every GPU when asked for and more than one is seen; else the default, one device.

    tensorflow: MirroredStrategy; jax: keras.distribution.DataParallel; torch: always one device
    (Keras' distribution API does not cover PyTorch; one GPU is used, with a warning).
    """
    many = multi_gpu and gpu_count() > 1
    if NAME == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy() if many else tf.distribute.get_strategy()
    if NAME == "jax":
        return DataParallel(keras.distribution.list_devices("gpu")) if many else OneDevice()
    if many:
        warnings.warn(f"FACETL_MULTI_GPU: the {NAME} backend runs on one GPU here",
                      stacklevel=2)
    return OneDevice()


# --- inference --------------------------------------------------------------------------


def compiled_forward(model: keras.Model, distributed: bool = False) -> Forward:
    """numpy batch -> numpy `model(batch, training=False)`, compiled once per batch shape.

    `distributed`: the model was built under `replica_strategy(...).scope()` with several
    devices; each batch is then split across them.
    """
    if NAME == "tensorflow":
        if distributed:
            return _tf_replicated_forward(model)
        import tensorflow as tf

        # One traced graph per batch shape; `reduce_retracing` keeps the last, smaller batch cheap.
        graph = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda batch: graph(batch).numpy()
    if NAME == "jax":
        return _jax_forward(model, distributed)
    if NAME == "torch":
        import torch

        def forward(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return ops.convert_to_numpy(model(batch, training=False))

        return forward
    raise _unsupported("compiled_forward")


def _padded(batch: np.ndarray, size: int) -> np.ndarray:
    """`batch` with zero rows appended up to `size` rows."""
    if size <= len(batch):
        return batch
    return np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])


def _tf_replicated_forward(model: keras.Model) -> Forward:
    """Each batch padded to a multiple of the replicas and split into equal shards, one per
    replica (`strategy.run` alone, like Keras' `predict_on_batch`, hands every replica the
    whole batch), the outputs concatenated back in order."""
    import tensorflow as tf

    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    step = tf.function(lambda shards: strategy.run(lambda x: model(x, training=False),
                                                   args=(shards,)), reduce_retracing=True)

    def forward(batch: np.ndarray) -> np.ndarray:
        shards = np.split(_padded(batch, -(-len(batch) // replicas) * replicas), replicas)
        values = strategy.experimental_distribute_values_from_function(
            lambda context: shards[context.replica_id_in_sync_group])
        outputs = strategy.experimental_local_results(step(values))
        return np.concatenate([np.asarray(output) for output in outputs])[:len(batch)]

    return forward


def _jax_forward(model: keras.Model, distributed: bool) -> Forward:
    """`jax.jit` of the model's stateless call, its weights passed as arguments (not baked into
    the program as constants). A smaller batch is padded to the first batch's size, so the last
    batch of a file reuses the compiled program instead of compiling another."""
    import jax

    trainable = [variable.value for variable in model.trainable_variables]
    frozen = [variable.value for variable in model.non_trainable_variables]
    run = jax.jit(lambda t, f, x: model.stateless_call(t, f, x, training=False)[0])
    sharding, replicas = None, 1
    if distributed:
        placed = next((v.value.sharding for v in model.variables), None)
        mesh = getattr(placed, "mesh", None)
        if mesh is not None and mesh.size > 1:
            replicas = mesh.size
            sharding = jax.sharding.NamedSharding(mesh,
                                                  jax.sharding.PartitionSpec(mesh.axis_names[0]))
    full: list[int] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        count = len(batch)
        if not full:
            full.append(-(-count // replicas) * replicas)
        batch = _padded(batch, max(full[0], -(-count // replicas) * replicas))
        x = jax.device_put(batch, sharding) if sharding is not None else batch
        return np.asarray(run(trainable, frozen, x))[:count]

    return forward


# --- gradients --------------------------------------------------------------------------


@contextlib.contextmanager
def _probe(layer: keras.layers.Layer, delta: Any) -> Iterator[None]:
    """While inside, `layer`'s output is shifted by `delta` (zeros: the same values), so the
    gradient with respect to `delta` is the gradient with respect to the layer's output."""
    call = layer.call

    def shifted(*args, **kwargs):
        output = call(*args, **kwargs)
        return output + ops.cast(delta, output.dtype)

    layer.call = shifted
    try:
        yield
    finally:
        del layer.call  # the class's own method again


def layer_gradients(model: keras.Model, layer: keras.layers.Layer, images: np.ndarray,
                    score: Callable[[Any], Any]) -> tuple[Any, Any, Any]:
    """One forward pass of `model` (images -> [`layer`'s output, prediction]); returns the
    layer's output, the prediction, and the gradient of `sum(score(prediction))` with respect
    to the layer's output, as backend tensors.

    TensorFlow records the pass on a tape; JAX and PyTorch cannot differentiate with respect to
    an inner tensor directly, so a zero "probe" is added to the layer's output and the gradient
    taken with respect to it (the same numbers).
    """
    if NAME == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            inner, output = model(tf.convert_to_tensor(images), training=False)
            total = score(output)
        return inner, output, tape.gradient(total, inner)
    shape = (len(images), *model.outputs[0].shape[1:])
    if NAME == "jax":
        import jax

        def run(delta):
            with _probe(layer, delta):
                inner, output = model(images, training=False)
            return ops.sum(score(output)), (inner, output)

        gradients, (inner, output) = jax.grad(run, has_aux=True)(
            jax.numpy.zeros(shape, "float32"))
        return inner, output, gradients
    if NAME == "torch":
        import torch

        delta = ops.zeros(shape, "float32").requires_grad_(True)
        with torch.enable_grad(), _probe(layer, delta):
            inner, output = model(images, training=False)
            (gradients,) = torch.autograd.grad(ops.sum(score(output)), delta)
        return inner.detach(), output.detach(), gradients
    raise _unsupported("layer_gradients")
