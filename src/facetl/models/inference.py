"""Running a saved model over many image files: streamed in batches (memory flat in the number
of files), one result per file in input order, and an unreadable file an error entry for that
file alone, so one bad photo never loses the others' predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from facetl.core.errors import FacetlError
from facetl.data.images import ImageDecodeError, read_image

BATCH = 32


class Network(Protocol):
    """What inference calls of a model: Keras' `predict`, which an exported file's runner
    (facetl.ship.runtime) also offers, so one front end serves every runtime."""

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto") -> Any: ...


Loader = Callable[[str, Path], tuple[Network, dict]]  # (task, models root) -> model, model.json


def read_input(file: str) -> np.ndarray:
    """An input image as RGB; a missing or unreadable file is a clear error."""
    try:
        return read_image(file)
    except FileNotFoundError as exc:
        raise FacetlError(f"{file}: no such image file") from exc
    except (ImageDecodeError, OSError) as exc:
        raise FacetlError(f"{file}: cannot read as an image ({exc})") from exc


def chunks(files: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(files), size):
        yield files[start:start + size]


def stream_predictions(files: list[str], model: Network,
                       prepare: Callable[[np.ndarray], tuple[np.ndarray, Any]],
                       describe: Callable[[str, np.ndarray, Any], dict],
                       batch_size: int | None = None) -> list[dict]:
    """`prepare(image) -> (model inputs, extra)` per file, the inputs stacked on a first axis
    (one or more per file: a photo may hold several faces); `describe(file, outputs, extra)`
    per file, with that file's outputs. A file that cannot be read gets
    `{"image": file, "error": why}`."""
    batch_size = batch_size or BATCH
    results: list[dict] = []
    progress = tqdm(total=len(files), desc="predict", unit="img", disable=len(files) <= batch_size)
    for batch_files in chunks(files, batch_size):
        ready, inputs, extras = [], [], []
        for file in batch_files:
            try:
                model_input, extra = prepare(read_input(file))
            except FacetlError as exc:
                results.append({"image": file, "error": str(exc)})
                continue
            results.append({"image": file})
            ready.append(len(results) - 1)
            inputs.append(model_input)
            extras.append(extra)
        if inputs:
            outputs = model.predict(np.concatenate(inputs), verbose=0)
            per_file = np.split(outputs, np.cumsum([len(x) for x in inputs])[:-1])
            for slot, output, extra in zip(ready, per_file, extras, strict=True):
                results[slot] = describe(results[slot]["image"], output, extra)
        progress.update(len(batch_files))
    progress.close()
    return results
