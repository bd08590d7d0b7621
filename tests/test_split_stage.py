"""The split stage: stratified splits of data/raw/train.csv, and a one-line refusal of labels that cannot be split."""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from digits.data import PIXELS
from digits.stages import split

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def write_raw(folder: Path, labels) -> None:
    raw = folder / "data" / "raw"
    raw.mkdir(parents=True)
    pixels = ",".join(["0"] * len(PIXELS))
    header = ",".join(PIXELS)
    (raw / "train.csv").write_text(f"label,{header}\n" + "".join(f"{label},{pixels}\n" for label in labels))
    (raw / "test.csv").write_text(f"{header}\n{pixels}\n")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    shutil.copy(PARAMS, tmp_path / "params.yaml")  # split.val_fraction 0.2
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_digit_lands_in_both_splits(folder):
    write_raw(folder, [digit for digit in range(10) for _ in range(5)])
    split.main()
    for name, rows in (("train", 40), ("val", 10)):
        with np.load(folder / "data" / "prepared" / f"{name}.npz") as arrays:
            assert arrays["x"].shape == (rows, 28, 28) and sorted(set(arrays["y"])) == list(range(10))


@pytest.mark.parametrize("labels, message", [
    ([3] * 20, r"every row is labelled 3; a classifier needs rows of at least two digits"),
    ([0] * 10 + [1] * 10 + [7], r"too few rows of digit 7 \(1 row\); each digit present needs at least 2 rows"),
    ([d for d in range(10) for _ in range(2)],
     r"20 rows split by split.val_fraction=0.2 give 4 validation and 16 training rows, fewer than the 10 digits"),
], ids=["one digit", "a lone row", "too few for the validation split"])
def test_labels_that_cannot_be_split_are_refused_with_one_line(folder, capsys, labels, message):
    write_raw(folder, labels)
    with pytest.raises(SystemExit) as exit_:
        split.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("split: error: data/raw/train.csv: ") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not (folder / "data" / "prepared").exists()
