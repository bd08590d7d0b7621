"""params.yaml's schema: every key, its type and allowed values, checked before any stage does work.

`load()` returns a typed `Params`; the allowed values of every key are written here once (the
library reads its value lists from here and checks only what its own API needs). A typo (`cnn.epoch`), a wrong type or an out-of-range value stops the
stage with one line naming the key, what was found and what is allowed. Values that depend on the
data (e.g. `knn.n_neighbors` larger than the training split) are checked by the code that knows the data.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from digits.errors import DigitsError
from digits.families import OTHERS

Positive = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
OTHER_MODELS = tuple(OTHERS)  # beside the numpy CNNs named in cnn_members
MEMBER_NAME = re.compile(r"[a-z][a-z0-9_]*")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Data(_Section):
    source: str
    competition: str
    mnist_root: str


class Split(_Section):
    seed: Seed
    val_fraction: Annotated[float, Field(gt=0, lt=1)]
    refit: bool  # true: every member trains on the training and validation rows together


class CNN(_Section):
    seed: Seed
    dtype: Literal["float32", "float64"]
    epochs: Positive
    batch_size: Positive
    optimizer: Literal["sgd", "adam", "adamw"]
    lr: Annotated[float, Field(gt=0)]
    momentum: Fraction
    nesterov: bool
    weight_decay: Annotated[float, Field(ge=0)]
    schedule: Literal["step", "cosine", "onecycle"]
    lr_step: Positive
    lr_gamma: Annotated[float, Field(gt=0)]
    warmup: Fraction
    label_smoothing: Fraction
    degrees: Annotated[float, Field(ge=0, le=180)]
    translate: Fraction
    scale: Fraction
    layers: Annotated[list[Any], Field(min_length=1)]  # checked layer by layer by digits.nn.build
    resume: bool


class KNN(_Section):
    transforms: list[Any]  # checked by digits.features
    n_neighbors: Positive
    weights: Literal["uniform", "distance"]
    metric: Literal["euclidean", "cosine"]
    batch_size: Positive
    grid: Optional[dict[str, Annotated[list[Any], Field(min_length=1)]]]  # null or {}: no search


class ResNetProfile(_Section):
    arch: Literal["resnet18", "resnet34", "resnet50"]
    stem: Literal["stock", "mid", "small"]
    epochs: Positive
    batch_size: Positive
    optimizer: Literal["adamw", "sgd"]
    lr: Annotated[float, Field(gt=0)]
    weight_decay: Annotated[float, Field(ge=0)]
    schedule: Literal["onecycle", "cosine"]
    label_smoothing: Fraction
    degrees: Annotated[float, Field(ge=0, le=180)]
    translate: Fraction
    scale: Fraction
    bf16: bool


class ResNet(_Section):
    profile: str
    device: Literal["auto", "cpu", "cuda", "mps"]
    weights: str
    seed: Seed
    resume: bool
    tta: bool
    profiles: Annotated[dict[str, ResNetProfile], Field(min_length=1)]

    @property
    def chosen(self) -> ResNetProfile:
        """The profile named by `profile` (its presence is checked by `check`)."""
        return self.profiles[self.profile]


class Ensemble(_Section):
    members: Annotated[list[str], Field(min_length=1)]  # names from model_names()
    weights: Union[Literal["fit"], list[Annotated[float, Field(ge=0)]]]


class Evaluate(_Section):
    ensemble: Ensemble


class Submit(_Section):
    models: Annotated[list[str], Field(min_length=1)]  # names from model_names(), or "ensemble"
    upload: bool
    model: str
    wait_seconds: Annotated[int, Field(ge=0)]


class Params(_Section):
    data: Data
    split: Split
    cnn: CNN
    cnn_members: Annotated[dict[str, dict[str, Any]], Field(min_length=1)]  # name -> cnn keys it overrides
    knn: KNN
    resnet: ResNet
    evaluate: Evaluate
    submit: Submit
    _document: dict = PrivateAttr(default_factory=dict)

    @property
    def document(self) -> dict:
        """params.yaml as written (plain dicts, lists, and numbers as typed there), for provenance."""
        return self._document

    def model_names(self) -> list[str]:
        """Every model a run trains: the numpy CNNs of cnn_members, in order, then knn and resnet."""
        return [*self.cnn_members, *OTHER_MODELS]

    def cnn_member(self, member: str) -> CNN:
        """The cnn section with the keys cnn_members.<member> overrides, e.g. another seed."""
        if member not in self.cnn_members:
            raise DigitsError(f"params.yaml: cnn_members has no member {member!r}; "
                              f"it has {', '.join(self.cnn_members)}")
        return CNN.model_validate({**self._document["cnn"], **self.cnn_members[member]})


def load(path: str | Path = "params.yaml") -> Params:
    """Read and check params.yaml; returns it typed."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file; run the stage from the project root") from None
    except yaml.YAMLError as e:
        raise DigitsError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    return check(raw, str(path))


