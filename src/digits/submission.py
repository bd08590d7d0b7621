"""Kaggle submissions: `ImageId,Label` CSV with ImageId 1..N."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from digits.data import parse_labels
from digits.io import atomic_path


def submission_csv(labels: np.ndarray) -> bytes:
    """Labels (N,) -> `ImageId,Label` CSV bytes with ImageId 1..N."""
    frame = pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": np.asarray(labels, dtype=int)})
    return frame.to_csv(index=False, lineterminator="\n").encode()


def write_submission(path: str | Path, labels: np.ndarray) -> None:
    """Write labels (N,) as a submission, checked by the same reader that checks solutions, atomically."""
    raw = submission_csv(labels)
    parse_labels(raw, str(path), n_rows=len(labels))
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)
