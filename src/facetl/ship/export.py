"""`facetl export`: the trained network as ONNX, SavedModel or LiteRT, written by Keras' own
`model.export`, checked against the Keras model before it is kept, with `manifest.json` (what
to feed it, what comes out, the settings of everything that runs outside it, where it came
from) and `MODEL_CARD.md` beside it.

What is exported is the network: the backbone's preprocessing, the backbone, the head and the
calibration (a `Temperature` layer). What runs outside any graph stays in facetl: the face front
end (dlib detection and alignment) and the keypoint passes. dlib_face is a Keras network like
the others, so its export holds the whole model, from the aligned crop to the probability.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import yaml

from facetl.core.atomic import atomic_path
from facetl.core.errors import FacetlError
from facetl.core.tasks import task as registered
from facetl.models.backbones import Preprocess
from facetl.models.saving import load_task_model
from facetl.ship.card import model_card
from facetl.ship.runtime import FILES, export_command, open_network, optional

KERAS_FORMATS = {"onnx": "onnx", "saved_model": "tf_saved_model", "litert": "litert"}
# What each route needs at export time (converter, then the runtime the check loads it with).
NEEDS = {"onnx": [("tf2onnx", "tf2onnx"), ("onnxruntime", "ONNX Runtime")],
         "saved_model": [],
         "litert": [("ai_edge_litert.interpreter", "LiteRT (ai-edge-litert)")]}
TOLERANCE = 1e-4  # float32 files: the exported network's outputs within this of Keras'
PROBES = 8
PREPROCESSING = {  # what each backbone's Preprocess layer does, inside the exported graph
    "caffe": "RGB -> BGR, minus the ImageNet mean (103.939, 116.779, 123.68)",
    "tf": "x / 127.5 - 1",
    "torch": "(x / 255 - ImageNet mean) / ImageNet std, per channel",
    "raw": "none: the network takes pixels as they are",
}


def all_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    yield layer
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from all_layers(inner)


def policies(model: keras.Model) -> list[str]:
    """The dtype policies the model's layers compute in (a bfloat16 backbone: mixed_bfloat16)."""
    return sorted({layer.dtype_policy.name for layer in all_layers(model)})


def in_float32(model: keras.Model) -> keras.Model:
    """Every layer computing in float32 (under mixed precision the weights are float32
    already): Keras' ONNX exporter needs it, and the parity promise is float32's."""
    for layer in all_layers(model):
        if layer.dtype_policy.name != "float32":
            layer.dtype_policy = "float32"
    return model


