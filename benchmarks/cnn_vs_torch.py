"""Speed of the numpy CNN against the same network in torch, on this machine's CPU cores.

    python benchmarks/cnn_vs_torch.py [--repeats 3] [--cores N]

Trains the seed network (LeNet-5 variant: Conv 24@5x5, ReLU, MaxPool 2, Conv 60@5x5, ReLU,
MaxPool 2, Linear 240, Dropout, ReLU, Linear 84, Dropout, ReLU, Linear 10) for one epoch
of 33,600 images (batch 128, float32, Adam 1e-3), then predicts 28,000 images (batches
of 256), once in numpy and once in torch (``torch.set_num_threads`` = the cores this
process may use), each in its own child process so that their peak memory is their own.
Timings do not depend on pixel values, so the images are seeded uniform noise.

Runs every measurement twice over: with the environment as it is, then with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (OpenBLAS reads them at start-up, so
only the children's environment changes).  Prints the load average first: other work
on the machine slows both sides, and not equally (threads that spin while they wait
lose most when the cores are shared), so compare figures taken at a low load.
``--cores N`` pins both children to the first N cores this process may use.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

TRAIN, TEST, BATCH, PREDICT_BATCH = 33_600, 28_000, 128, 256
SEED_SPEC = [
    {"conv2d": {"out_channels": 24, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
    {"conv2d": {"out_channels": 60, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
    "flatten", {"linear": {"out_features": 240}}, {"dropout": {"p": 0.5}}, "relu",
    {"linear": {"out_features": 84}}, {"dropout": {"p": 0.5}}, "relu", {"linear": {"out_features": 10}},
]
OPENBLAS_KEYS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def data():
    rng = np.random.default_rng(0)
    x = rng.random((TRAIN, 1, 28, 28), dtype=np.float32)
    return x, rng.integers(0, 10, size=TRAIN), rng.random((TEST, 1, 28, 28), dtype=np.float32)


def time_numpy():
    from digits import nn

    x, y, x_test = data()
    model = nn.build(SEED_SPEC, seed=0)
    optimizer = nn.Adam(model.parameters(), lr=1e-3)
    nn.train_epoch(model, optimizer, x[:4 * BATCH], y[:4 * BATCH], BATCH, np.random.default_rng(1))  # warm-up
    start = time.perf_counter()
    nn.train_epoch(model, optimizer, x, y, BATCH, np.random.default_rng(0))
    train = time.perf_counter() - start
    start = time.perf_counter()
    nn.predict_proba(model, x_test, batch_size=PREDICT_BATCH)
    return train, time.perf_counter() - start


def torch_network(torch):
    layers, channels, features = [], 1, None
    for item in SEED_SPEC:
        name, args = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        if name == "conv2d":
            layers.append(torch.nn.Conv2d(channels, args["out_channels"], args["kernel_size"]))
            channels = args["out_channels"]
        elif name == "maxpool2d":
            layers.append(torch.nn.MaxPool2d(args["kernel_size"]))
        elif name == "flatten":
            layers.append(torch.nn.Flatten())
            features = channels * 4 * 4
        elif name == "linear":
            layers.append(torch.nn.Linear(features, args["out_features"]))
            features = args["out_features"]
        elif name == "dropout":
            layers.append(torch.nn.Dropout(args["p"]))
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def time_torch():
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    x, y, x_test = data()
    x, y, x_test = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test)
    model = torch_network(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch(n):
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, BATCH):
            batch = order[start:start + BATCH]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()

    epoch(4 * BATCH)  # warm-up
    start = time.perf_counter()
    epoch(TRAIN)
    train = time.perf_counter() - start
    start = time.perf_counter()
    model.eval()
    with torch.no_grad():
        for first in range(0, TEST, PREDICT_BATCH):
            torch.softmax(model(x_test[first:first + PREDICT_BATCH]), dim=1)
    return train, time.perf_counter() - start


def child(kind, cores):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    train, predict = time_numpy() if kind == "numpy" else time_torch()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"train": train, "predict": predict, "peak": peak}))


def measure(kind, env, cores):
    result = subprocess.run([sys.executable, __file__, "--child", kind, "--cores", str(cores)], env=env,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per environment (median shown)")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                        help="cores (and threads) for each side; default: all this process may use")
    parser.add_argument("--child", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cores < 1:
        parser.error(f"--cores must be at least 1, got {args.cores}")
    if args.child:
        child(args.child, args.cores)
        return

    cores = min(args.cores, len(os.sched_getaffinity(0)))
    print(f"{cores} cores; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min)")
    print(f"one training epoch: {TRAIN:,} images, batch {BATCH}, float32, Adam; inference: {TEST:,} images")
    unset = {key: value for key, value in os.environ.items() if key not in OPENBLAS_KEYS}
    as_set = ", ".join(f"{key}={os.environ[key]}" for key in OPENBLAS_KEYS if key in os.environ) or "none set"
    for label, env in [(f"environment as is ({as_set})", dict(os.environ)),
                       (f"{' and '.join(OPENBLAS_KEYS)} unset", unset)]:
        runs = {"numpy": [], "torch": []}
        for _ in range(args.repeats):  # alternate the two sides, so that a change of load hits both
            for kind in runs:
                runs[kind].append(measure(kind, env, cores))
        print(f"\n{label}")
        for key, what in [("train", "train epoch"), ("predict", "inference ")]:
            numpy_s = [run[key] for run in runs["numpy"]]
            torch_s = [run[key] for run in runs["torch"]]
            ratio = np.median(numpy_s) / np.median(torch_s)
            print(f"  {what}  numpy {np.median(numpy_s):6.2f} s  torch {np.median(torch_s):6.2f} s"
                  f"  numpy/torch {ratio:.2f}   (numpy {' '.join(f'{v:.2f}' for v in numpy_s)};"
                  f" torch {' '.join(f'{v:.2f}' for v in torch_s)})")
        print("  peak memory  " + "  ".join(
            f"{kind} {max(run['peak'] for run in runs[kind]) / 2**20:.0f} MiB" for kind in runs))
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
