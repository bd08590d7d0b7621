"""What every stage shares: paths, params, error handling and timing."""
from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from digits import params
from digits.artifacts import check_probabilities
from digits.errors import DigitsError
from digits.io import load_npz, save_npz, write_json
from digits.stages import guard

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
MODELS = Path("models")
PREDICTIONS = Path("predictions")
METRICS = Path("metrics")
REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
CHECKPOINTS = Path("checkpoints")


def stage(name: str, params_keys: tuple[str, ...], outputs: tuple[str, ...]
          ) -> Callable[[Callable[[params.Params], None]], Callable[[], None]]:
    """Decorate a stage body `fn(params)` into a `main()` that times it and turns DigitsError into exit 1.

    `fn` gets params.yaml typed and checked (`digits.params.load`); a DigitsError from anywhere,
    the library's SettingError included, ends the stage with its one line on stderr.

    `params_keys` are the stage's (dotted) keys of params.yaml, `outputs` the files it writes
    (folders end in "/"), as in dvc.yaml. Before the body runs, leftovers of a hard-killed run
    are removed and each output folder is probed for writing (`guard.prepare_outputs`); while it
    runs, no output is written once its params changed in params.yaml, and the stage stops as on
    SIGTERM when its parent (dvc) dies.
    The wall time goes to `metrics/time/<name>.json`, apart from the stage's other metrics,
    so that timings never make otherwise identical runs differ.
    """
    def wrap(fn: Callable[[params.Params], None]) -> Callable[[], None]:
        @functools.wraps(fn)
        def main() -> None:
            start = time.perf_counter()
            # SIGINT even when started with it ignored; each signal's handler as it was once the stage ends
            handlers = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
            timing = str(METRICS / "time" / f"{name}.json")
            writer = is_writer()
            try:
                settings = params.load()
                with guard.stop_with_parent(), guard.params_unchanged(name, params_keys, settings):
                    if writer:
                        guard.prepare_outputs(name, (*outputs, timing))
                    fn(settings)
                    if writer:
                        write_json(timing, {"seconds": round(time.perf_counter() - start, 2)})
            except DigitsError as e:
                _say(f"{name}: error: {e}")
                sys.exit(1)
            except KeyboardInterrupt:
                if writer:
                    guard.remove_temporaries((*outputs, timing))
                gone = ", and its parent process (dvc) is gone" if guard.orphaned() else ""
                _say(f"{name}: interrupted{gone}; no output was left half-written, rerun `dvc repro`")
                sys.exit(130)
            finally:
                for signum, handler in handlers.items():
                    signal.signal(signum, handler)
        main.params_keys, main.outputs = params_keys, outputs
        return main
    return wrap


def is_writer() -> bool:
    """Whether this process writes outputs: under torchrun only the first one does."""
    return os.environ.get("RANK", "0") == "0"


def _say(line: str) -> None:
    """Print to stderr, which may be a pipe whose reader (a dead dvc) is gone."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def _interrupt(signum: int, frame) -> None:
    """SIGINT or SIGTERM unwinds the stage so that temporary files are removed on the way out.

    Only the first: a second one (dvc's and the parent-death SIGTERM both arrive when dvc is killed)
    would otherwise interrupt that cleanup and end the stage with a traceback."""
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


def save_predictions(model: str, val: np.ndarray, test: np.ndarray) -> None:
    """Class probabilities float32 (N, 10) for the validation and test images -> predictions/<model>.npz."""
    save_npz(PREDICTIONS / f"{model}.npz", val=val.astype(np.float32), test=test.astype(np.float32))


def load_predictions(model: str) -> dict[str, np.ndarray]:
    """predictions/<model>.npz as {"val": (Nv, 10), "test": (Nt, 10)} float32 class probabilities, checked."""
    path = PREDICTIONS / f"{model}.npz"
    arrays = load_npz(path)
    return {split: check_probabilities(path, split, arrays.get(split)) for split in ("val", "test")}
