"""Reading and validating the competition's CSV files, and the prepared `.npz` splits.

Formats (as Kaggle ships them):
- train.csv: header `label,pixel0,...,pixel783`, one image per row, label 0-9, pixels 0-255.
- test.csv: header `pixel0,...,pixel783`.
- solution / submission files: header `ImageId,Label`, ImageId 1..N once each, Label 0-9.

Every reader raises `DigitsError` with one line naming the file, the row (1-based,
header excluded) and column, the value found and what was expected.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from digits.errors import DigitsError
from digits.io import load_npz

SIDE = 28
PIXELS = [f"pixel{i}" for i in range(SIDE * SIDE)]
TRAIN_COLUMNS = ["label", *PIXELS]
TEST_COLUMNS = PIXELS
LABEL_COLUMNS = ["ImageId", "Label"]

_ARCHIVE_MAGIC = {b"\x1f\x8b": "a gzip archive", b"PK\x03\x04": "a zip archive"}


def _describe(columns: list[str]) -> str:
    return ",".join(columns) if len(columns) <= 3 else f"{columns[0]},{columns[1]},...,{columns[-1]}"


def parse_table(raw: bytes, name: str, columns: list[str]) -> pd.DataFrame:
    """Parse CSV bytes into a DataFrame of integer-valued columns named exactly `columns`.

    Accepts a UTF-8 BOM and Windows line endings; refuses compressed data, a wrong
    header, ragged rows, missing or non-integer values, and a file with no rows.
    """
    for magic, what in _ARCHIVE_MAGIC.items():
        if raw.startswith(magic):
            raise DigitsError(f"{name}: found {what}, expected a plain CSV file; extract it first")
    if not raw.strip():
        raise DigitsError(f"{name}: the file is empty, expected a header line {_describe(columns)}")
    try:
        df = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", low_memory=False)
    except UnicodeDecodeError as e:
        raise DigitsError(f"{name}: byte {e.start} is not UTF-8 text, expected a plain CSV file") from None
    except pd.errors.EmptyDataError:
        raise DigitsError(f"{name}: no header line found, expected {_describe(columns)}") from None
    except pd.errors.ParserError as e:
        detail = str(e).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise DigitsError(f"{name}: {detail}; every row needs {len(columns)} fields") from None

    header = [str(c) for c in df.columns]
    if header != columns:
        if len(header) != len(columns):
            raise DigitsError(
                f"{name}: the header has {len(header)} columns, expected {len(columns)} ({_describe(columns)})")
        i = next(i for i, (a, b) in enumerate(zip(header, columns)) if a != b)
        raise DigitsError(f"{name}: header column {i + 1} is {header[i]!r}, expected {columns[i]!r}")
    if df.empty:
        raise DigitsError(f"{name}: the header has no data rows below it, expected at least one row")

    not_int = [c for c in df.columns if not pd.api.types.is_integer_dtype(df[c])]
    if not_int:
        text = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", usecols=not_int, dtype=str, keep_default_na=False)
        is_int = text.apply(lambda column: column.str.fullmatch(r"\s*[+-]?\d+\s*")).fillna(False)
        bad = ~is_int.to_numpy(dtype=bool)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            value = text.iloc[row, col]
            found = "a missing value" if pd.isna(value) or not value.strip() else repr(value)
            raise DigitsError(f"{name}: row {row + 1}, column {not_int[col]!r}: found {found}, expected an integer")
        df[not_int] = text.apply(lambda column: column.map(int))  # Python ints: too long for int64
    return df


def _check_range(values: np.ndarray, name: str, column_names: list[str], low: int, high: int, what: str) -> None:
    """Raise for the first cell of `values` (rows x columns) outside [low, high]."""
    bad = (values < low) | (values > high)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DigitsError(
            f"{name}: row {row + 1}, column {column_names[col]!r}: found {values[row, col]}, "
            f"expected {what} {low}-{high}")


def parse_digits(raw: bytes, name: str, *, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse train.csv (`labelled`) or test.csv bytes.

    Returns images uint8 (N, 28, 28) and labels uint8 (N,), or None when unlabelled.
    """
    df = parse_table(raw, name, TRAIN_COLUMNS if labelled else TEST_COLUMNS)
    pixels = df[PIXELS].to_numpy()
    _check_range(pixels, name, PIXELS, 0, 255, "a pixel value")
    x = pixels.astype(np.uint8).reshape(-1, SIDE, SIDE)
    if not labelled:
        return x, None
    labels = df[["label"]].to_numpy()
    _check_range(labels, name, ["label"], 0, 9, "a digit")
    return x, labels[:, 0].astype(np.uint8)


def parse_labels(raw: bytes, name: str, n_rows: int | None = None) -> np.ndarray:
    """Parse an `ImageId,Label` file (a solution or a submission) into labels uint8 (N,) ordered by ImageId.

    ImageId must run over 1..N exactly once, in any order; `n_rows`, when given, is the expected N.
    """
    df = parse_table(raw, name, LABEL_COLUMNS)
    _check_range(df[["Label"]].to_numpy(), name, ["Label"], 0, 9, "a digit")
    ids = df["ImageId"].to_numpy()
    n = len(df) if n_rows is None else n_rows
    if len(df) != n:
        raise DigitsError(f"{name}: found {len(df)} rows, expected {n} (one per test image)")
    duplicated = df["ImageId"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise DigitsError(f"{name}: row {row + 1}, column 'ImageId': found {ids[row]} again, expected each id once")
    _check_range(ids[:, None], name, ["ImageId"], 1, n, "an id")
    labels = np.empty(n, dtype=np.uint8)
    labels[ids.astype(np.int64) - 1] = df["Label"].to_numpy()
    return labels


def read_digits(path: str | Path, *, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate train.csv (`labelled=True`) or test.csv from disk; see `parse_digits`."""
    return parse_digits(_read_bytes(path), str(path), labelled=labelled)


def read_labels(path: str | Path, n_rows: int | None = None) -> np.ndarray:
    """Read and validate an `ImageId,Label` file from disk; see `parse_labels`."""
    return parse_labels(_read_bytes(path), str(path), n_rows)


def _read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file; run the stage that writes it (dvc repro)") from None


def load_split(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a prepared split: images uint8 (N, 28, 28) and labels uint8 (N,) or None when unknown."""
    arrays = load_npz(path)
    return arrays["x"], arrays.get("y")


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28) scaled to [0, 1]."""
    return (x.astype(np.float32) / 255.0)[:, None]
