"""One schema for the whole of params.yaml, and for the model.json a trained model carries.

Every stage checks the whole workspace params.yaml against it before any work (and before it
imports TensorFlow), so a mistake costs a second and one line per mistake, in the form

    params.yaml: finetune.gender.unfreeze = 'abc': expected an integer >= -1 (-1: all ...)

never minutes of earlier stages and a traceback. Each leaf says what it expects in its
description; a misspelt key gets the closest known name. The stages still read the plain
dict of params (the schema checks it, it does not replace it).

`RENAMES` maps a param's old dotted name to its new one: old model.json files and old
experiments' params are read through it, so a rename never strands a trained model.
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from facetl.core.errors import FacetlError

# Old dotted name -> new: read old model.json files and old experiments' params through it.
RENAMES = {"faces.size": "faces.crop_size"}  # DVC's run cache ignores leaves named `size`
# Settings that are gone, and why (an old params.yaml gets this instead of "not a setting").
REMOVED = {
    "faces.fallback": "its LBP cascade was at chance; faces.pad and faces.cnn are the "
                      "fallbacks now",
    "keypoints.finetune.workers": "data-loading threads cannot change a result: set the "
                                  "environment variable FACETL_WORKERS instead",
}
# YAML 1.1 (PyYAML) reads a number in e-notation without a decimal point, like 1e-4, as text.
YAML_TEXT_NUMBER = re.compile(r"([-+]?\d+)[eE]([-+]?\d+)")
# `backbones.<name>.weights` values that are not files (`face_recognition_models`: dlib_face's).
WEIGHTS_WORDS = ("imagenet", "face_recognition_models", "none", "None", "")


def _bounds(what: str, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, note: str = "") -> str:
    """'an integer >= -1 (-1: ...)', 'a number from 0 to 1': the text an error shows."""
    if ge is not None and le is not None:
        text = f"{what} from {ge:g} to {le:g}"
    else:
        limits = [f"{sign} {value:g}" for sign, value in
                  ((">=", ge), (">", gt), ("<=", le), ("<", lt)) if value is not None]
        text = " and ".join([f"{what} {limits[0]}", *limits[1:]]) if limits else what
    return f"{text} ({note})" if note else text


def whole(ge: int | None = None, le: int | None = None, note: str = "") -> Any:
    """An integer field (YAML's true and false are not integers here)."""
    return Field(ge=ge, le=le, description=_bounds("an integer", ge=ge, le=le, note=note))


def number(ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None, note: str = "") -> Any:
    """A number field: an integer or a decimal, not text (YAML reads `1e-4` as text)."""
    return Field(ge=ge, gt=gt, le=le, lt=lt,
                 description=_bounds("a number", ge=ge, gt=gt, le=le, lt=lt, note=note))


def choice(*names: str) -> Any:
    return Field(description=f"one of {', '.join(names)}")


def _two_classes(names: list[str]) -> list[str]:
    if len(names) != 2 or len({name.strip().lower() for name in names}) != 2 or not all(
            name.strip() for name in names):
        raise ValueError("exactly two distinct class names (the second is the positive class)")
    return names


Flag = Annotated[bool, Field(description="true or false")]
Text = Annotated[str, Field(min_length=1, description="a non-empty text")]
Count = Annotated[int, whole(1)]
Positive = Annotated[float, number(gt=0)]
Share = Annotated[float, number(gt=0, lt=1, note="a share of the rows")]
Dropout = Annotated[float, number(ge=0, lt=1)]
Probability = Annotated[float, number(ge=0, le=1, note="a probability")]
Unfreeze = Annotated[int, whole(-1, note="-1: all layers but BatchNorm")]
Upsample = Annotated[int, whole(0, 3, note="HOG doubles the photo that many times")]
Precision = Annotated[Literal["auto", "float32", "bfloat16", "float16"],
                      choice("auto", "float32", "bfloat16", "float16")]
Optimizer = Annotated[Literal["adamw", "adam"], choice("adamw", "adam")]
Classes = Annotated[list[str], AfterValidator(_two_classes),
                    Field(description="exactly two distinct class names (the second is the "
                                      "positive class)")]


class Section(BaseModel):
    """A mapping of settings: no key missing, none unknown, no type coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Backbone(Section):
    weights: Annotated[str | None, Field(description="imagenet, none, or the path of a "
                                                     "weights file")]
    preprocess: Annotated[Literal["caffe", "tf", "torch", "raw"] | None,
                          Field(description="one of caffe, tf, torch, raw, or null (the "
                                            "weights' own)")]


class GenderData(Section):
    source: Annotated[str, Field(min_length=1, description="a CSV (URL or local path) or a "
                                                           "folder with a subfolder per class")]
    images: Annotated[str, Field(description="the folder a local CSV's relative paths start "
                                             "from")]
    path_column: Text
    label_column: Text
    group_column: Annotated[str, Field(description="a column name, or \"\" for none")]
    classes: Classes
    per_class: Annotated[int | None, Field(ge=1, description="an integer >= 1 (the first N "
                                                             "photos of each class), or null "
                                                             "for all")]


class KeypointData(Section):
    csv: Annotated[str, Field(min_length=1, description="the path of the keypoints CSV")]
    images: Annotated[str | None, Field(description="the folder (or base URL) of the images, "
                                                    "or null for the CSV's folder")]


class Data(Section):
    gender: GenderData
    keypoints: KeypointData


class Faces(Section):
    align: Flag
    upsample: Upsample
    detect_long_side: Annotated[int, whole(80, note="pixels; HOG's window is 80")]
    pad: Annotated[float, number(ge=0, le=1, note="a share of the long side; 0: off")]
    cnn: Flag
    crop_size: Annotated[int, whole(16, note="pixels")]
    margin: Annotated[float, number(ge=0, le=2, note="dlib_face expects 0.25")]


class Download(Section):
    max_mb: Positive


class PrepareGender(Section):
    input_size: Annotated[int, whole(32, note="pixels")]
    test_size: Share
    balance: Flag


class PrepareKeypoints(Section):
    input_size: Annotated[int, whole(32, note="pixels")]
    test_size: Share
    flip: Flag


class Prepare(Section):
    gender: PrepareGender
    keypoints: PrepareKeypoints


class Features(Section):
    batch_size: Count
    precision: Precision
    storage: Annotated[Literal["float32", "float16"], choice("float32", "float16")]


class Head(Section):
    type: Annotated[Literal["chapter", "linear"], choice("chapter", "linear")]
    c_grid: Annotated[list[Positive], Field(min_length=1, description="a list of numbers > 0")]
    folds: Annotated[int, whole(2)]


class TrainGender(Section):
    epochs: Count
    batch_size: Count
    learning_rate: Positive
    dropout: Dropout
    val_size: Share
    precision: Precision


Loss = Annotated[Literal["mae", "l1", "mse", "wing"], choice("mae", "l1", "mse", "wing")]


class TrainKeypoints(TrainGender):
    activation: Annotated[Literal["sigmoid", "linear"], choice("sigmoid", "linear")]
    loss: Loss
    wing_width: Positive
    wing_epsilon: Positive


class Train(Section):
    gender: TrainGender
    keypoints: TrainKeypoints


class Augment(Section):
    flip: Flag
    rotate_deg: Annotated[float, number(ge=0, note="degrees")]
    scale: Annotated[float, number(ge=0, lt=1, note="a zoom factor in 1 ± scale")]
    shift: Annotated[float, number(ge=0, note="a share of the side")]
    brightness: Annotated[float, number(ge=0)]
    contrast: Annotated[float, number(ge=0)]
    saturation: Annotated[float, number(ge=0)]
    grayscale_p: Probability
    downscale_p: Probability
    downscale_min: Annotated[float, number(gt=0, le=1)]
    blur_p: Probability
    blur_sigma: Annotated[float, number(ge=0)]
    jpeg_p: Probability
    jpeg_quality_min: Annotated[int, whole(1, 100)]


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


class Finetune(Section):
    gender: FinetuneGender


class OodGender(Section):
    source: Annotated[str, Field(min_length=1, description="a local CSV or a folder with a "
                                                           "subfolder per class")]
    images: Annotated[str, Field(description="the folder a CSV's relative paths start from")]
    path_column: Text
    label_column: Text
    group_column: Annotated[str, Field(description="a column name, or \"\" for none")]


class Ood(Section):
    gender: OodGender


class Repeats(Section):
    splits: Annotated[int, whole(1, note="1: the single split")]


class Evaluate(Section):
    gallery_size: Count


class ScratchCommon(Section):
    input_scale: Positive
    filters: Annotated[list[Count], Field(min_length=1, description="a list of integers >= 1 "
                                                                    "(filters per block)")]
    dense: Count
    val_size: Share
    precision: Precision


class Scenario(Section):
    input_size: Annotated[int, whole(8, note="pixels")]
    pool_size: Count
    epochs: Count
    batch_size: Count
    learning_rate: Positive
    max_train_images: Annotated[int | None, Field(ge=1, description="an integer >= 1, or null "
                                                                    "for the whole train split")]


class Scratch(Section):
    common: ScratchCommon
    scenarios: dict[str, Scenario]


Photo = Annotated[int, Field(ge=0)] | Annotated[str, Field(min_length=1)]
Layer = Annotated[str, Field(min_length=1, description="first, last or a convolution's name")]


class Activations(Section):
    image: Annotated[Photo, Field(description="a test photo: its position (an integer >= 0) "
                                              "or its file name")]
    images: Annotated[Annotated[int, Field(ge=0)] | list[Photo],
                      Field(description="a count of test photos (an integer >= 0) or a list "
                                        "of positions or file names")]
    first_layer: Layer
    last_layer: Layer
    channel: Annotated[int, whole(0)]
    channels: Count
    gradcam_layer: Layer
    gradcam_method: Annotated[Literal["hirescam", "gradcam"], choice("hirescam", "gradcam")]
    gradcam_images: Annotated[int, whole(0)]
    gradcam_alpha: Probability


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


Detector = Annotated[Literal["dlib", "none"], choice("dlib", "none")]


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


class Params(Section):
    """The whole of params.yaml."""

    seed: Annotated[int, whole(0)]
    backbone: Annotated[str, Field(min_length=1, description="a name under backbones")]
    backbones: dict[str, Backbone]
    data: Data
    faces: Faces
    download: Download
    prepare: Prepare
    features: Features
    head: Head
    train: Train
    finetune: Finetune
    ood: Ood
    repeats: Repeats
    evaluate: Evaluate
    scratch: Scratch
    activations: Activations
    keypoints: Keypoints


class ModelFile(BaseModel):
    """model.json: what inference needs is checked; other keys are the model's own notes."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    input_size: Annotated[int, whole(1, note="pixels")]
    backbone: Text


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


class KeypointChapterModel(ModelFile):
    task: Annotated[Literal["keypoints"], choice("keypoints")]
    recipe: Annotated[Literal["chapter"], choice("chapter", "finetune")] = "chapter"
    val_mae_normalised: Annotated[float, number(ge=0)]


class Calibration(Section):
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
    calibration: Calibration
    prior: Prior


def show(value: Any) -> str:
    """A value as the user wrote it in YAML, shortened."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_of(node: Any) -> type[BaseModel] | None:
    """The pydantic model a field's type is (or holds, through Optional), else None."""
    if get_origin(node) is Annotated:
        return _model_of(get_args(node)[0])
    if isinstance(node, type) and issubclass(node, BaseModel):
        return node
    if get_origin(node) not in (Union, UnionType):
        return None
    models = [arg for arg in get_args(node) if isinstance(arg, type) and issubclass(arg, BaseModel)]
    return models[0] if len(models) == 1 else None


def _walk(root: type[BaseModel], loc: tuple) -> tuple[list[str], str | None, Any]:
    """The dotted key an error location names (down to its setting, not into a list or a
    union's member), that setting's description, and the type found there."""
    node: Any = root
    parts: list[str] = []
    description = None
    for item in loc:
        model = _model_of(node)
        if model is not None:
            if item not in model.model_fields:
                break
            field = model.model_fields[item]
            parts.append(str(item))
            description, node = field.description, field.annotation
        elif get_origin(node) is dict:
            parts.append(str(item))
            description, node = None, get_args(node)[1]
        else:
            break
    return parts, description, node


def _value(data: Any, parts: list[str]) -> tuple[bool, Any]:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def _closest(name: str, known: list[str]) -> str | None:
    found = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return found[0] if found else None


def _problem(root: type[BaseModel], data: dict, error: dict) -> tuple[str, str]:
    """(dotted key, 'key = value: what is expected') for one pydantic error."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        parts, _, node = _walk(root, loc[:-1])
        key = ".".join([*parts, str(loc[-1])])
        value = show(_value(data, [*parts, str(loc[-1])])[1])
        if key in RENAMES:
            return key, f"{key} = {value}: renamed to {RENAMES[key]}"
        if key in REMOVED:
            return key, f"{key} = {value}: removed ({REMOVED[key]})"
        model = _model_of(node)
        known = list(model.model_fields) if model else []
        prefix = ".".join(parts)
        near = _closest(str(loc[-1]), known)
        hint = (f"did you mean {'.'.join([*parts, near])}?" if near else
                f"{prefix or 'the top level'} has {', '.join(known)}")
        return key, f"{key} = {value}: not a setting; {hint}"
    parts, description, node = _walk(root, loc)
    key = ".".join(parts)
    found, value = _value(data, parts)
    if error["type"] == "value_error":  # a validator's own words
        expected = str(error["ctx"]["error"])
    elif description:
        expected = description
    elif (model := _model_of(node)) is not None:
        expected = f"a mapping of {', '.join(model.model_fields)}"
    else:
        expected = "a mapping of names to settings"
    if isinstance(value, str) and (exponent := YAML_TEXT_NUMBER.fullmatch(value.strip())):
        expected += (f" (YAML reads {value} as text: write "
                     f"{exponent[1]}.0e{exponent[2]})")
    return key, f"{key} = {show(value) if found else '(missing)'}: expected {expected}"


def check(root: type[BaseModel], data: Any, where: str, fix: str = "") -> BaseModel:
    """`data` validated by `root`; otherwise a FacetlError with one line per wrong key:
    `<where>: <key> = <value>: expected <what>` (and `fix`, when given, on each)."""
    try:
        return root.model_validate(data)
    except ValidationError as exc:
        data = data if isinstance(data, dict) else {}
        old_names = {new: old for old, new in RENAMES.items() if _value(data, old.split("."))[0]}
        lines: dict[str, str] = {}
        for error in exc.errors():
            key, line = _problem(root, data, error)
            if error["type"] == "missing" and key in old_names:
                continue  # its old name is there: the line for that one says the new name
            lines.setdefault(key, f"{where}: {line}{fix}")
        raise FacetlError("\n".join(lines.values())) from None


def _names(params: Params) -> list[str]:
    """Problems between settings: backbone names that must be listed under backbones, and the
    weights files of the backbones in use."""
    problems = []
    known = list(params.backbones)
    for key, name in (("backbone", params.backbone), ("keypoints.backbone",
                                                      params.keypoints.backbone)):
        if name not in params.backbones:
            near = _closest(name, known)
            problems.append(f"{key} = {show(name)}: expected a name under backbones"
                            + (f"; did you mean {near}?" if near else f" ({', '.join(known)})"))
            continue
        weights = params.backbones[name].weights
        if weights is not None and weights not in WEIGHTS_WORDS and not Path(weights).is_file():
            problems.append(f"backbones.{name}.weights = {show(weights)}: expected imagenet, "
                            "none, or the path of a weights file (no such file)")
    return list(dict.fromkeys(problems))


def validate_params(params: Any, where: str = "params.yaml") -> Params:
    """The whole params.yaml checked, or a FacetlError with one line per mistake."""
    settings = check(Params, params, where)
    problems = _names(settings)
    if problems:
        raise FacetlError("\n".join(f"{where}: {line}" for line in problems))
    return settings


def renamed(data: dict) -> dict:
    """A copy of `data` (params, or a model.json that embeds param groups) with each old name
    of RENAMES moved to its new one; where both are present the new one wins."""
    data = copy.deepcopy(data)
    for old, new in RENAMES.items():
        *parents, leaf = old.split(".")
        found, parent = _value(data, parents)
        if not found or not isinstance(parent, dict) or leaf not in parent:
            continue
        *new_parents, new_leaf = new.split(".")
        node = data
        for part in new_parents:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(new_leaf, parent.pop(leaf))
    return data


def validate_model_file(meta: Any, where: str, task: str, made_by: str = "dvc repro") -> dict:
    """A `task` model's model.json read through RENAMES and checked against what inference
    needs of it; returns the renamed dict, or raises one line per problem (`made_by`: the
    command that retrains it)."""
    fix = f"; retrain the model with `{made_by}`"
    if not isinstance(meta, dict):
        raise FacetlError(f"{where}: expected a JSON object{fix}")
    meta = renamed(meta)
    if task == "keypoints":
        kind = KeypointFinetuneModel if meta.get("recipe") == "finetune" else KeypointChapterModel
    else:
        kind = GenderModel
    check(kind, meta, where, fix)
    return meta
