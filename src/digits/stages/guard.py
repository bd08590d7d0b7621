"""Faults from outside a stage: a parent (dvc) that dies, params.yaml changed by another run,
temporary files left by a hard kill, and output folders that cannot be written."""
from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from digits import params
from digits.errors import DigitsError
from digits.io import checked_writes

SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "busybox"}  # what dvc may run a stage through
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5
PROBE = ".write-probe"
_watched: dict = {}  # what the last `stop_with_parent` watched: "parent" pid and "starter" (pid, start time)


def orphaned() -> bool:
    """Whether the process that started the stage (watched by the last `stop_with_parent`) died."""
    return bool(_watched) and _lost(**_watched)


@contextmanager
def stop_with_parent() -> Iterator[None]:
    """Within the block, when run by dvc, SIGTERM this process once the process that started it dies.

    On Linux the kernel signals the death of the direct parent (prctl PR_SET_PDEATHSIG); a thread
    also watches the parent and the nearest ancestor that is not a shell (dvc starts a stage
    through `$SHELL -c`, which may stay alive in between). Outside dvc (no DVC_STAGE in the
    environment) nothing is watched, so `nohup python -m digits.stages...` outlives its shell.
    """
    if "DVC_STAGE" not in os.environ:
        yield
        return
    libc = _libc()
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    done = threading.Event()
    _watched.update(parent=os.getppid(), starter=_starter())
    thread = threading.Thread(target=_watch, args=(done,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _process(pid: int) -> tuple[str, int, str] | None:
    """(name, parent pid, start time) of a process from /proc, or None when it is gone (a zombie too: dead,
    not yet reaped) or /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
    return None if rest[0] in ("Z", "X") else (name, int(rest[1]), rest[19])


def _starter() -> tuple[int, str] | None:
    """(pid, start time) of the nearest ancestor that is not a shell, or None without /proc."""
    pid = os.getppid()
    while (info := _process(pid)) is not None and info[0] in SHELLS and info[1] > 1:
        pid = info[1]
    return (pid, info[2]) if info is not None else None


def _lost(parent: int, starter: tuple[int, str] | None) -> bool:
    """Whether this process lost its `parent` or the `starter` process is gone."""
    info = _process(starter[0]) if starter else None
    return os.getppid() != parent or (starter is not None and (info is None or info[2] != starter[1]))


def _watch(done: threading.Event) -> None:
    """Every POLL_SECONDS until `done`: SIGTERM this process once the watched processes are gone."""
    while not done.wait(POLL_SECONDS):
        if _lost(**_watched):
            os.kill(os.getpid(), signal.SIGTERM)
            return


@contextmanager
def params_unchanged(stage: str, keys: tuple[str, ...], start: params.Params) -> Iterator[None]:
    """Within the block, refuse every output write once one of `keys` (dotted) in params.yaml
    differs from `start`, the params the stage runs with, e.g. after another `dvc exp run -S`."""
    def check(path: Path) -> None:
        try:
            now = params.load()
        except DigitsError as e:
            raise DigitsError(f"{e} (params.yaml changed while {stage} ran; {path} was not written)") from None
        for key in keys:
            before, after = _get(start.document, key), _get(now.document, key)
            if before != after:
                raise DigitsError(
                    f"params.yaml: {key} changed while {stage} ran (another run in this workspace?), so its "
                    f"outputs would not match it; {path} was not written. Run experiments side by side with "
                    "`dvc exp run --queue` or `--temp`, then rerun")
    with checked_writes(check):
        yield


def _get(tree: dict, key: str):
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def prepare_outputs(stage: str, outputs: tuple[str, ...]) -> None:
    """Remove what a hard-killed run left of `outputs` (temporary files of atomic writes and of
    the write probe), then check that each output's folder can be written.

    Outputs ending in "/" are folders; the others are files.
    """
    left = remove_temporaries(outputs)
    if left:
        print(f"{stage}: removed {len(left)} temporary file(s) left by an interrupted run: "
              f"{', '.join(map(str, left))}")
    for folder in dict.fromkeys(Path(out) if out.endswith("/") else Path(out).parent for out in outputs):
        probe(folder)


def remove_temporaries(outputs: tuple[str, ...]) -> list[Path]:
    """Remove the temporary files of atomic writes (and of the write probe) of `outputs`; returns them.

    Also called when a stage is interrupted: a signal can raise KeyboardInterrupt at a point where
    the `finally` of `io.atomic_path` never runs (e.g. inside `with`'s enter, after the temporary
    file was made), so the stage sweeps its own outputs on the way out.
    """
    left = [tmp for out in outputs for tmp in _temporaries(out)]
    for tmp in left:
        tmp.unlink(missing_ok=True)
    return left


def _temporaries(out: str) -> list[Path]:
    """Leftovers beside `out` (.<name>.<random>.tmp) and, for a folder, inside it."""
    path = Path(out)
    beside = re.compile(rf"\.({re.escape(path.name)}|{re.escape(PROBE)})\.[a-z0-9_]{{8}}\.tmp")
    found = [p for p in path.parent.glob(".*.tmp") if beside.fullmatch(p.name)] if path.parent.is_dir() else []
    if out.endswith("/") and path.is_dir():
        inside = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
        found += [p for p in path.rglob(".*.tmp") if inside.fullmatch(p.name) and p.is_file()]
    return found


def probe(folder: Path) -> None:
    """Write, sync and remove a small file in `folder` or, while it does not exist, in the nearest
    folder above it where it would be made; a one-line DigitsError if the OS refuses."""
    where = next(p for p in (folder, *folder.parents) if p.is_dir())
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=f"{PROBE}.", suffix=".tmp")
        try:
            os.write(fd, bytes(4096))
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as e:
        raise DigitsError(f"{folder}/: cannot write there ({e.strerror or e}); make room on the disk or make "
                          f"{where} writable, then rerun (found before any work was done)") from None
