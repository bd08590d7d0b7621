"""Spreading the network's large products over the cores, one BLAS thread per core.

OpenBLAS's own threads wait for each other by spinning; on a busy machine (other
processes, or our own elementwise work) a spinning thread that loses its core stalls
every product, and the small products of a CNN layer (a few MFLOP each) rarely repay
the start-up.  So the network runs with BLAS limited to one thread (``Sequential``
enters ``one_blas_thread()`` for each pass, ``train_epoch`` and ``predict_proba`` for
the whole loop), and the products that are worth it are cut into one piece per core
here and run on a thread pool whose threads sleep while they wait.  Pieces are cut the
same way on every call, so results are reproducible bit for bit on a given machine.

The whole loop, because one multi-threaded BLAS call between two passes (the
augmentation's coordinate product, about 0.6 million multiply-adds a batch) wakes
OpenBLAS's threads, which then spin for a while and take a core from the next pass:
that cost a training epoch of the default network about a quarter of its time.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from threadpoolctl import ThreadpoolController

WORKERS = len(os.sched_getaffinity(0))
_BLAS = ThreadpoolController()
_POOL = ThreadPoolExecutor(WORKERS, thread_name_prefix="digits-nn") if WORKERS > 1 else None
_MIN_WORK = 2_000_000  # multiply-adds below which a product stays on the calling thread
_LIMITED = threading.local()  # .depth: how many one_blas_thread blocks this thread is inside


@contextmanager
def one_blas_thread():
    """Within the block, every BLAS call runs on the thread that makes it.  Only the outermost block
    of a thread sets and restores the limit (tens of microseconds each time), so nesting is free."""
    depth = getattr(_LIMITED, "depth", 0)
    _LIMITED.depth = depth + 1
    try:
        if depth:
            yield
        else:
            with _BLAS.limit(limits=1, user_api="blas"):
                yield
    finally:
        _LIMITED.depth = depth


def run_split(fn, length, work):
    """``[fn(lo, hi), ...]`` over contiguous pieces covering range(length): one piece per core, run on
    the pool, when ``work`` (multiply-adds) pays for the hand-over; else one piece on this thread."""
    if _POOL is None or work < _MIN_WORK or length < 2:
        return [fn(0, length)]
    bounds = np.linspace(0, length, min(WORKERS, length) + 1).astype(int)
    with one_blas_thread():
        pieces = [_POOL.submit(fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        return [piece.result() for piece in pieces]


def matmul(a, b, split="rows"):
    """``a @ b``, cut along ``split``: "rows" of a 2-D ``a``, the leading axis of a "stack" of
    matrices, or the "inner" (summed) axis of 2-D operands, whose partial products are then added."""
    work = int(np.prod(a.shape)) * b.shape[-1]
    if split == "inner":
        partials = run_split(lambda lo, hi: a[:, lo:hi] @ b[lo:hi], a.shape[1], work)
        for partial in partials[1:]:
            partials[0] += partial
        return partials[0]
    out = np.empty(a.shape[:-1] + b.shape[-1:], dtype=np.result_type(a, b))
    run_split(lambda lo, hi: np.matmul(a[lo:hi], b if split == "rows" else b[lo:hi], out=out[lo:hi]), len(a), work)
    return out