def probe_images(shape: tuple[int, ...]) -> np.ndarray:
    """Fixed inputs for the export check: noise and smooth gradients, 0-255 like photos."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (PROBES // 2, *shape))
    ramp = np.linspace(0, 255, shape[0])[None, :, None, None] * rng.uniform(0.2, 1, (
        PROBES - len(noise), 1, 1, shape[-1]))
    return np.concatenate([noise, np.broadcast_to(ramp, (len(ramp), *shape))]).astype("float32")


def write_network(network: keras.Model, fmt: str, path: Path) -> None:
    import tensorflow as tf  # the converters here run on TensorFlow, whatever the backend

    network(np.zeros((1, *network.input_shape[1:]), dtype="float32"))  # exporters want a call
    # LiteRT: built-in ops only, so the file runs on the plain interpreter (no Flex delegate);
    # an op without a built-in then fails here rather than on the user's device.
    options = ({"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
               if fmt == "litert" else {})
    network.export(str(path), format=KERAS_FORMATS[fmt], verbose=False, **options)


def git_state(where: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        return {"git_revision": git("rev-parse", "HEAD"),
                "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"git_revision": None, "git_dirty": None}


def recorded_params(workspace: Path, task: str) -> dict[str, Any] | None:
    """The params dvc.lock recorded for the stage that wrote models/<task> and every stage
    upstream of it (the last `dvc repro`), or None without a lock that made it."""
    stages: dict[str, dict] = {}
    for lock in [workspace / "dvc.lock", *sorted(workspace.glob("pipelines/*/dvc.lock"))]:
        if lock.is_file():
            stages |= (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    producer = {out["path"]: name for name, stage in stages.items()
                for out in stage.get("outs", [])}
    wanted, seen, params = [f"models/{task}"], [], {}
    while wanted:
        path = wanted.pop()
        name = next((producer[out] for out in producer
                     if path == out or path.startswith(out + "/")), None)
        if name is None or name in seen:
            continue
        seen.append(name)
        params |= stages[name].get("params", {}).get("params.yaml", {})
        wanted += [dep["path"] for dep in stages[name].get("deps", [])]
    return {"stages": sorted(seen), "values": params} if seen else None


def build_manifest(task: str, fmt: str, written: Path, command: str, models_root: Path,
                   model: keras.Model, meta: dict, trained: list[str],
                   difference: float) -> dict[str, Any]:
    """Everything a caller needs beside the file (`written`: the folder holding it)."""
    size, kind = model.input_shape[1], registered(task)
    preprocess = next((layer.mode for layer in all_layers(model)
                       if isinstance(layer, Preprocess)), None)
    manifest: dict[str, Any] = {
        "task": task, "format": fmt, "file": FILES[fmt],
        "input": {"shape": list(model.input_shape), "dtype": "float32",
                  "layout": "NHWC"} | file_facts(fmt, written),
        "caller_feeds": f"{kind.caller_feeds(meta)}, resized to {size} x {size}, RGB pixels "
                        f"0-255 as float32, (N, {size}, {size}, 3)",
        "preprocessing": {
            "in_graph": preprocess,
            "in_graph_does": PREPROCESSING.get(preprocess),
            "resize": "OpenCV cv2.resize to input_size x input_size, aspect not kept: "
                      "INTER_AREA when shrinking both sides, else INTER_LINEAR",
            "pixels": "RGB, 0-255, as float32"},
        "input_size": size,
        "output": {"shape": list(model.output_shape), "meaning": kind.output_meaning(meta)},
        "precision": {"keras_model": trained, "exported": "float32"},
        "check": {"inputs": f"{PROBES} synthetic images (noise and gradients)",
                  "max_abs_difference": difference, "tolerance": TOLERANCE},
        "model_json": meta,
        "params": recorded_params(models_root.parent, task),
        "made_by": {"command": command,
                    "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "keras": keras.__version__, **converters(fmt),
                    **git_state(models_root.parent)},
    }
    return manifest | kind.manifest(meta, model)


def file_facts(fmt: str, folder: Path) -> dict[str, Any]:
    """How the file is called: ONNX's input name and opset, the SavedModel's endpoint."""
    if fmt == "onnx":
        graph = optional("onnx", "onnx").load(str(folder / FILES[fmt]))
        return {"name": graph.graph.input[0].name,
                "opset": max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))}
    if fmt == "saved_model":
        return {"endpoint": "serve (also the signature serving_default)"}
    return {"signature": "serving_default (the file's one signature)"}


def converters(fmt: str) -> dict[str, str]:
    import tensorflow as tf

    versions = {"tensorflow": tf.__version__}
    if fmt == "onnx":
        versions["tf2onnx"] = optional("tf2onnx", "tf2onnx").__version__
    return versions


def export(task: str, fmt: str, out: Path, models_root: Path = Path("models")) -> Path:
    """Write `out/<task>/` (the file, manifest.json, MODEL_CARD.md) and return it; nothing is
    written unless the file's outputs agree with the Keras model's within TOLERANCE."""
    if keras.backend.backend() != "tensorflow":
        raise FacetlError(f"facetl export runs on the TensorFlow backend (KERAS_BACKEND is "
                          f"{keras.backend.backend()}): run it without KERAS_BACKEND")
    for module, what in NEEDS[fmt]:
        optional(module, what)
    model, meta = load_task_model(task, models_root, registered(task).made_by)
    trained = policies(model)
    model = in_float32(model)
    probes = probe_images(model.input_shape[1:])
    expected = model.predict(probes, verbose=0)
    folder = out / task
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        write_network(model, fmt, tmp / FILES[fmt])
        got = open_network(tmp, fmt).predict(probes)
        difference = float(np.abs(got - expected).max())
        if not difference <= TOLERANCE:
            raise FacetlError(f"the {fmt} file's outputs differ from the Keras model's by "
                              f"{difference:.2g} (> {TOLERANCE:g}) on the check inputs: "
                              f"nothing written to {folder}; try another --format")
        command = export_command(task, fmt, out) + (
            f" --models {models_root}" if models_root != Path("models") else "")
        manifest = build_manifest(task, fmt, tmp, command, models_root, model, meta,
                                  trained, difference)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / "MODEL_CARD.md").write_text(model_card(manifest, models_root.parent / "metrics"))
    return folder
