"""Speed of the numpy CNN against the same network in torch, on this machine's CPU cores.

    python benchmarks/cnn_vs_torch.py [--repeats 3] [--cores N] [--params params.yaml] [--member NAME]
    python benchmarks/cnn_vs_torch.py --profile [--member NAME] [--cores N]

The seed network (LeNet-5 variant: Conv 24@5x5, ReLU, MaxPool 2, Conv 60@5x5, ReLU, MaxPool 2,
Linear 240, Dropout, ReLU, Linear 84, Dropout, ReLU, Linear 10) and the network of each numpy CNN
member that params.yaml's `cnn_members` lists (the `cnn` section with the member's overrides),
read when the script starts, so it measures what the pipeline trains (``--member NAME``: that one
only).  The torch twin of each is made from the layers ``digits.nn.build`` makes of the spec, with
the same sizes and options (input channels and features as build inferred them) and the
same initial weights, copied over, which also checks that every parameter has the same shape.

Each network is trained for one epoch of 33,600 images (263 steps of batch 128, the last of
64), then predicts 28,000 images (batches of 256), once in numpy and once in torch, with the
member's settings (params.yaml's `cnn` section with its overrides): dtype, label smoothing and
optimizer (sgd, adam or adamw with its lr, weight_decay and, for sgd, momentum and nesterov;
torch.optim's class of the same name on the torch side).  Neither side uses the stage's learning-rate schedule or
augmentation.  Each measurement runs in a child process of its own, so that its peak memory is
its own, with ``torch.set_num_threads`` (and the numpy network's thread pool) at the cores that
process may use.  Both sides keep the memory they free (``digits.memory``), as the pipeline's
training stages do; with glibc's default policy each step faults its arrays in afresh, which
slowed torch more than numpy (a training epoch of cnn's network: torch 7.6 s, numpy 4.3 s that
way; 5.5 s and 3.9 s this way).  Timings do not depend on pixel values, so the images are
seeded uniform noise.

Runs every measurement twice over: with the environment as it is, then with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (OpenBLAS reads them at start-up, so
only the children's environment changes).  Prints the load average first: other work
on the machine slows both sides, and not equally (threads that spin while they wait
lose most when the cores are shared), so compare figures taken at a low load.
``--cores N`` pins both children to the first N cores this process may use.

``--profile`` measures nothing in torch: it trains one member's network (``--member``, default the
first) in numpy for a few steps (no augmentation, as above) and prints where one training step's
time goes, layer by layer (forward and backward), and the CPU time the kernel took (page faults:
``digits.memory``); then the whole step with the member's augmentation, as the stage runs it;
then the functions that take most of it (cProfile, which sees the calling thread only: work
handed to the network's thread pool shows there as waiting; with ``--cores 1`` there is no pool).
"""

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TRAIN, TEST, BATCH, PREDICT_BATCH = 33_600, 28_000, 128, 256
INPUT_SHAPE = (1, 28, 28)
PROFILE_STEPS = 50
SEED_SPEC = [
    {"conv2d": {"out_channels": 24, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
    {"conv2d": {"out_channels": 60, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
    "flatten", {"linear": {"out_features": 240}}, {"dropout": {"p": 0.5}}, "relu",
    {"linear": {"out_features": 84}}, {"dropout": {"p": 0.5}}, "relu", {"linear": {"out_features": 10}},
]
OPENBLAS_KEYS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def data(dtype):
    rng = np.random.default_rng(0)
    x = rng.random((TRAIN, *INPUT_SHAPE), dtype=np.float32).astype(dtype)
    return x, rng.integers(0, 10, size=TRAIN), rng.random((TEST, *INPUT_SHAPE), dtype=np.float32).astype(dtype)


def make_optimizer(module, p, parameters):
    """The optimizer params.yaml's cnn section ``p`` names, from ``module``: digits.nn or torch.optim,
    whose SGD, Adam and AdamW take the same arguments, so one function serves both sides; it
    follows digits.cnn._optimizer, which only builds digits.nn's."""
    if p["optimizer"] == "sgd":
        return module.SGD(parameters, lr=p["lr"], momentum=p["momentum"], nesterov=p["nesterov"],
                          weight_decay=p["weight_decay"])
    optimizer = module.Adam if p["optimizer"] == "adam" else module.AdamW
    return optimizer(parameters, lr=p["lr"], weight_decay=p["weight_decay"])


def numpy_network(p):
    from digits import nn

    return nn.build(p["layers"], INPUT_SHAPE, seed=p["seed"], dtype=np.dtype(p["dtype"]))


def time_numpy(p):
    from digits import nn

    x, y, x_test = data(p["dtype"])
    model = numpy_network(p)
    optimizer = make_optimizer(nn, p, model.parameters())
    smoothing = p["label_smoothing"]
    nn.train_epoch(model, optimizer, x[:4 * BATCH], y[:4 * BATCH], BATCH, np.random.default_rng(1),
                   label_smoothing=smoothing)  # warm-up
    start = time.perf_counter()
    nn.train_epoch(model, optimizer, x, y, BATCH, np.random.default_rng(0), label_smoothing=smoothing)
    train = time.perf_counter() - start
    start = time.perf_counter()
    nn.predict_proba(model, x_test, batch_size=PREDICT_BATCH)
    return train, time.perf_counter() - start


def torch_twin(torch, p):
    """The numpy network of cnn settings ``p`` as a torch Sequential of the same layers, dtype and weights."""
    from digits import nn

    model = numpy_network(p)
    t = torch.nn
    twins = {
        nn.Conv2d: lambda layer: t.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                          layer.padding, bias="bias" in layer.params),
        nn.MaxPool2d: lambda layer: t.MaxPool2d(layer.kernel_size, layer.stride),
        nn.AvgPool2d: lambda layer: t.AvgPool2d(layer.kernel_size, layer.stride),
        nn.BatchNorm2d: lambda layer: t.BatchNorm2d(layer.num_features, layer.eps, layer.momentum),
        nn.BatchNorm1d: lambda layer: t.BatchNorm1d(layer.num_features, layer.eps, layer.momentum),
        nn.Flatten: lambda layer: t.Flatten(),
        nn.Linear: lambda layer: t.Linear(layer.in_features, layer.out_features, bias="bias" in layer.params),
        nn.Dropout: lambda layer: t.Dropout(layer.p),
        nn.ReLU: lambda layer: t.ReLU(),
        nn.LeakyReLU: lambda layer: t.LeakyReLU(layer.negative_slope),
        nn.Sigmoid: lambda layer: t.Sigmoid(),
        nn.Tanh: lambda layer: t.Tanh(),
    }
    twin = t.Sequential(*(twins[type(layer)](layer) for layer in model.layers)).to(getattr(torch, p["dtype"]))
    # both name a parameter "<layer index>.<key>"; torch's batch norms also count their batches
    missing, unexpected = twin.load_state_dict({name: torch.from_numpy(array)
                                                for name, array in model.state_dict().items()}, strict=False)
    if unexpected or not all(name.endswith("num_batches_tracked") for name in missing):
        raise RuntimeError(f"the torch twin differs: missing {missing}, unexpected {unexpected}")
    return twin


def time_torch(p):
    import torch

    from digits.memory import keep_freed_memory

    keep_freed_memory()  # as the numpy side's train_epoch does, and the resnet stage
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    x, y, x_test = (torch.from_numpy(array) for array in data(p["dtype"]))
    model = torch_twin(torch, p)
    optimizer = make_optimizer(torch.optim, p, model.parameters())

    def epoch(n):
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, BATCH):
            batch = order[start:start + BATCH]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch], label_smoothing=p["label_smoothing"])
            loss.backward()
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


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def pin(cores):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])


