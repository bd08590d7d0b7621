"""Stage `split`: validate data/raw/ and write stratified train/val splits and the test set as uint8 .npz."""
import math

import numpy as np
from sklearn.model_selection import train_test_split

from digits.data import read_digits, read_labels
from digits.errors import DigitsError
from digits.io import save_npz
from digits.params import Params
from digits.stages.common import PREPARED, RAW, stage


@stage("split", ("split.seed", "split.val_fraction"), ("data/prepared/",))
def main(params: Params) -> None:
    seed, val_fraction = params.split.seed, params.split.val_fraction
    x, y = read_digits(RAW / "train.csv", labelled=True)
    check_splittable(y, val_fraction)
    x_test, _ = read_digits(RAW / "test.csv", labelled=False)
    try:
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=val_fraction, stratify=y, random_state=seed)
    except ValueError as e:
        raise DigitsError(f"{RAW / 'train.csv'}: cannot split {len(y)} rows with "
                          f"split.val_fraction={val_fraction}: {e}") from None
    save_npz(PREPARED / "train.npz", x=x_train, y=y_train)
    save_npz(PREPARED / "val.npz", x=x_val, y=y_val)
    solution = RAW / "solution.csv"
    if solution.is_file():
        save_npz(PREPARED / "test.npz", x=x_test, y=read_labels(solution, n_rows=len(x_test)))
    else:
        save_npz(PREPARED / "test.npz", x=x_test)
    print(f"split: {len(y_train):,} train, {len(y_val):,} validation, {len(x_test):,} test images")


def check_splittable(y: np.ndarray, val_fraction: float) -> None:
    """Refuse labels (N,) that cannot give a digit classifier a stratified training and validation split."""
    counts = np.bincount(y, minlength=10)
    present = np.flatnonzero(counts)
    where = RAW / "train.csv"
    if len(present) < 2:
        raise DigitsError(f"{where}: every row is labelled {present[0]}; a classifier needs rows of at least two "
                          "digits (the competition's train.csv has all ten)")
    rare = [f"{digit} ({counts[digit]} row)" for digit in present if counts[digit] < 2]
    if rare:
        raise DigitsError(f"{where}: too few rows of digit {', '.join(rare)}; each digit present needs at least 2 "
                          "rows, one for the training split and one for the validation split")
    n_val = math.ceil(val_fraction * len(y))
    if n_val < len(present) or len(y) - n_val < len(present):
        raise DigitsError(f"{where}: {len(y)} rows split by split.val_fraction={val_fraction} give {n_val} validation "
                          f"and {len(y) - n_val} training rows, fewer than the {len(present)} digits present; "
                          "add rows or change split.val_fraction")


if __name__ == "__main__":
    main()
