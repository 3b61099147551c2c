"""MODEL_CARD.md beside every exported model: what it is for and not for, how well it did
where it was measured (read from the workspace's metrics files, never typed), the data it
learnt from and their terms, and the command and commit that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

USE = {
    "gender": "Research and teaching: how transfer learning behaves on face photos. It answers "
              "one of two labels, the gender the annotators of the training photos perceived, "
              "with a calibrated probability. It says nothing about identity or how a person "
              "identifies, and it is not for decisions about people (hiring, access, policing, "
              "anything that treats a person by the answer).",
    "keypoints": "Research and teaching: 68 facial landmarks (the iBUG 300-W layout) on photos "
                 "of a face, e.g. to align or crop faces. Not for identifying people.",
}
DATA_TERMS = {
    "gender": "The photos keep their own terms: the chapter's CSV of image URLs (the photos "
              "belong to their owners), CelebA (non-commercial research use only), gender_web "
              "(no stated licence: research use only), your own photos (your terms). A model "
              "trained on research-only photos is itself for research use only.",
    "keypoints": "The Udacity facial-keypoints data (frames of the YouTube Faces database) is "
                 "for research use: so is a model trained on it.",
}
WEIGHTS_TERMS = {
    "imagenet": "Keras' published ImageNet weights (keras.applications), under the terms Keras "
                "publishes for each model",
    "face_recognition_models": "dlib's face ResNet weights from face-recognition-models 0.3.0 "
                               "(CC0 1.0 by its LICENSE file), read into facetl's Keras "
                               "network: inside the exported file, no dlib needed to run it",
    "none": "random initialisation (no terms)",
}


def read_metrics(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def gender_rows(name: str, metrics: dict[str, Any]) -> list[str]:
    """Table rows: the whole test set, then each front-end group; and the weakest group."""
    low, high = metrics["accuracy_ci95"]
    rows = [f"| {name} | all | {metrics['n_test']} | {percent(metrics['accuracy'])} "
            f"({percent(low)}-{percent(high)}) |"]
    for group, row in sorted(metrics.get("by_face", {}).items()):
        low, high = row["accuracy_ci95"]
        rows.append(f"| {name} | face: {group} | {row['n']} | {percent(row['accuracy'])} "
                    f"({percent(low)}-{percent(high)}) |")
    return rows


def weakest(name: str, metrics: dict[str, Any]) -> str | None:
    groups = metrics.get("by_face", {})
    if len(groups) < 2:
        return None
    group, row = min(groups.items(), key=lambda item: item[1]["accuracy"])
    return (f"- Weakest front-end group on {name}: `{group}` ({percent(row['accuracy'])} of "
            f"{row['n']} photos, against {percent(metrics['accuracy'])} overall).")


def measured(task: str, metrics_dir: Path) -> list[str]:
    if task == "keypoints":
        found = read_metrics(metrics_dir, "keypoints")
        if found is None:
            return ["Not measured: no metrics/keypoints.json in the workspace that exported it."]
        return [f"On the held-out frames of its training source ({found['n_test']} frames): "
                f"NME {percent(found['nme'])} of the inter-ocular distance, failure rate "
                f"{percent(found['failure_rate'])}; dlib's 68-point predictor on the same "
                f"frames: NME {percent(found['dlib_nme'])}."]
    sets = [(label, found) for label, name in (("test split", "gender"),
                                               ("photos from elsewhere", "gender_ood"))
            if (found := read_metrics(metrics_dir, name)) is not None]
    if not sets:
        return ["Not measured: no metrics/gender.json or metrics/gender_ood.json in the "
                "workspace that exported it."]
    lines = ["Accuracy with its 95% interval, per face front-end group (`found`, `fallback`, "
             "`none`: what the front end did; `off`: alignment off), as the evaluation stages "
             "measured the Keras model (the export check keeps the file within "
             "1e-4 of it):", "", "| test set | group | n | accuracy (95% CI) |",
             "|---|---|---|---|"]
    for label, found in sets:
        lines += gender_rows(label, found)
    lines.append("")
    lines += [line for label, found in sets if (line := weakest(label, found))]
    if len(sets) == 1:
        lines.append(f"- Only the {sets[0][0]} was measured.")
    return lines


def training_data(manifest: dict[str, Any]) -> list[str]:
    task, meta = manifest["task"], manifest["model_json"]
    values = (manifest["params"] or {}).get("values", {})
    backbone = meta.get("backbone", "?")
    weights = values.get(f"backbones.{backbone}", {}).get("weights")
    source = (values.get("data.gender", {}).get("source") if task == "gender"
              else values.get("data.keypoints", {}).get("csv"))
    return [f"- Source: {source or 'not recorded (no dvc.lock made this model)'}.",
            f"- {DATA_TERMS[task]}",
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
        "## Intended use", "", USE[task], "",
        "## Limits", "",
        f"- The file is the network only. It expects {manifest['caller_feeds']}; facetl's "
        "front end makes that input (`facetl predict --runtime onnx` runs it), and a caller "
        "that crops or resizes otherwise gets other answers.",
        "- Measured only where the table below says; other photos (other cameras, ages, "
        "lighting, poses) may do worse.",
    ]
    if task == "gender":
        lines.append(f"- Probabilities are calibrated (temperature "
                     f"{manifest['calibration']['temperature']:.3f}) on validation people of "
                     "the training source; on photos from elsewhere they are less reliable.")
        no_face = manifest["calibration"].get("no_face")
        if no_face:
            lines.append(f"- Where the front end finds no face, the answer has its own "
                         f"temperature ({no_face['temperature']:.3f}), fitted with pictures "
                         "that hold no face: expect answers closer to 1/2 there.")
    lines += ["", "## Measured", "", *measured(task, metrics_dir), "",
              "## Training data and licence terms", "", *training_data(manifest), "",
              "## Files", "",
              f"- `{manifest['file']}`: the network; `manifest.json`: its input, output, "
              "preprocessing, the front end's settings, the params and the commit.", ""]
    return "\n".join(lines)
