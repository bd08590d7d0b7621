"""What every stage shares: paths, params, error handling, timing and per-epoch logging."""
from __future__ import annotations

import functools
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from digits import params
from digits.errors import DigitsError
from digits.io import load_npz, save_npz, write_json
from digits.progress import note

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
MODELS = Path("models")
PREDICTIONS = Path("predictions")
METRICS = Path("metrics")
REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
MODEL_NAMES = ("cnn", "knn", "resnet")


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


@contextmanager
def epoch_log(model: str) -> Iterator[Callable[..., None]]:
    """Yield `log(**values)`, called once per epoch with train_loss, train_accuracy, val_accuracy, lr.

    Each epoch is one line of the log; values go to dvclive (`dvclive/<model>/plots/metrics/*.tsv`,
    drawn by `dvc plots show`); on exit the curves are also drawn to `reports/figures/<model>_curves.png`.
    """
    from dvclive import Live

    from digits.plots import curves_figure

    history: list[dict[str, float]] = []
    with Live(f"dvclive/{model}", dvcyaml=False, save_dvc_exp=False, report=None) as live:
        def log(**values: float) -> None:
            history.append(values)
            note(f"train_{model}: epoch {len(history)}: " + ", ".join(
                f"{key.replace('_', ' ')} {value:.3g}" if key == "lr" else f"{key.replace('_', ' ')} {value:.4f}"
                for key, value in values.items()))
            for key, value in values.items():
                live.log_metric(key, float(value))
            live.next_step()
        yield log
    curves_figure(history, model, FIGURES / f"{model}_curves.png")
