"""The gender task's settings (its sections of params.yaml) and its model.json, checked by
core's engine. Light on purpose: a stage imports it before TensorFlow."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from facetl.core.schema import (
    Augment,
    Classes,
    Count,
    Faces,
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
    choice,
    number,
    whole,
)

GroupColumn = Annotated[str, Field(description="a column name, or \"\" for none")]


class GenderData(Section):
    source: Annotated[str, Field(min_length=1, description="a CSV (URL or local path) or a "
                                                           "folder with a subfolder per class")]
    images: Annotated[str, Field(description="the folder a local CSV's relative paths start "
                                             "from")]
    path_column: Text
    label_column: Text
    group_column: GroupColumn
    classes: Classes
    per_class: Annotated[int | None, Field(ge=1, description="an integer >= 1 (the first N "
                                                             "photos of each class), or null "
                                                             "for all")]


class PrepareGender(Section):
    input_size: Annotated[int, whole(32, note="pixels")]
    test_size: Share
    balance: Flag


class FinetuneGender(Section):
    enabled: Flag
    unfreeze: Unfreeze
    epochs: Count
    batch_size: Count
    learning_rate: Positive
    warmup_epochs: Annotated[float, number(ge=0)]
    patience: Annotated[int, whole(0, note="epochs without a better validation loss")]
    val_size: Share
    precision: Precision
    optimizer: Optimizer
    weight_decay: Annotated[float, number(ge=0, note="AdamW's decoupled weight decay")]
    augment: Augment


class OodGender(Section):
    source: Annotated[str, Field(min_length=1, description="a local CSV or a folder with a "
                                                           "subfolder per class")]
    images: Annotated[str, Field(description="the folder a CSV's relative paths start from")]
    path_column: Text
    label_column: Text
    group_column: GroupColumn


class NoFaceFit(Section):
    validation_photos: Annotated[int, whole(0)]
    faceless_pictures: Annotated[int, whole(0)]


class NoFace(Section):
    """The `none` group's own temperature (facetl.gender.no_face)."""

    temperature: Annotated[float, number(gt=0)]
    model_temperature: Annotated[float, number(gt=0)]
    fitted_on: NoFaceFit


class GenderModel(ModelFile):
    task: Annotated[Literal["gender"], choice("gender")]
    classes: Classes
    faces: Annotated[Faces | None, Field(description="the face front end's settings")] = None
    no_face: Annotated[NoFace | None, Field(description="the no-face group's calibration")] = None


SCHEMA = TaskSchema(
    name="gender",
    sections={"data.gender": GenderData, "prepare.gender": PrepareGender,
              "train.gender": HeadTraining, "finetune.gender": FinetuneGender,
              "ood.gender": OodGender},
    model_file=lambda meta: GenderModel,
)
