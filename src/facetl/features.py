"""Batched feature extraction streamed into a preallocated `.npy`.

The chapter called `predict` once per image; here one compiled call handles a whole batch, the
next batch is read while the current one runs, and each result goes straight to disk, so memory
stays flat as the data grows.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from numpy.lib.format import open_memmap
from tqdm import tqdm

from facetl.atomic import atomic_path
from facetl.errors import FacetlError

STORAGE = ("float32", "float16")


def compiled_forward(model: keras.Model):
    """One traced graph per batch shape; `reduce_retracing` keeps the last, smaller batch cheap."""
    graph = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda batch: graph(batch).numpy()


def replica_strategy(multi_gpu: bool) -> tf.distribute.Strategy:
    """MirroredStrategy over every GPU when asked for and more than one is seen; else default."""
    if multi_gpu and len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def extract_to_npy(model: keras.Model, images: np.ndarray, out_path: Path, batch_size: int = 32,
                   storage: str = "float32", distributed: bool = False) -> float:
    """Write `model(images)` to `out_path` batch by batch; return the seconds it took.

    `distributed`: the model was built under a multi-replica strategy; Keras' own batch
    predict then splits each batch across the replicas.
    """
    if storage not in STORAGE:
        raise FacetlError(f"features.storage must be one of {STORAGE}, got {storage!r}")
    if batch_size < 1:
        raise FacetlError(f"features.batch_size must be at least 1, got {batch_size}")
    forward = model.predict_on_batch if distributed else compiled_forward(model)
    shape = (len(images), *model.output_shape[1:])
    starts = range(0, len(images), batch_size)
    start_time = time.perf_counter()
    with atomic_path(out_path) as tmp, ThreadPoolExecutor(max_workers=1) as reader:
        out = open_memmap(tmp, mode="w+", dtype=storage, shape=shape)
        read = lambda s: np.ascontiguousarray(images[s:s + batch_size])  # noqa: E731
        pending = reader.submit(read, 0)
        for start in tqdm(starts, desc="features", unit="batch"):
            batch = pending.result()
            if start + batch_size < len(images):
                pending = reader.submit(read, start + batch_size)
            out[start:start + len(batch)] = forward(batch)
        out.flush()
        del out
    return time.perf_counter() - start_time
