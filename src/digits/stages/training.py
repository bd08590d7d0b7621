"""What the train_<member> stages share: fit one ensemble member (digits.member) and write its outputs."""
from pathlib import Path
from typing import Any

import numpy as np

from digits.data import load_split
from digits.families import family
from digits.io import write_json
from digits.member import EpochLog, Member
from digits.stages.common import METRICS, MODELS, PREPARED, save_predictions


def train_member(name: str, model: Member, settings: Any, *, refit: bool = False, checkpoint: Path | None = None,
                 log: EpochLog = None) -> Member:
    """Fit `model` (digits.member) by `settings` on the prepared splits, then write models/<name><suffix>,
    predictions/<name>.npz (validation and test probabilities) and metrics/<name>.json, and log its summary.

    With `refit` (split.refit) the model fits the training and validation rows together and sees no
    held-out rows; its validation probabilities are then of rows it was trained on.
    """
    train, val, (x_test, _) = (load_split(PREPARED / f"{split}.npz") for split in ("train", "val", "test"))
    if refit:
        train = tuple(np.concatenate(pair) for pair in zip(train, val))
    fitted = model.fit(settings, train, None if refit else val, checkpoint=checkpoint, log=log)
    if fitted is None:  # a torchrun process other than the first
        return model
    model.save(MODELS / f"{name}{family(name).suffix}")
    val_proba = model.predict_proba(val[0]) if refit else fitted.val_proba
    save_predictions(name, val=val_proba, test=model.predict_proba(x_test))
    write_json(METRICS / f"{name}.json", fitted.metrics)
    print(f"train_{name}: {fitted.summary}")
    return model
