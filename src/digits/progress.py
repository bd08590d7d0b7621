"""Progress on long loops: a tqdm bar on a terminal, periodic log lines otherwise (CI, `dvc exp run --queue`)."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
             every: float = 30.0) -> Iterator[T]:
    """Yield `items`, showing progress as `desc`.

    On a terminal: a tqdm bar. Otherwise: one line on stderr at most every `every` seconds
    ("desc: 120/263 it (46%), 31 s"), and a last line when the loop ends.
    """
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, total=total, unit=unit, leave=False)
        return
    start = last = time.monotonic()
    done = shown = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every:
            last, shown = now, done
            print(f"{desc}: {_count(done, total, unit)}, {now - start:.0f} s", file=sys.stderr, flush=True)
    if shown != done or not done:  # the last line, unless the periodic one just said it
        print(f"{desc}: {_count(done, total, unit)}, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def note(line: str) -> None:
    """Print `line` to stdout as a log line that stays, above any progress bar on the terminal."""
    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def _count(done: int, total: int | None, unit: str) -> str:
    return f"{done}/{total} {unit} ({100 * done / total:.0f}%)" if total else f"{done} {unit}"
