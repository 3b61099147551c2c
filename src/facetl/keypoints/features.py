"""Stage features_keypoints: the active recipe's backbone over the prepared images, cached.

`chapter`: the global `backbone` on the whole frames, exactly as the gender task does it (the
chapter's head trains on these). `finetune`: `keypoints.backbone` on the face crops; the new
head's first phase trains on these frozen features in seconds, before fine-tuning starts from
it. The extractor is saved beside its features (`<backbone>.keras`), so training joins the head
to the very network that made them.
"""

from __future__ import annotations

import keras

from facetl.core import paths, settings
from facetl.core.atomic import atomic_path, write_json
from facetl.core.params import load_params, lookup
from facetl.keypoints.config import backbone_name, recipe
from facetl.models.backbones import build_extractor, get_spec
from facetl.models.backend import replica_strategy
from facetl.models.extraction import NpyRows, extract_to_npy
from facetl.models.precision import resolve_precision

TASK = "keypoints"


def main() -> None:
    params = load_params()
    name = backbone_name(params)
    backbone = lookup(params, f"backbones.{name}")
    cfg = lookup(params, "features")
    precision = resolve_precision(cfg["precision"], get_spec(name).bf16_wins_with)
    keras.utils.set_random_seed(lookup(params, "seed"))  # `weights: none` is reproducible too
    strategy = replica_strategy(settings.flag("FACETL_MULTI_GPU"))

    with NpyRows(paths.prepared_dir(TASK) / "images.npy") as images:
        with strategy.scope():
            model = build_extractor(name, backbone["weights"], images.shape[1],
                                    backbone.get("preprocess"), precision)
        seconds = extract_to_npy(model, images, paths.features_path(TASK, name),
                                 cfg["batch_size"], cfg["storage"],
                                 distributed=strategy.num_replicas_in_sync > 1)
    with atomic_path(paths.extractor_path(TASK, name)) as tmp:
        model.save(tmp)

    write_json(paths.metrics_path(f"features_{TASK}"), {
        "backbone": name, "recipe": recipe(params), "precision": precision,
        "images": len(images), "seconds": round(seconds, 2),
        "images_per_s": round(len(images) / seconds, 2)})
    print(f"features {TASK} ({recipe(params)}): {name} ({precision}) "
          f"{len(images) / seconds:.1f} img/s")
