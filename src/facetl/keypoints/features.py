"""Stage features_keypoints: `keypoints.backbone` over the prepared images, cached.

`chapter`: on the whole frames, exactly as the gender task does it (the chapter's head trains
on these). `finetune`: on the face crops; the new head's first phase trains on these frozen
features in seconds, before fine-tuning starts from it.
"""

from __future__ import annotations

from facetl.core.params import load_params
from facetl.keypoints.config import backbone_name, recipe
from facetl.models.features import extract_features

TASK = "keypoints"


def main() -> None:
    params = load_params()
    extract_features(TASK, backbone_name(params), params, {"recipe": recipe(params)})
