"""Stage features_gender (and the extraction under features_keypoints): a backbone's features
of a task's prepared images, cached per backbone so that switching back restores them from
DVC's cache.

`task` only names the folders (`data/prepared/<task>` in, `data/features/<task>/` out): the
extraction is the same for every task; the task says which backbone is active.
"""

from __future__ import annotations

from typing import Any

import keras

from facetl.core import environment, paths
from facetl.core.atomic import atomic_path, write_json
from facetl.core.params import load_params, lookup
from facetl.models.backbones import build_extractor, get_spec
from facetl.models.backend import replica_strategy
from facetl.models.extraction import NpyRows, extract_to_npy
from facetl.models.precision import resolve_precision


def extract_features(task: str, name: str, params: dict[str, Any],
                     extra: dict[str, Any] | None = None) -> None:
    """Backbone `name` over `data/prepared/<task>/images.npy`; the extractor is saved beside
    its features, so training joins a head to the very network that made them. `extra` goes
    into the metrics file (e.g. the keypoint recipe)."""
    backbone = lookup(params, f"backbones.{name}")
    cfg = lookup(params, "features")
    precision = resolve_precision(cfg["precision"], get_spec(name).bf16_wins_with)
    keras.utils.set_random_seed(lookup(params, "seed"))  # `weights: none` is reproducible too
    strategy = replica_strategy(environment.flag("FACETL_MULTI_GPU"))

    with NpyRows(paths.prepared_dir(task) / "images.npy") as images:
        with strategy.scope():
            model = build_extractor(name, backbone["weights"], images.shape[1],
                                    backbone.get("preprocess"), precision)
        seconds = extract_to_npy(model, images, paths.features_path(task, name),
                                 cfg["batch_size"], cfg["storage"],
                                 distributed=strategy.num_replicas_in_sync > 1)
    with atomic_path(paths.extractor_path(task, name)) as tmp:
        model.save(tmp)

    write_json(paths.metrics_path(f"features_{task}"), {"backbone": name} | (extra or {}) | {
        "precision": precision, "images": len(images), "seconds": round(seconds, 2),
        "images_per_s": round(len(images) / seconds, 2)})
    print(f"features {task}: {name} ({precision}) {len(images) / seconds:.1f} img/s")


def main(task: str) -> None:
    params = load_params()
    extract_features(task, lookup(params, "backbone"), params)
