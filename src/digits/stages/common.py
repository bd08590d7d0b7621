"""What every stage shares: paths, params, error handling and timing."""
from __future__ import annotations

import functools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from digits import params
from digits.errors import DigitsError
from digits.io import load_npz, save_npz, write_json

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
MODELS = Path("models")
PREDICTIONS = Path("predictions")
METRICS = Path("metrics")
REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
CHECKPOINTS = Path("checkpoints")


def stage(name: str) -> Callable[[Callable[[dict], None]], Callable[[], None]]:
    """Decorate a stage body `fn(params)` into a `main()` that times it and turns DigitsError into exit 1.

    The wall time goes to `metrics/time/<name>.json`, apart from the stage's other metrics,
    so that timings never make otherwise identical runs differ.
    """
    def wrap(fn: Callable[[dict], None]) -> Callable[[], None]:
        @functools.wraps(fn)
        def main() -> None:
            start = time.perf_counter()
            signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                fn(params.load())
            except DigitsError as e:
                print(f"{name}: error: {e}", file=sys.stderr)
                sys.exit(1)
            except KeyboardInterrupt:
                print(f"{name}: interrupted; no output was left half-written, rerun `dvc repro`", file=sys.stderr)
                sys.exit(130)
            if os.environ.get("RANK", "0") == "0":  # under torchrun only the first process writes
                write_json(METRICS / "time" / f"{name}.json", {"seconds": round(time.perf_counter() - start, 2)})
        return main
    return wrap


def _interrupt(signum: int, frame) -> None:
    """SIGTERM, like Ctrl-C, unwinds the stage so that temporary files are removed on the way out."""
    raise KeyboardInterrupt


def save_predictions(model: str, val: np.ndarray, test: np.ndarray) -> None:
    """Class probabilities float32 (N, 10) for the validation and test images -> predictions/<model>.npz."""
    save_npz(PREDICTIONS / f"{model}.npz", val=val.astype(np.float32), test=test.astype(np.float32))


def load_predictions(model: str) -> dict[str, np.ndarray]:
    """predictions/<model>.npz as {"val": (Nv, 10), "test": (Nt, 10)} float32."""
    path = PREDICTIONS / f"{model}.npz"
    arrays = load_npz(path)
    for split in ("val", "test"):
        found = arrays.get(split)
        if found is None or found.ndim != 2 or found.shape[1] != 10 or found.dtype.kind != "f":
            what = "no such array" if found is None else f"{found.dtype} of shape {found.shape}"
            raise DigitsError(f"{path}: {split!r} is {what}, expected float class probabilities of shape (N, 10)")
    return {"val": arrays["val"], "test": arrays["test"]}
