"""Checks on the files one stage hands another (predictions, models, checkpoints), and how to regenerate them.

Every problem is one DigitsError line: the file, what is wrong, what it should be, and the
`dvc repro -f <stage>` that writes it again. A library's own advice (to load a file unsafely)
is never passed on.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import yaml

from digits.errors import DigitsError

# Probabilities are float32: ten rounded terms sum to 1 within ~1e-6; allow far more, far below a real fault.
TOLERANCE = 1e-4


def producer(path: str | Path) -> str | None:
    """The stage of ./dvc.yaml whose outputs (outs, metrics, plots) hold `path`, or None."""
    try:
        stages = yaml.safe_load(Path("dvc.yaml").read_text(encoding="utf-8"))["stages"]
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return None
    target = PurePosixPath(Path(path).as_posix())
    for name, spec in stages.items():
        members = {name: spec} if "foreach" not in spec else {f"{name}@{key}": _expand(spec["do"], key)
                                                             for key in _foreach_keys(spec["foreach"])}
        for stage, body in members.items():
            for kind in ("outs", "metrics", "plots"):
                for out in body.get(kind) or []:
                    out = PurePosixPath(next(iter(out)) if isinstance(out, dict) else out)
                    if target == out or out in target.parents:
                        return stage
    return None


def _foreach_keys(over: str) -> list[str]:
    """The keys a foreach stage runs over, e.g. "${cnn_members}" -> the member names in ./params.yaml."""
    try:
        values = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
        for part in over.strip("${}").split("."):
            values = values[part]
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return []
    return [str(key) for key in values]


def _expand(body: dict, key: str) -> dict:
    """A foreach stage's body with ${key} replaced by `key`."""
    return yaml.safe_load(yaml.safe_dump(body).replace("${key}", key))


def regenerate(path: str | Path) -> str:
    """How to write `path` again, e.g. "regenerate it with `dvc repro -f train_knn`"."""
    stage = producer(path)
    return f"regenerate it with `dvc repro -f {stage}`" if stage else "regenerate it with the stage that wrote it"


def unreadable(path: str | Path, expected: str, remedy: str | None = None) -> DigitsError:
    """The error for a file that cannot be read as what it should be; `remedy` (default: `regenerate`) ends it."""
    return DigitsError(f"{path}: not {expected}; {remedy or regenerate(path)}")


def check_arrays(path: str | Path, arrays: dict, what: str = "model", remedy: str | None = None) -> None:
    """Refuse a non-numeric or non-finite array (numpy or torch) among a model's or checkpoint's `arrays`;
    `remedy` (default: `regenerate`) ends the message."""
    for name, array in arrays.items():
        array = np.asarray(array.float() if hasattr(array, "is_floating_point") and array.is_floating_point()
                           else array)
        if array.dtype.kind not in "biuf":
            raise DigitsError(f"{path}: {name!r} is {array.dtype}, expected numbers; {remedy or regenerate(path)}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DigitsError(f"{path}: {name!r} holds NaN or infinite values, expected a trained {what}'s "
                              f"finite numbers; {remedy or regenerate(path)}")


def check_probabilities(path: str | Path, name: str, array: np.ndarray | None, classes: int = 10) -> np.ndarray:
    """Return `array` if it is float32 class probabilities (N, classes): finite, in [0, 1], rows summing to 1."""
    expected = f"float32 class probabilities of shape (N, {classes})"
    if array is None:
        problem = "missing"
    elif array.dtype != np.float32 or array.ndim != 2 or array.shape[1] != classes:
        problem = f"{array.dtype} of shape {array.shape}"
    elif not np.isfinite(array).all():
        problem = f"{int((~np.isfinite(array)).any(axis=1).sum())} rows with NaN or infinite values"
    elif array.size and (array.min() < -TOLERANCE or array.max() > 1 + TOLERANCE):
        problem = f"values from {array.min():.4g} to {array.max():.4g}, outside [0, 1]"
    elif len(array) and np.abs(array.sum(axis=1, dtype=np.float64) - 1).max() > TOLERANCE:
        sums = array.sum(axis=1, dtype=np.float64)
        problem = f"rows summing to {sums.min():.4g}..{sums.max():.4g} instead of 1"
    else:
        return array
    raise DigitsError(f"{path}: {name!r} is {problem}, expected {expected}; {regenerate(path)}")