def check(raw: dict, name: str = "params.yaml") -> Params:
    """`raw` typed, or a one-line DigitsError for the first key that breaks the schema."""
    try:
        params = Params.model_validate(raw)
    except ValidationError as e:
        raise DigitsError(f"{name}: {_describe(e.errors()[0])}") from None
    if params.resnet.profile not in params.resnet.profiles:
        raise DigitsError(f"{name}: resnet.profile: found {params.resnet.profile!r}, "
                          f"expected one of {', '.join(params.resnet.profiles)}")
    for member, overrides in raw["cnn_members"].items():
        _check_member(member, raw["cnn"], overrides, name)
    models = params.model_names()
    ensemble = params.evaluate.ensemble.members
    for key, found, allowed in (("evaluate.ensemble.members", ensemble, models),
                                ("submit.models", params.submit.models, [*models, "ensemble"]),
                                ("submit.model", [params.submit.model], [*models, "ensemble"])):
        unknown = [model for model in found if model not in allowed]
        if unknown or len(set(found)) != len(found):
            raise DigitsError(f"{name}: {key}: found {found if key != 'submit.model' else found[0]!r}, expected "
                              f"{'one' if key == 'submit.model' else 'distinct names'} of {', '.join(allowed)}")
    weights, members = raw["evaluate"]["ensemble"]["weights"], params.evaluate.ensemble.members
    if weights != "fit":
        if len(weights) != len(members):
            raise DigitsError(f"{name}: evaluate.ensemble.weights: found {len(weights)} numbers, expected one per "
                              f"member ({len(members)}) or 'fit'")
        check_weights(weights, len(members), f"{name}: evaluate.ensemble")
    _check_refit(params, name)
    submit = params.submit
    if submit.upload and submit.model not in submit.models:
        raise DigitsError(f"{name}: submit.model is {submit.model!r}, expected one of submit.models {submit.models}")
    params._document = raw
    return params


def _check_refit(params: Params, name: str) -> None:
    """Refuse settings chosen on the validation split when split.refit trains every member on it."""
    if not params.split.refit:
        return
    why = "which split.refit: true trains every member on"
    if params.evaluate.ensemble.weights == "fit":
        raise DigitsError(f"{name}: evaluate.ensemble.weights: 'fit' fits them on the validation split, {why}; give "
                          "one number per member (a split.refit: false run writes its fitted ones to "
                          "metrics/evaluate.json) or set split.refit: false")
    if params.knn.grid:
        raise DigitsError(f"{name}: knn.grid: a search on the validation split, {why}; set knn.grid: null and "
                          "the values a split.refit: false run chose (metrics/knn.json), or set split.refit: false")


def _check_member(member: str, cnn: dict, overrides: dict, name: str) -> None:
    """Raise a one-line DigitsError unless `member` is a usable model name and its settings pass the cnn schema."""
    if not MEMBER_NAME.fullmatch(member) or member in (*OTHER_MODELS, "ensemble"):
        raise DigitsError(f"{name}: cnn_members.{member}: not a usable name; use lower-case letters, digits and _, "
                          f"starting with a letter, and none of {', '.join(OTHER_MODELS)}, ensemble")
    try:
        CNN.model_validate({**cnn, **overrides})
    except ValidationError as e:
        error = e.errors()[0]
        prefix = ("cnn_members", member) if error["loc"][0] in overrides else ("cnn",)
        raise DigitsError(f"{name}: {_describe({**error, 'loc': (*prefix, *error['loc'])}, CNN)}") from None


def _describe(error: dict, section: type[BaseModel] | None = None) -> str:
    """One line for one pydantic error: the dotted key, what was found, what is allowed (keys of `section`
    for an unknown key, else of the schema class the key's path leads to)."""
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    if error["type"] == "extra_forbidden":
        section = section or _model_at(error["loc"][:-1])
        allowed = ", ".join(section.model_fields) if section else "none"
        return f"{key}: unknown key; allowed here: {allowed}"
    if error["type"] == "missing":
        return f"{key}: missing; add it (see the README for its meaning)"
    expected = error["msg"].replace("Input should be", "expected").replace("Input", "expected")
    return f"{key}: found {error['input']!r}, {expected}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema class found by following `loc` (field names; dict keys are skipped) from Params."""
    model: Any = Params
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a dict key such as a profile's name
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def check_weights(weights, n: int, where: str) -> None:
    """Raise unless `weights` lists `n` finite numbers >= 0, not all zero."""
    if not isinstance(weights, list) or len(weights) != n \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf
                       for v in weights) \
            or sum(weights) <= 0:
        raise DigitsError(f"{where}: weights is {weights!r}, expected {n} numbers >= 0 (one per member, not all zero)")
