"""The keypoint task's recipe and its settings (`keypoints:` in params.yaml), checked once.

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

from facetl.core.errors import FacetlError
from facetl.core.params import lookup

RECIPES = ("chapter", "finetune")
HEADS = ("conv", "gdconv", "gap")
DETECTORS = ("dlib", "none")


def recipe(params: dict[str, Any]) -> str:
    value = str(lookup(params, "keypoints.recipe")).lower()
    if value not in RECIPES:
        raise FacetlError(f"keypoints.recipe must be one of {RECIPES}, got {value!r}")
    return value


def backbone_name(params: dict[str, Any]) -> str:
    """The keypoint task's backbone, for either recipe: `keypoints.backbone`."""
    return lookup(params, "keypoints.backbone")


def settings(params: dict[str, Any]) -> dict[str, Any]:
    """The `keypoints` block, with its values checked (each error names its param)."""
    cfg = lookup(params, "keypoints")
    crop, head, infer = cfg["crop"], cfg["head"], cfg["inference"]
    if not isinstance(crop["input_size"], int) or crop["input_size"] < 32:
        raise FacetlError(f"keypoints.crop.input_size must be a whole number >= 32, "
                          f"got {crop['input_size']!r}")
    if not 1.0 <= float(crop["margin"]) <= 3.0:
        raise FacetlError(f"keypoints.crop.margin must be between 1 and 3, got {crop['margin']}")
    if head["type"] not in HEADS:
        raise FacetlError(f"keypoints.head.type must be one of {HEADS}, got {head['type']!r}")
    if infer["detector"] not in DETECTORS:
        raise FacetlError(f"keypoints.inference.detector must be one of {DETECTORS}, "
                          f"got {infer['detector']!r}")
    if not isinstance(infer["passes"], int) or infer["passes"] < 1:
        raise FacetlError(f"keypoints.inference.passes must be 1 or more, got {infer['passes']!r}")
    return cfg


def inference_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a saved model needs at inference besides its weights (goes into model.json)."""
    infer = cfg["inference"]
    return {"margin": float(cfg["crop"]["margin"]), "detector": infer["detector"],
            "upsample": int(infer["upsample"]), "passes": int(infer["passes"]),
            "flip_tta": bool(infer["flip_tta"])}
