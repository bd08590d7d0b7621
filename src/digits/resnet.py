"""torchvision ResNets for one-channel 28x28 digits: build, pretrained weights, train (one process or DDP),
predict, save and load."""

import io
import json
import os
import pickle
import struct
import urllib.error
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torchvision
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms import v2

from digits.artifacts import check_arrays, unreadable
from digits.errors import DigitsError
from digits.fingerprint import changed_keys, fingerprint
from digits.io import atomic_path
from digits.progress import progress

ARCHS = {
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
}
# First layers for 28x28 inputs, by the size of the feature map they hand to layer1 (cost grows with it).
STEMS = {
    "stock": "ImageNet's 7x7 stride-2 conv and 3x3 max-pool: 28x28 -> 7x7",
    "mid": "3x3 stride-2 conv, no max-pool: 28x28 -> 14x14",
    "small": "3x3 stride-1 conv, no max-pool: 28x28 -> 28x28",
}
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine")
# What torch.load raises for a file that is not what it should be (weights_only refuses code with UnpicklingError).
_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, TypeError, struct.error,
                zipfile.BadZipFile)
# The one-pixel moves (right, down) whose predictions test-time augmentation averages with the image's own.
TTA_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))
# Mean and standard deviation of MNIST pixels scaled to [0, 1].
MEAN, STD = 0.1307, 0.3081


