"""What the train_<member> stages share: fit one ensemble member (digits.member) and write its outputs."""
from pathlib import Path
from typing import Any

from digits.data import load_split
from digits.families import family
from digits.io import write_json
from digits.member import EpochLog, Member
from digits.stages.common import METRICS, MODELS, PREPARED, save_predictions


def train_member(name: str, model: Member, settings: Any, *, checkpoint: Path | None = None,
                 log: EpochLog = None) -> Member:
    """Fit `model` (digits.member) by `settings` on the prepared splits, then write models/<name><suffix>,
    predictions/<name>.npz (validation and test probabilities) and metrics/<name>.json, and log its summary."""
    train, val, (x_test, _) = (load_split(PREPARED / f"{split}.npz") for split in ("train", "val", "test"))
    fitted = model.fit(settings, train, val, checkpoint=checkpoint, log=log)
    if fitted is None:  # a torchrun process other than the first
        return model
    model.save(MODELS / f"{name}{family(name).suffix}")
    save_predictions(name, val=fitted.val_proba, test=model.predict_proba(x_test))
    write_json(METRICS / f"{name}.json", fitted.metrics)
    print(f"train_{name}: {fitted.summary}")
    return model
