"""The keypoint task's recipe and its params (`keypoints:` in params.yaml), as the stages read
them; keypoints/schema.py checks them once, at the start of every keypoint stage.

`keypoints.recipe` picks the recipe each keypoint stage runs:
- `finetune` (default): face crops, a head that keeps position, fine-tuned backbone,
  augmentation, two-pass inference; settings under `keypoints.*`;
- `chapter`: the chapter's recipe as it was: whole frames (`prepare.keypoints.*`), the
  backbone's cached features, the chapter's head (`train.keypoints.*`).
Both use `keypoints.backbone` (the chapter used vgg16: `-S keypoints.backbone=vgg16`), never
the gender task's `backbone`: DVC has no conditional params, so a keypoint stage listing
`backbone` would rerun on every gender backbone change, whatever the recipe.
"""

from __future__ import annotations

from typing import Any

from facetl.core.params import lookup

PIPELINE = "dvc repro pipelines/keypoints/dvc.yaml"  # the command that trains the task's model


def recipe(params: dict[str, Any]) -> str:
    """`keypoints.recipe`: chapter or finetune."""
    return lookup(params, "keypoints.recipe")


def backbone_name(params: dict[str, Any]) -> str:
    """The keypoint task's backbone, for either recipe: `keypoints.backbone`."""
    return lookup(params, "keypoints.backbone")


def keypoint_params(params: dict[str, Any]) -> dict[str, Any]:
    """The `keypoints` block of params.yaml."""
    return lookup(params, "keypoints")


def inference_meta(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a saved model needs at inference besides its weights (goes into model.json)."""
    infer = cfg["inference"]
    return {"margin": float(cfg["crop"]["margin"]), "detector": infer["detector"],
            "upsample": int(infer["upsample"]), "passes": int(infer["passes"]),
            "flip_tta": bool(infer["flip_tta"])}