@dataclass(frozen=True)
class TrainConfig:
    """How to train: `resnet.profiles.<name>` in params.yaml, less `arch` and `stem`."""

    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "adamw"  # adamw | sgd (momentum 0.9, Nesterov)
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # onecycle (warm-up then anneal) | cosine, stepped every batch
    label_smoothing: float = 0.0
    degrees: float = 0.0  # augmentation: rotation drawn from [-degrees, degrees]
    translate: float = 0.0  # shift up to this fraction of the side
    scale: float = 0.0  # zoom drawn from [1 - scale, 1 + scale]
    bf16: bool = False  # forward passes under bfloat16 autocast where the device computes it natively
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise DigitsError(f"resnet optimizer is {self.optimizer!r}, expected one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise DigitsError(f"resnet schedule is {self.schedule!r}, expected one of {', '.join(SCHEDULES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise DigitsError(f"resnet epochs, batch_size and lr must be positive, got {self.epochs}, "
                              f"{self.batch_size}, {self.lr}")

    @property
    def augments(self) -> bool:
        return bool(self.degrees or self.translate or self.scale)


def build_resnet(arch="resnet18", stem="stock", num_classes=10, *, seed=None):
    """An untrained torchvision ResNet taking (N, 1, 28, 28) images and giving (N, num_classes) logits.

    `stem` is one of STEMS. With a seed, torch's generator is seeded first so that the initial
    weights are reproducible.
    """
    if arch not in ARCHS:
        raise DigitsError(f"Unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    if stem not in STEMS:
        raise DigitsError(f"Unknown stem {stem!r}; expected one of {', '.join(STEMS)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = ARCHS[arch](weights=None)
    width = model.conv1.out_channels
    if stem == "stock":
        model.conv1 = nn.Conv2d(1, width, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        model.conv1 = nn.Conv2d(1, width, kernel_size=3, stride=2 if stem == "mid" else 1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def load_weights(model, weights, arch):
    """Copy pretrained weights into `model`: "none", "imagenet" (torchvision's weights), or a `.pth` state dict path.

    RGB first-conv weights are summed into one channel (a grey image fed as three equal channels
    gives the same response); the first conv is left as initialised when its shape differs (another
    stem); the classifier `fc` is never copied. Any other missing, unexpected or misshapen tensor
    raises a DigitsError naming the source.
    """
    if weights == "none":
        return
    if weights == "imagenet":
        source, state = "resnet.weights=imagenet", _imagenet_state(arch)
    else:
        source, state = str(weights), _read_state(Path(weights))
    own = model.state_dict()
    copied, unexpected = {}, []
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        if key == "conv1.weight" and value.ndim == 4 and value.shape[1] == 3:
            value = value.sum(dim=1, keepdim=True)
        if key not in own:
            unexpected.append(key)
        elif value.shape == own[key].shape:
            copied[key] = value
        elif key != "conv1.weight":
            raise DigitsError(f"{source}: {key} has shape {tuple(value.shape)}, but {arch} needs "
                              f"{tuple(own[key].shape)}; is it a {arch} state dict?")
    missing = [k for k in own if k not in copied and not k.startswith("fc.") and k != "conv1.weight"]
    if missing or unexpected:
        raise DigitsError(f"{source}: not a {arch} state dict ({len(missing)} tensors missing, e.g. {missing[:2]}; "
                          f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    model.load_state_dict(copied, strict=False)


def _imagenet_state(arch):
    """torchvision's ImageNet weights for `arch`, from torch's hub cache or downloaded into it."""
    enum = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    try:
        return enum.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError) as e:
        where = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
        raise DigitsError(f"resnet.weights=imagenet: cannot download {enum.url} ({e}); without a network, copy "
                          f"that file to {where}, or set resnet.weights to its path") from None


def _read_state(path):
    """A state dict from a `.pth` file (a bare state dict, or a dict holding one under "state_dict")."""
    if not path.is_file():
        raise DigitsError(f"resnet.weights: {path}: no such file; expected 'none', 'imagenet' or a .pth path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _LOAD_ERRORS:
        state = None  # torch's message advises loading unsafely: not passed on
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DigitsError(f"resnet.weights: {path}: not a torch state dict (a mapping of names to tensors saved "
                          "by torch.save, holding nothing but tensors); point resnet.weights at such a .pth")
    check_arrays(path, state, "network", "point resnet.weights at a trained network's .pth")
    return state


def pick_device(name="auto"):
    """The torch device called name; "auto" prefers cuda, then mps, then cpu."""
    accelerators = [d for d in ("cuda", "mps") if _has(d)]
    if name == "auto":
        return torch.device(accelerators[0] if accelerators else "cpu")
    if name != "cpu" and name not in accelerators:
        choices = ", ".join(["auto", "cpu", *accelerators])
        raise DigitsError(f"Device {name!r} is not available here; expected one of {choices}")
    return torch.device(name)


@contextmanager
def distributed(device_name="auto"):
    """Yield (device, rank). Under `torchrun` (WORLD_SIZE > 1) a process group is set up for the
    duration (nccl on CUDA, one GPU per process; gloo on CPU); otherwise rank is 0 and nothing is set up.

    Deterministic algorithms are switched on, so that the same seed gives the same weights. On CPU,
    torch's threads are split evenly between the processes sharing this machine.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # lets cuBLAS be deterministic; set before CUDA starts
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = pick_device(device_name)
    if device.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // world))
    if world == 1:
        yield device, 0
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield device, dist.get_rank()
    finally:
        dist.destroy_process_group()


class _Digits(Dataset):
    """uint8 images (N, 1, 28, 28) and labels, each image passed through `transform` when one is given."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.labels[i]


def train(model, x, y, config, *, device, on_epoch=None, checkpoint=None, resume=False, on_resume=None):
    """Train model in place on uint8 images x (N, 28, 28) and labels y (N,); returns it.

    Runs data-parallel when a process group is initialised (see `distributed`): each process
    trains on its shard of every epoch and gradients are averaged. After each epoch, on rank 0,
    calls on_epoch(epoch, loss, accuracy, lr) — epoch from 0, mean training cross-entropy and
    accuracy over the epoch's batches of all processes, learning rate at the epoch's end — and
    writes `checkpoint` (when given) so that `resume=True` continues an interrupted run to the
    same weights an uninterrupted one reaches. The checkpoint keeps what on_epoch returned (a
    JSON-able dict of figures, or None) for each epoch; on resuming, rank 0 hands that list to
    on_resume(history) before training goes on.
    """
    images, device = _images(x), torch.device(device)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if labels.shape != (len(images),):
        raise DigitsError(f"Expected labels of shape ({len(images)},) to match the images, but got {tuple(labels.shape)}")
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    transform = v2.RandomAffine(degrees=config.degrees, translate=(config.translate,) * 2,
                                scale=(1 - config.scale, 1 + config.scale),
                                interpolation=v2.InterpolationMode.BILINEAR) if config.augments else None
    dataset = _Digits(images, labels, transform)
    per_process = len(dataset) // world
    drop_last = per_process % config.batch_size == 1  # batch norm cannot train on a final batch of one image
    steps = per_process // config.batch_size + (0 if drop_last or per_process % config.batch_size == 0 else 1)

    settings = fingerprint(asdict(config), images.numpy(), labels.numpy())
    torch.manual_seed(config.seed)
    model.to(device)
    net = DistributedDataParallel(model) if world > 1 else model
    optimizer, scheduler = _optimizer(model, config, steps)
    start, history = _resume(checkpoint, model, optimizer, scheduler, settings) if resume else (0, [])
    if history and rank == 0 and on_resume is not None:
        on_resume(history)
    autocast = bf16_autocast(device, config.bf16)
    for epoch in range(start, config.epochs):
        if world > 1:
            sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=config.seed, drop_last=True)
            sampler.set_epoch(epoch)
            loader = DataLoader(dataset, config.batch_size, sampler=sampler, drop_last=drop_last)
        else:
            loader = DataLoader(dataset, config.batch_size, shuffle=True, drop_last=drop_last,
                                generator=torch.Generator().manual_seed(config.seed + epoch))
        model.train()  # on_epoch may have switched it to eval mode to score the validation split
        totals = torch.zeros(3, device=device)  # loss sum, correct, seen
        for xb, yb in progress(loader, f"train_resnet epoch {epoch + 1}/{config.epochs}", unit="batch"):
            xb, yb = _normalise(xb.to(device)), yb.to(device)
            with autocast:
                logits = net(xb)
            loss = nn.functional.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals += torch.stack([loss.detach() * len(yb), (logits.argmax(1) == yb).sum().float(),
                                   loss.new_tensor(float(len(yb)))])
        if world > 1:
            dist.all_reduce(totals)
        if rank == 0:
            loss_sum, correct, seen = totals.tolist()
            figures = on_epoch(epoch, loss_sum / seen, correct / seen, scheduler.get_last_lr()[0]) if on_epoch else None
            history.append(figures)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, epoch + 1, model, optimizer, scheduler, settings, history)
    return model


def _optimizer(model, config, steps_per_epoch):
    """The optimiser and its per-batch learning-rate schedule."""
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                    weight_decay=config.weight_decay)
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return optimizer, scheduler


def _save_checkpoint(path, epochs_done, model, optimizer, scheduler, settings, history):
    """Everything needed to continue training after `epochs_done` epochs, written atomically.

    `settings` (the run's `fingerprint`: training params and a hash of the data) guards against
    resuming a run made with other params or data; `history` is the list of per-epoch figures so far.
    """
    state = {"epochs_done": epochs_done, "fingerprint": settings, "history": json.dumps(history),
             "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}
    _write(state, path)


def _resume(path, model, optimizer, scheduler, settings):
    """Load a checkpoint written by `_save_checkpoint`; returns (epochs already done, their figures), (0, []) if none."""
    if path is None or not Path(path).is_file():
        return 0, []
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        changed, history = changed_keys(state["fingerprint"], settings), json.loads(state["history"])
    except _LOAD_ERRORS:
        raise DigitsError(f"{path}: not a training checkpoint (tensors and plain values written by train_resnet); "
                          "delete it or set resnet.resume to false") from None
    if changed:
        raise DigitsError(f"{path}: made with other training params or data ({', '.join(changed)}); "
                          "delete it or set resnet.resume to false")
    check_arrays(path, state["model"], "training state", "delete it or set resnet.resume to false")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["epochs_done"], history


def predict_proba(model, x, *, device, batch_size=256, bf16=False, tta=False):
    """Class probabilities (N, num_classes) float32 for uint8 images x (N, 28, 28); `bf16` as in `bf16_autocast`.

    With `tta`, each image's probabilities are the mean over it and its copies moved one pixel
    left, right, up and down (TTA_SHIFTS): five forward passes instead of one.
    """
    images, device = _images(x), torch.device(device)
    proba = np.empty((len(images), model.fc.out_features), np.float32)
    shifts = [(0, 0), *TTA_SHIFTS] if tta else [(0, 0)]
    model.to(device).eval()
    with torch.inference_mode(), bf16_autocast(device, bf16):
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            views = [torch.softmax(model(_normalise(_shift(batch, dx, dy))).float(), dim=1) for dx, dy in shifts]
            proba[start : start + batch_size] = (sum(views) / len(views)).cpu().numpy()
    return proba


def _shift(images, dx, dy):
    """Images (N, C, H, W) moved dx pixels right and dy pixels down (each -1, 0 or 1); the uncovered edge is 0."""
    height, width = images.shape[-2:]
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    return padded[..., 1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]


def save(model, path, arch, stem, *, tta=False):
    """Write the arch, stem, whether predictions use test-time augmentation, and the model's weights
    to path atomically, via a temporary file beside it."""
    _write({"arch": arch, "stem": stem, "tta": tta, "state_dict": model.state_dict()}, path)


def _write(obj, path):
    """torch.save `obj` to path atomically; the bytes do not depend on the file's name."""
    buffer = io.BytesIO()  # torch names the archive's folder after the file: keep it fixed for identical bytes
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load(path, device="cpu"):
    """(model, settings) as written by save: the model on device, and a dict of its "arch", "stem" and
    "tta" (False in files written before that was kept).

    Nothing in the file is executed: torch unpickles only tensors and plain containers
    (`weights_only=True`), and anything else is refused with a DigitsError naming the file.
    """
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
        state = checkpoint["state_dict"]
        model = build_resnet(checkpoint["arch"], checkpoint["stem"], num_classes=state["fc.weight"].shape[0])
        model.load_state_dict(state)
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file; run `dvc repro train_resnet` to create it") from None
    except _LOAD_ERRORS:
        raise unreadable(path, "a ResNet written by digits (train_resnet: arch, stem and a state dict of tensors)") from None
    check_arrays(path, state)
    settings = {"arch": checkpoint["arch"], "stem": checkpoint["stem"], "tta": bool(checkpoint.get("tta", False))}
    return model.to(device), settings


def config_from(profile, seed):
    """Split a `resnet.profiles.<name>` mapping into (arch, stem, TrainConfig), naming any unknown key."""
    allowed = {"arch", "stem", *(f.name for f in fields(TrainConfig) if f.name != "seed")}
    unknown = sorted(set(profile) - allowed)
    if unknown:
        raise DigitsError(f"params.yaml: unknown resnet profile key(s) {unknown}; allowed: {sorted(allowed)}")
    rest = {k: v for k, v in profile.items() if k not in ("arch", "stem")}
    return profile.get("arch", "resnet18"), profile.get("stem", "stock"), TrainConfig(**rest, seed=seed)


def bf16_autocast(device, bf16):
    """A context running the forward pass under bfloat16 autocast when `bf16` is true and the device
    computes bfloat16 natively (CUDA; a CPU with AVX512-BF16 or AMX, where it is 1.5 to 2 times
    faster than float32); float32 otherwise, where emulated bfloat16 would be slower."""
    native = device.type == "cuda" or (device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported()
                                                                 or torch.cpu._is_amx_tile_supported()))
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and native)


def _has(device):
    """Whether torch can use the accelerator "cuda" or "mps"."""
    return torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()


def _images(x):
    """uint8 images x (N, 28, 28) as a uint8 tensor (N, 1, 28, 28)."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise DigitsError(f"Expected uint8 images of shape (N, 28, 28), but got {x.dtype} of shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)


def _normalise(images):
    """uint8 images scaled to [0, 1] then standardised with MEAN and STD, as float32."""
    return (images.float() / 255 - MEAN) / STD
