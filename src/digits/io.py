"""Atomic output: every file is written beside its target, then renamed into place."""
from __future__ import annotations

import errno
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from digits.artifacts import regenerate, unreadable
from digits.errors import DigitsError

_UMASK = os.umask(0)
os.umask(_UMASK)
# What a full disk, a quota, a read-only or foreign folder or a file-size limit raise on writing.
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
_checks: list[Callable[[Path], None]] = []


@contextmanager
def checked_writes(check: Callable[[Path], None]) -> Iterator[None]:
    """Within the block, call `check(path)` before each atomic write renames a file onto `path`;
    an exception from it leaves `path` as it was."""
    _checks.append(check)
    try:
        yield
    finally:
        _checks.remove(check)


def cannot_write(path: str | Path, err: OSError) -> DigitsError:
    """The one-line error for a write that the OS refused."""
    return DigitsError(f"{path}: cannot write ({err.strerror or err}); make room on the disk or make "
                       f"{Path(path).parent} writable, then rerun")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The parent folder is created. On any exception the temporary file is removed and
    `path` is left as it was, so no reader ever sees a half-written file.
    A write the OS refuses (full disk, read-only folder) raises a one-line DigitsError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise cannot_write(path, e) from None
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        for check in _checks:
            check(path)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno not in WRITE_ERRORS:
            raise
        raise cannot_write(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    """Write `obj` as indented JSON with sorted keys (stable for `dvc metrics diff`)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Save arrays to a compressed `.npz` atomically (no pickled objects)."""
    save_archive(path, arrays)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load every array of an `.npz` written by `save_npz`, refusing pickled objects."""
    return load_archive(path, "a .npz of plain arrays (numpy's savez, nothing pickled)")[1]


def header_array(header: dict) -> np.ndarray:
    """A JSON-able dict as the 0-d string array that `load_archive` reads back as a header."""
    return np.array(json.dumps(header))


def save_archive(path: str | Path, arrays: dict[str, np.ndarray], *, compress: bool = True) -> None:
    """Write `arrays` (a header among them: `header_array`) to one `.npz` atomically, in their order.

    Every file a stage hands on (data, predictions, models, checkpoints) is one; models and
    checkpoints of the numpy CNN are not compressed, so that they load fast.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)


def load_archive(path: str | Path, expected: str, header_key: str | None = None,
                 remedy: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of a `.npz` written by `save_archive`, nothing unpickled; the header ({} when
    `header_key` is None) is removed from the arrays.

    A missing file, or one that is not such an archive, raises a one-line DigitsError saying it
    should be `expected` (e.g. "a k-NN model (a .npz of plain arrays written by train_knn)"; a bad
    header names its words before the parenthesis) and ending in `remedy` (default: the stage that
    regenerates it).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file; run `dvc repro` to create it") from None
    except (ValueError, OSError, EOFError, AttributeError, TypeError, zipfile.BadZipFile):
        raise unreadable(path, expected, remedy) from None
    if header_key is None:
        return {}, arrays
    try:
        header = json.loads(str(arrays.pop(header_key)))
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except (KeyError, ValueError) as err:
        what = expected.split(" (")[0]
        raise DigitsError(f"{path}: not {what} file (bad or missing {header_key!r}: {err}); "
                          f"{remedy or regenerate(path)}") from None
    return header, arrays
