"""Exported networks run by their own runtimes, behind the one call facetl's inference makes of
a Keras model: `predict(x, batch_size=None, verbose=0)`. So `facetl predict --runtime onnx` runs
the same front end, batches and keypoint passes as Keras does (models/inference.py,
keypoints/locate.py); only the network differs.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np

from facetl.core.errors import FacetlError
from facetl.core.schema import validate_model_file
from facetl.models import inference

FILES = {"onnx": "model.onnx", "saved_model": "saved_model", "litert": "model.tflite"}
INSTALL = "pip install 'facetl[export]'"

Run = Callable[[np.ndarray], np.ndarray]  # float32 batch -> outputs, one file's runtime


def optional(module: str, what: str) -> ModuleType:
    """An optional dependency, or one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FacetlError(f"{what} is not installed (no module {module}); install the export "
                          f"extra: {INSTALL}") from exc


def onnx_runner(path: Path) -> Run:
    session = optional("onnxruntime", "ONNX Runtime").InferenceSession(
        str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def saved_model_runner(path: Path) -> Run:
    loaded = optional("tensorflow", "TensorFlow").saved_model.load(str(path))
    return lambda x: loaded.serve(x).numpy()  # `loaded` kept: it owns the variables


def litert_runner(path: Path) -> Run:
    interpreter = optional("ai_edge_litert.interpreter", "LiteRT (ai-edge-litert)").Interpreter(
        model_path=str(path))
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source, x.shape)  # the file's batch is 1
        interpreter.allocate_tensors()
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return interpreter.get_tensor(target).copy()

    return run


RUNNERS: dict[str, Callable[[Path], Run]] = {
    "onnx": onnx_runner, "saved_model": saved_model_runner, "litert": litert_runner}


class ExportedNetwork:
    """An exported file with Keras' `predict` call."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def predict(self, x: np.ndarray, batch_size: int | None = None,
                verbose: int = 0) -> np.ndarray:
        x = np.asarray(x, dtype="float32")
        step = batch_size or inference.BATCH
        return np.concatenate([self.run(np.ascontiguousarray(x[start:start + step]))
                               for start in range(0, len(x), step)])


def open_network(folder: Path, fmt: str) -> ExportedNetwork:
    return ExportedNetwork(RUNNERS[fmt](folder / FILES[fmt]))


def export_command(task: str, fmt: str, out: Path) -> str:
    return f"facetl export --task {task} --format {fmt} --out {out}"


def load_exported(task: str, root: Path, fmt: str = "onnx") -> tuple[ExportedNetwork, dict]:
    """`root/<task>/`'s exported network and the model.json its manifest carries (checked as
    `facetl predict` checks a Keras model's), for the task's predict functions."""
    folder = root / task
    manifest_file = folder / "manifest.json"
    remake = export_command(task, fmt, root)
    if not manifest_file.is_file():
        raise FacetlError(f"no exported {task} model in {folder} (need manifest.json and "
                          f"{FILES[fmt]}); run `{remake}` first, or pass --models DIR")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as exc:
        raise FacetlError(f"{manifest_file}: not valid JSON ({exc}); run `{remake}`") from exc
    if manifest.get("format") != fmt:
        raise FacetlError(f"{manifest_file}: a {manifest.get('format')} export, not {fmt}; run "
                          f"`{remake}`, or pass --models with the folder of a {fmt} export")
    meta = validate_model_file(manifest.get("model_json"), f"{manifest_file} model_json", task,
                               remake)
    return open_network(folder, fmt), meta


def exported_loader(fmt: str) -> Callable[[str, Path], tuple[ExportedNetwork, dict]]:
    """The loader the task predict functions take in place of `load_task_model`."""
    return partial(load_exported, fmt=fmt)
