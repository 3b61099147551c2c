"""MODEL_CARD.md beside every exported model: what it is for and not for, how well it did
where it was measured (read from the workspace's metrics files, never typed), the data it
learnt from and their terms, and the command and commit that made it. What a task's card
says of it (its use, data terms, measured lines) comes from its registered Task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetl.core.tasks import task as registered

WEIGHTS_TERMS = {
    "imagenet": "Keras' published ImageNet weights (keras.applications), under the terms Keras "
                "publishes for each model",
    "face_recognition_models": "dlib's face ResNet weights from face-recognition-models 0.3.0 "
                               "(CC0 1.0 by its LICENSE file), read into facetl's Keras "
                               "network: inside the exported file, no dlib needed to run it",
    "none": "random initialisation (no terms)",
}


def training_data(manifest: dict[str, Any]) -> list[str]:
    task, meta = registered(manifest["task"]), manifest["model_json"]
    values = (manifest["params"] or {}).get("values", {})
    backbone = meta.get("backbone", "?")
    weights = values.get(f"backbones.{backbone}", {}).get("weights")
    group, key = task.source_param
    source = values.get(group, {}).get(key)
    return [f"- Source: {source or 'not recorded (no dvc.lock made this model)'}.",
            f"- {task.data_terms}",
            f"- Backbone {backbone}, " + (
                f"weights `{weights}`: "
                f"{WEIGHTS_TERMS.get(str(weights), 'a weights file, under its own terms')}."
                if weights is not None else "weights not recorded (no dvc.lock)."),
            "- Full terms of every data source and model file: facetl's docs/licences.md."]


def model_card(manifest: dict[str, Any], metrics_dir: Path) -> str:
    task, made = manifest["task"], manifest["made_by"]
    revision = made["git_revision"] or "unknown (not a git checkout)"
    if made["git_dirty"]:
        revision += " with uncommitted changes"
    lines = [
        f"# facetl {task} model ({manifest['model_json'].get('backbone', '?')}), "
        f"{manifest['format']}",
        "",
        f"Made by `{made['command']}` at commit {revision}, {made['exported']}.",
        "",
        "## Intended use", "", registered(task).use, "",
        "## Limits", "",
        f"- The file is the network only. It expects {manifest['caller_feeds']}; facetl's "
        "front end makes that input (`facetl predict --runtime onnx` runs it), and a caller "
        "that crops or resizes otherwise gets other answers.",
        "- Measured only where the table below says; other photos (other cameras, ages, "
        "lighting, poses) may do worse.",
    ]
    lines += [*registered(task).limits(manifest),
              "", "## Measured", "", *registered(task).measured(metrics_dir), "",
              "## Training data and licence terms", "", *training_data(manifest), "",
              "## Files", "",
              f"- `{manifest['file']}`: the network; `manifest.json`: its input, output, "
              "preprocessing, the front end's settings, the params and the commit.", ""]
    return "\n".join(lines)