def child(kind, cores, p):
    pin(cores)
    train, predict = time_numpy(p) if kind == "numpy" else time_torch(p)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"train": train, "predict": predict, "peak": peak}))


def measure(kind, env, cores, p):
    result = subprocess.run([sys.executable, __file__, "--child", kind, "--cores", str(cores), "--cnn", json.dumps(p)],
                            env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def layer_items(spec):
    """(name, arguments) of each item of a layer spec: a name, or a one-key mapping {name: {arguments}}."""
    return [(item, {}) if isinstance(item, str) else next(iter(item.items())) for item in spec]


def describe(spec):
    """A layer spec on one line, e.g. "conv2d(out_channels=24, kernel_size=5) relu"."""
    return " ".join(name + (f"({', '.join(f'{key}={value}' for key, value in args.items())})" if args else "")
                    for name, args in layer_items(spec))


def benchmark(members, repeats, cores):
    """Print each network's train and predict times, per side and as numpy / torch, in both environments;
    `members` maps each numpy CNN member's name to its cnn settings."""
    first = next(iter(members.values()))
    networks = {"seed LeNet": {**first, "layers": SEED_SPEC}, **{f"cnn_members.{name}": settings
                                                                 for name, settings in members.items()}}
    print(f"{cores} cores; load average {load_average()} (1, 5, 15 min)")
    print(f"one training epoch: {TRAIN:,} images, {-(-TRAIN // BATCH)} steps of batch {BATCH}, no schedule or"
          f" augmentation; inference: {TEST:,} images, batches of {PREDICT_BATCH}")
    for network, p in networks.items():
        print(f"{network}: {describe(p['layers'])}; {p['dtype']}, {p['optimizer']} lr {p['lr']}"
              f" weight decay {p['weight_decay']}, label smoothing {p['label_smoothing']}")
    unset = {key: value for key, value in os.environ.items() if key not in OPENBLAS_KEYS}
    as_set = ", ".join(f"{key}={os.environ[key]}" for key in OPENBLAS_KEYS if key in os.environ) or "none set"
    for label, env in [(f"environment as is ({as_set})", dict(os.environ)),
                       (f"{' and '.join(OPENBLAS_KEYS)} unset", unset)]:
        runs = {(network, kind): [] for network in networks for kind in ("numpy", "torch")}
        for _ in range(repeats):  # alternate the two sides, so that a change of load hits both
            for network, kind in runs:
                runs[network, kind].append(measure(kind, env, cores, networks[network]))
        print(f"\n{label}")
        for network in networks:
            print(f"  {network}")
            for key, what in [("train", "train epoch"), ("predict", "inference ")]:
                numpy_s = [run[key] for run in runs[network, "numpy"]]
                torch_s = [run[key] for run in runs[network, "torch"]]
                ratio = np.median(numpy_s) / np.median(torch_s)
                print(f"    {what}  numpy {np.median(numpy_s):6.2f} s  torch {np.median(torch_s):6.2f} s"
                      f"  numpy/torch {ratio:.2f}   (numpy {' '.join(f'{v:.2f}' for v in numpy_s)};"
                      f" torch {' '.join(f'{v:.2f}' for v in torch_s)})")
            print("    peak memory  " + "  ".join(
                f"{kind} {max(run['peak'] for run in runs[network, kind]) / 2**20:.0f} MiB"
                for kind in ("numpy", "torch")))
    print(f"\nload average after: {load_average()}")


def profile(name, p, cores):
    """Print where a numpy training step of member `name`'s network (cnn settings ``p``) spends its time:
    per layer, then per function."""
    from digits import nn

    x, y, _ = data(p["dtype"])
    images, labels = x[:PROFILE_STEPS * BATCH], y[:PROFILE_STEPS * BATCH]
    model = numpy_network(p)
    optimizer = make_optimizer(nn, p, model.parameters())
    rng = np.random.default_rng(0)

    def train(n):
        nn.train_epoch(model, optimizer, images[:n], labels[:n], BATCH, rng, label_smoothing=p["label_smoothing"])

    train(4 * BATCH)  # warm-up
    profiler = cProfile.Profile()
    profiler.runcall(train, len(images))

    seconds = {}  # (layer index, "forward" or "backward"), or "optimizer" -> seconds over all the steps

    def timed(method, key):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = method(*args, **kwargs)
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
            return result
        return run

    for index, layer in enumerate(model.layers):
        layer.forward = timed(layer.forward, (index, "forward"))
        layer.backward = timed(layer.backward, (index, "backward"))
    optimizer.step = timed(optimizer.step, "optimizer")
    usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    train(len(images))
    ms = {key: 1000 * value / PROFILE_STEPS for key, value in seconds.items()}
    step = 1000 * (time.perf_counter() - start) / PROFILE_STEPS
    after = resource.getrusage(resource.RUSAGE_SELF)
    kernel = 1000 * (after.ru_stime - usage.ru_stime) / PROFILE_STEPS
    faults = (after.ru_minflt - usage.ru_minflt) / PROFILE_STEPS

    print(f"numpy training step of the network of cnn_members.{name}: batch {BATCH}, {p['dtype']}, {p['optimizer']},"
          f" {cores} cores; mean of {PROFILE_STEPS} steps; load average {load_average()}")
    print(f"  {'layer':<28} {'output':>10} {'forward':>10} {'backward':>10} {'share':>6}")
    shape = INPUT_SHAPE
    for index, ((name, _), layer) in enumerate(zip(layer_items(p["layers"]), model.layers)):
        if isinstance(layer, nn.Conv2d):
            name += f" ({layer.method_for(*shape[1:])})"
        shape = layer.output_shape(shape)
        forward, backward = ms.get((index, "forward"), 0.0), ms.get((index, "backward"), 0.0)
        print(f"  {index:>2} {name:<25} {'x'.join(map(str, shape)):>10} {forward:7.2f} ms {backward:7.2f} ms"
              f" {(forward + backward) / step:6.0%}")
    rest = step - sum(ms.values())
    for what, value in [(f"optimizer step ({p['optimizer']})", ms["optimizer"]),
                        ("the rest (loss, batches, Python)", rest), ("whole step", step)]:
        print(f"     {what:<47} {value:7.2f} ms {value / step:6.0%}")
    print(f"     {'CPU time in the kernel, all threads':<47} {kernel:7.2f} ms          ({faults:.0f} page faults a step;"
          f" digits.memory)")
    if p["degrees"] or p["translate"] or p["scale"]:  # the step as the stage runs it: everything the loop does
        augment = nn.RandomAffine(p["degrees"], p["translate"], p["scale"])
        start = time.perf_counter()
        nn.train_epoch(model, optimizer, images, labels, BATCH, rng, augment=augment,
                       label_smoothing=p["label_smoothing"])
        augmented = 1000 * (time.perf_counter() - start) / PROFILE_STEPS
        print(f"     {'whole step with the augmentation (RandomAffine)':<47} {augmented:7.2f} ms {augmented / step:6.0%}"
              f"   <- the stage's step")
    print(f"\ncProfile of {PROFILE_STEPS} steps (another run, without the timers), digits.nn's functions by"
          f" their time including what they call and wait for:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(r"digits[/\\]nn[/\\]", 20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per environment (median shown)")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                        help="cores (and threads) for each side; default: all this process may use")
    parser.add_argument("--params", type=Path, default=Path(__file__).resolve().parents[1] / "params.yaml",
                        help="the params.yaml whose cnn_members are measured; default: the project's")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the comparison, where a numpy training step of one member's network"
                             " spends its time")
    parser.add_argument("--member", help="the cnn_members entry to measure or profile; default: every member"
                                         " (with --profile, the first)")
    parser.add_argument("--child", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--cnn", help=argparse.SUPPRESS)  # a child's cnn settings, as JSON
    args = parser.parse_args()
    if args.cores < 1:
        parser.error(f"--cores must be at least 1, got {args.cores}")
    if args.child:
        child(args.child, args.cores, json.loads(args.cnn))
        return

    cores = min(args.cores, len(os.sched_getaffinity(0)))
    if args.profile:
        pin(cores)  # before digits.nn sizes its thread pool by the cores this process may use
    from digits import params
    from digits.errors import DigitsError

    try:
        settings = params.load(args.params)
        names = [args.member] if args.member else list(settings.cnn_members)
        members = {name: settings.cnn_member(name).model_dump() for name in names}
        for p in members.values():
            numpy_network(p)  # a bad layer spec is refused here, not in every child
    except DigitsError as err:
        parser.error(str(err))
    if args.profile:
        name = names[0]
        profile(name, members[name], cores)
    else:
        benchmark(members, args.repeats, cores)


if __name__ == "__main__":
    main()
