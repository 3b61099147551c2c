"""The checking engine for params.yaml and for the model.json a trained model carries, with
the settings every task shares; each task's own sections live in its package's schema.py
(a `TaskSchema`), so editing one task's settings reruns only that task's stages.

A stage checks params.yaml against the shared settings and its task's sections before any work
(and before it imports TensorFlow); `validate_params` with every task checks the whole file. A
mistake costs a second and one line per mistake, in the form

    params.yaml: finetune.<task>.unfreeze = 'abc': expected an integer >= -1 (-1: all ...)

never minutes of earlier stages and a traceback. Each leaf says what it expects in its
description; a misspelt key gets the closest known name. The stages still read the plain
dict of params (the schema checks it, it does not replace it).

`RENAMES` maps a param's old dotted name to its new one: old model.json files and old
experiments' params are read through it, so a rename never strands a trained model.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from facetl.core.errors import FacetlError
from facetl.core.tasks import task_names

# Old dotted name -> new: read old model.json files and old experiments' params through it.
RENAMES = {"faces.size": "faces.crop_size"}  # DVC's run cache ignores leaves named `size`
# Shared settings that are gone, and why (an old params.yaml gets this instead of "not a
# setting"); a task's own are in its TaskSchema.removed.
REMOVED = {
    "faces.fallback": "its LBP cascade was at chance; faces.pad and faces.cnn are the "
                      "fallbacks now",
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


class Features(Section):
    batch_size: Count
    precision: Precision
    storage: Annotated[Literal["float32", "float16"], choice("float32", "float16")]


class Head(Section):
    type: Annotated[Literal["chapter", "linear"], choice("chapter", "linear")]
    c_grid: Annotated[list[Positive], Field(min_length=1, description="a list of numbers > 0")]
    folds: Annotated[int, whole(2)]


class HeadTraining(Section):
    """A head trained on cached features (the chapter's recipe)."""

    epochs: Count
    batch_size: Count
    learning_rate: Positive
    dropout: Dropout
    val_size: Share
    precision: Precision


Optimizer = Annotated[Literal["adamw", "adam"], choice("adamw", "adam")]


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


class ModelFile(BaseModel):
    """model.json: what inference needs is checked; other keys are the model's own notes."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    input_size: Annotated[int, whole(1, note="pixels")]
    backbone: Text


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


def _problem(root: type[BaseModel], data: dict, error: dict,
             removed: Mapping[str, str]) -> tuple[str, str]:
    """(dotted key, 'key = value: what is expected') for one pydantic error."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        parts, _, node = _walk(root, loc[:-1])
        key = ".".join([*parts, str(loc[-1])])
        value = show(_value(data, [*parts, str(loc[-1])])[1])
        if key in RENAMES:
            return key, f"{key} = {value}: renamed to {RENAMES[key]}"
        if key in removed:
            return key, f"{key} = {value}: removed ({removed[key]})"
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


def check(root: type[BaseModel], data: Any, where: str, fix: str = "",
          removed: Mapping[str, str] = REMOVED) -> BaseModel:
    """`data` validated by `root`; otherwise a FacetlError with one line per wrong key:
    `<where>: <key> = <value>: expected <what>` (and `fix`, when given, on each; `removed`:
    settings that are gone, and why)."""
    try:
        return root.model_validate(data)
    except ValidationError as exc:
        data = data if isinstance(data, dict) else {}
        old_names = {new: old for old, new in RENAMES.items() if _value(data, old.split("."))[0]}
        lines: dict[str, str] = {}
        for error in exc.errors():
            key, line = _problem(root, data, error, removed)
            if error["type"] == "missing" and key in old_names:
                continue  # its old name is there: the line for that one says the new name
            lines.setdefault(key, f"{where}: {line}{fix}")
        raise FacetlError("\n".join(lines.values())) from None


@dataclass(frozen=True)
class TaskSchema:
    """What a task adds to the schema: its sections of params.yaml by dotted place (a stage
    group's `<group>.<task>`, or its own top-level block `<task>`), the model.json schema a
    saved model is checked by (chosen from the file's own keys), its settings that are gone,
    and its settings that name a backbone."""

    name: str
    sections: Mapping[str, Any]
    model_file: Callable[[dict], type[ModelFile]]
    removed: Mapping[str, str] = field(default_factory=dict)
    backbone_keys: tuple[str, ...] = ()


def task_schema(name: str) -> TaskSchema:
    """Task `name`'s TaskSchema, from facetl.<name>.schema."""
    if name not in task_names():
        raise FacetlError(f"no task {name!r} (tasks: {', '.join(task_names())})")
    return importlib.import_module(f"facetl.{name}.schema").SCHEMA


# The top level of params.yaml in its order: shared sections, and (None) the groups named after
# a stage that hold one section per task, `prepare.<task>`; a task's own block follows them.
SHARED: dict[str, Any] = {
    "seed": Annotated[int, whole(0)],
    "backbone": Annotated[str, Field(min_length=1, description="a name under backbones")],
    "backbones": dict[str, Backbone],
    "data": None, "faces": Faces, "download": Download, "prepare": None, "features": Features,
    "head": Head, "train": None, "finetune": None, "ood": None, "repeats": Repeats,
    "evaluate": Evaluate, "scratch": Scratch, "activations": Activations,
}
TASK_GROUPS = tuple(key for key, kind in SHARED.items() if kind is None)


def params_model(tasks: Iterable[TaskSchema]) -> type[Section]:
    """The schema of params.yaml for `tasks`: the shared sections and theirs. A section of
    another registered task is left to that task's check (its stages', or the whole-file one)."""
    tasks = list(tasks)
    others = [name for name in task_names() if name not in {task.name for task in tasks}]
    unchecked = {name: (Any, None) for name in others}
    groups: dict[str, dict[str, Any]] = {group: {} for group in TASK_GROUPS}
    own: dict[str, Any] = {}
    for task in tasks:
        for place, kind in task.sections.items():
            group, _, name = place.rpartition(".")
            (groups[group] if group else own)[name] = (kind, ...)
    fields: dict[str, Any] = {}
    for key, kind in SHARED.items():
        if kind is not None:
            fields[key] = (kind, ...)
        elif groups[key]:
            model = create_model(key.capitalize(), __base__=Section, **groups[key], **unchecked)
            fields[key] = (model, ...)
        elif others:  # only other tasks' sections here
            fields[key] = (create_model(key.capitalize(), __base__=Section, **unchecked), None)
    return create_model("Params", __base__=Section, **fields, **own, **unchecked)


def _names(params: BaseModel, tasks: Iterable[TaskSchema]) -> list[str]:
    """Problems between settings: backbone names that must be listed under backbones, and the
    weights files of the backbones in use."""
    problems = []
    backbones = params.backbones  # type: ignore[attr-defined]
    known = list(backbones)
    keys = ["backbone", *(key for task in tasks for key in task.backbone_keys)]
    for key in keys:
        name = _value(params.model_dump(), key.split("."))[1]
        if name not in backbones:
            near = _closest(name, known)
            problems.append(f"{key} = {show(name)}: expected a name under backbones"
                            + (f"; did you mean {near}?" if near else f" ({', '.join(known)})"))
            continue
        weights = backbones[name].weights
        if weights is not None and weights not in WEIGHTS_WORDS and not Path(weights).is_file():
            problems.append(f"backbones.{name}.weights = {show(weights)}: expected imagenet, "
                            "none, or the path of a weights file (no such file)")
    return list(dict.fromkeys(problems))


def removed_settings(tasks: Iterable[TaskSchema]) -> dict[str, str]:
    """Settings that are gone, shared and `tasks`' own, each with why."""
    return REMOVED | {key: why for task in tasks for key, why in task.removed.items()}


def validate_params(params: Any, where: str = "params.yaml",
                    tasks: Iterable[TaskSchema] | None = None) -> BaseModel:
    """params.yaml checked: the shared settings and those of `tasks` (every registered task
    when None: the whole file), or a FacetlError with one line per mistake."""
    tasks = [task_schema(name) for name in task_names()] if tasks is None else list(tasks)
    settings = check(params_model(tasks), params, where, removed=removed_settings(tasks))
    problems = _names(settings, tasks)
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
    needs of it (the task's own model-file schema); returns the renamed dict, or raises one
    line per problem (`made_by`: the command that retrains it)."""
    fix = f"; retrain the model with `{made_by}`"
    if not isinstance(meta, dict):
        raise FacetlError(f"{where}: expected a JSON object{fix}")
    meta = renamed(meta)
    check(task_schema(task).model_file(meta), meta, where, fix)
    return meta
