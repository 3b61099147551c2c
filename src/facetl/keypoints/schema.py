"""The keypoint task's settings (its sections of params.yaml, its `keypoints:` block) and its
model.json, checked by core's engine. Light on purpose: a stage imports it before TensorFlow."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from facetl.core.schema import (
    Augment,
    Count,
    Dropout,
    Flag,
    HeadTraining,
    ModelFile,
    Optimizer,
    Positive,
    Precision,
    Section,
    Share,
    TaskSchema,
    Text,
    Unfreeze,
    Upsample,
    choice,
    number,
    whole,
)

Loss = Annotated[Literal["mae", "l1", "mse", "wing"], choice("mae", "l1", "mse", "wing")]
Detector = Annotated[Literal["dlib", "none"], choice("dlib", "none")]


class KeypointData(Section):
    csv: Annotated[str, Field(min_length=1, description="the path of the keypoints CSV")]
    images: Annotated[str | None, Field(description="the folder (or base URL) of the images, "
                                                    "or null for the CSV's folder")]


class PrepareKeypoints(Section):
    input_size: Annotated[int, whole(32, note="pixels")]
    test_size: Share
    flip: Flag


class TrainKeypoints(HeadTraining):
    activation: Annotated[Literal["sigmoid", "linear"], choice("sigmoid", "linear")]
    loss: Loss
    wing_width: Positive
    wing_epsilon: Positive


class KeypointCrop(Section):
    input_size: Annotated[int, whole(32, note="pixels")]
    margin: Annotated[float, number(ge=1, le=3, note="times the landmarks' square")]
    calibration_images: Count


class KeypointHead(Section):
    type: Annotated[Literal["gdconv", "conv", "gap"], choice("gdconv", "conv", "gap")]
    channels: Count
    dropout: Dropout
    epochs: Count
    learning_rate: Positive
    precision: Precision


class KeypointFinetune(Section):
    epochs: Annotated[int, whole(0, note="0: the head alone")]
    unfreeze: Unfreeze
    learning_rate: Positive
    warmup_epochs: Annotated[float, number(ge=0)]
    patience: Annotated[int, whole(0, note="epochs without a better validation loss")]
    weight_decay: Annotated[float, number(ge=0, note="AdamW's decoupled weight decay")]
    optimizer: Optimizer
    precision: Precision


class KeypointInference(Section):
    detector: Detector
    upsample: Upsample
    passes: Count
    flip_tta: Flag


class Keypoints(Section):
    recipe: Annotated[Literal["finetune", "chapter"], choice("finetune", "chapter")]
    backbone: Annotated[str, Field(min_length=1, description="a name under backbones")]
    crop: KeypointCrop
    head: KeypointHead
    finetune: KeypointFinetune
    batch_size: Count
    val_size: Share
    loss: Loss
    wing_width: Positive
    wing_epsilon: Positive
    augment: Augment
    inference: KeypointInference


class KeypointChapterModel(ModelFile):
    task: Annotated[Literal["keypoints"], choice("keypoints")]
    recipe: Annotated[Literal["chapter"], choice("chapter", "finetune")] = "chapter"
    val_mae_normalised: Annotated[float, number(ge=0)]


class DetectorCalibration(Section):
    """The mapping from dlib's face box to the landmarks' square (keypoints/locate.py)."""

    dx: Annotated[float, number()]
    dy: Annotated[float, number()]
    ratio: Annotated[float, number(gt=0)]
    fitted_on: Annotated[int, whole(0)]


class Prior(Section):
    cx: Annotated[float, number()]
    cy: Annotated[float, number()]
    side: Annotated[float, number(gt=0)]


class KeypointFinetuneModel(ModelFile):
    task: Annotated[Literal["keypoints"], choice("keypoints")]
    recipe: Annotated[Literal["finetune"], choice("chapter", "finetune")]
    head: Text
    loss: Text
    val_mae_crop: Annotated[float, number(ge=0)]
    margin: Annotated[float, number(ge=1, le=3)]
    detector: Detector
    upsample: Upsample
    passes: Count
    flip_tta: Flag
    calibration: DetectorCalibration
    prior: Prior


SCHEMA = TaskSchema(
    name="keypoints",
    sections={"data.keypoints": KeypointData, "prepare.keypoints": PrepareKeypoints,
              "train.keypoints": TrainKeypoints, "keypoints": Keypoints},
    model_file=lambda meta: (KeypointFinetuneModel if meta.get("recipe") == "finetune"
                             else KeypointChapterModel),
    removed={"keypoints.finetune.workers": "data-loading threads cannot change a result: set "
                                           "the environment variable FACETL_WORKERS instead"},
    backbone_keys=("keypoints.backbone",),
)
