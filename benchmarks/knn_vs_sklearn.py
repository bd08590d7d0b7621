"""Speed of the numpy k-NN against scikit-learn's brute-force KNeighborsClassifier, side by side.

    python benchmarks/knn_vs_sklearn.py [--data DATA] [--repeats 3]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/knn_vs_sklearn.py ...

DATA is a zip or folder in Kaggle's layout (train.csv and test.csv), e.g. the competition's
digit-recognizer.zip; the default is data/raw, which `dvc repro` fills from `data.source`.
Both classifiers get the same float32 rows (raw pixels scaled to [0, 1]), k=3, uniform votes,
and fit on all train rows and predict all test rows (42,000 x 28,000 on the competition data).
scikit-learn runs with algorithm="brute", n_jobs=-1. Runs alternate, `--repeats` of each; the
best and the median wall times, their ratios (numpy / scikit-learn) and the number of equal
predictions are printed, with the load average before and after and the BLAS each library
runs (threadpoolctl). Other work on the machine slows both sides, not always equally, so each
run's CPU time (user + system, all threads) is printed too: it counts the work done, though
threads that spin while they wait for a core also count.

Peak memory of the numpy side: the numpy buffers it allocates (tracemalloc) and the process's
peak resident size (ru_maxrss) after its first run, before scikit-learn has run at all.
OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE at start-up, so compare the two variants
by running the script twice, once under `env -u` as above.
"""

import argparse
import os
import resource
import statistics
import time
import tracemalloc

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_info

from digits.data import parse_digits
from digits.knn import KNNClassifier
from digits.sources import fetch

K = 3


def load(source):
    """Training rows float32 (N, 784), labels (N,), test rows float32 (M, 784), pixels scaled to [0, 1]."""
    files = fetch(source).files
    x, y = parse_digits(files["train.csv"], "train.csv", labelled=True)
    x_test, _ = parse_digits(files["test.csv"], "test.csv", labelled=False)
    return (x.reshape(len(x), -1).astype(np.float32) / 255, y,
            x_test.reshape(len(x_test), -1).astype(np.float32) / 255)


def run_numpy(x, y, x_test):
    return KNNClassifier(n_neighbors=K).fit(x, y).predict(x_test)


def run_sklearn(x, y, x_test):
    return KNeighborsClassifier(n_neighbors=K, algorithm="brute", n_jobs=-1).fit(x, y).predict(x_test)


def timed(fn, *args):
    """(wall seconds, CPU seconds of the process, result) of fn(*args)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/raw", help="zip or folder holding train.csv and test.csv")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each classifier")
    args = parser.parse_args()

    print(f"load average (1, 5, 15 min) before: {os.getloadavg()}, {os.cpu_count()} CPUs")
    print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s" % tuple(os.environ.get(key, "(unset)")
                                                           for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")))
    x, y, x_test = load(args.data)
    print(f"{len(x):,} training rows x {len(x_test):,} test rows, {x.shape[1]} features, k={K}")
    for lib in threadpool_info():
        print(f"  {lib['internal_api']} {lib.get('version')} kernel={lib.get('architecture', '-')} "
              f"threads={lib['num_threads']} ({os.path.relpath(lib['filepath'], os.path.dirname(np.__path__[0]))})")

    tracemalloc.start()
    times = {"numpy": [], "sklearn": []}
    *elapsed, ours = timed(run_numpy, x, y, x_test)
    times["numpy"].append(elapsed)
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after_numpy = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for run in range(args.repeats):
        *elapsed, theirs = timed(run_sklearn, x, y, x_test)
        times["sklearn"].append(elapsed)
        if run + 1 < args.repeats:
            *elapsed, again = timed(run_numpy, x, y, x_test)
            times["numpy"].append(elapsed)
            assert np.array_equal(again, ours), "the numpy k-NN gave different predictions on a second run"

    best = {name: min(wall for wall, _ in runs) for name, runs in times.items()}
    median = {name: statistics.median(wall for wall, _ in runs) for name, runs in times.items()}
    cpu = {name: min(used for _, used in runs) for name, runs in times.items()}
    for name, runs in times.items():
        print(f"{name:8s} wall {' '.join(f'{wall:.2f}' for wall, _ in runs)} s: best {best[name]:.2f} s, "
              f"median {median[name]:.2f} s; CPU {' '.join(f'{used:.1f}' for _, used in runs)} s")
    print(f"ratio numpy / scikit-learn: best wall {best['numpy'] / best['sklearn']:.3f}, "
          f"median wall {median['numpy'] / median['sklearn']:.3f}, least CPU {cpu['numpy'] / cpu['sklearn']:.3f}")
    print(f"equal predictions: {int((ours == theirs).sum()):,} of {len(ours):,}")
    print(f"numpy side peak memory: numpy buffers {numpy_peak / 2**30:.2f} GiB (tracemalloc); "
          f"process peak RSS {rss_after_numpy:.2f} GiB (ru_maxrss, data included)")
    print(f"load average (1, 5, 15 min) after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
