"""What every model family of the ensemble implements, so that its training stage is the same few lines.

A family is a class with

    fit(settings, train, val, *, checkpoint, log) -> Fitted
    predict_proba(images uint8 (N, 28, 28)) -> class probabilities (N, 10), float32 or float64 (stored as float32)
    save(path)        the fitted model, to models/<name><suffix> (the suffix: digits.families)
    load(path)        a classmethod: the model `save` wrote, ready to predict

`settings` is the family's section of params.yaml, typed and checked by `digits.params`; `train`
and `val` are (uint8 images (N, 28, 28), labels (N,)) pairs. With `split.refit`, `train` holds every
labelled row and `val` is None: nothing is scored or chosen on held-out rows during that fit.
`digits.stages.training.train_member` runs the protocol and writes what every member writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np

Split = tuple[np.ndarray, np.ndarray]  # uint8 images (N, 28, 28), labels (N,)
EpochLog = Optional[Callable[..., None]]  # log(**figures) once per epoch (train_loss, ..., lr), or None


@dataclass(frozen=True)
class Fitted:
    """What `fit` hands the stage: the figures for metrics/<name>.json, the fitted model's validation
    probabilities (Nv, 10) as `predict_proba` gives them (saved as float32; None when fitted without a
    validation split), and one line for the log."""

    metrics: dict[str, Any]
    val_proba: Optional[np.ndarray]
    summary: str


class Member(Protocol):
    def fit(self, settings: Any, train: Split, val: Optional[Split], *, checkpoint: Path | None,
            log: EpochLog) -> Fitted: ...

    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path) -> Member: ...
