"""torchvision ResNets for one-channel 28x28 digits: build, train, predict, save and load."""

import io
import pickle

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from digits.errors import DigitsError
from digits.io import atomic_path
from digits.progress import progress

ARCHS = {
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
}
# Mean and standard deviation of MNIST pixels scaled to [0, 1].
MEAN, STD = 0.1307, 0.3081


def build_resnet(arch="resnet18", num_classes=10, *, seed=None):
    """An untrained torchvision ResNet taking (N, 1, 28, 28) images and giving (N, num_classes) logits.

    With a seed, torch's generator is seeded first so that the initial weights are reproducible.
    """
    if arch not in ARCHS:
        raise DigitsError(f"Unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = ARCHS[arch](weights=None)
    stem = model.conv1
    model.conv1 = nn.Conv2d(
        1, stem.out_channels, kernel_size=stem.kernel_size, stride=stem.stride, padding=stem.padding, bias=False
    )
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def pick_device(name="auto"):
    """The torch device called name; "auto" prefers cuda, then mps, then cpu."""
    accelerators = [d for d in ("cuda", "mps") if _has(d)]
    if name == "auto":
        return torch.device(accelerators[0] if accelerators else "cpu")
    if name != "cpu" and name not in accelerators:
        choices = ", ".join(["auto", "cpu", *accelerators])
        raise DigitsError(f"Device {name!r} is not available here; expected one of {choices}")
    return torch.device(name)


def train(model, x, y, *, epochs, batch_size, lr, seed, device, on_epoch=None):
    """Train model in place with Adam and cross-entropy on uint8 images x (N, 28, 28) and labels y (N,); returns it.

    After each epoch calls on_epoch(epoch, loss, accuracy): epoch counts from 0, loss is the mean training
    cross-entropy and accuracy the training fraction correct, both over that epoch's batches. Pass a seed to
    build_resnet too, for a reproducible initialisation.
    """
    images = _images(x)
    y = np.asarray(y)
    labels = torch.as_tensor(y, dtype=torch.long)
    if labels.shape != (len(images),):
        raise DigitsError(f"Expected labels of shape ({len(images)},) to match the images, but got {y.shape}")
    torch.manual_seed(seed)
    loader = DataLoader(
        TensorDataset(images, labels),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        # Batch norm cannot train on a final batch of one image.
        drop_last=len(images) % batch_size == 1,
    )
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        model.train()  # on_epoch may have switched it to eval mode to score the validation split
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for xb, yb in progress(loader, f"train_resnet epoch {epoch + 1}/{epochs}", unit="batch"):
            xb, yb = _normalise(xb.to(device)), yb.to(device)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(yb)
            correct += (logits.argmax(dim=1) == yb).sum()
            seen += len(yb)
        if on_epoch is not None:
            on_epoch(epoch, loss_sum.item() / seen, correct.item() / seen)
    return model


def predict_proba(model, x, *, device, batch_size=512):
    """Class probabilities (N, num_classes) float32 for uint8 images x (N, 28, 28)."""
    images = _images(x)
    proba = np.empty((len(images), model.fc.out_features), np.float32)
    model.to(device).eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            logits = model(_normalise(images[start : start + batch_size].to(device)))
            proba[start : start + batch_size] = torch.softmax(logits, dim=1).cpu().numpy()
    return proba


def save(model, path, arch):
    """Write the arch name and the model's weights to path atomically, via a temporary file beside it."""
    buffer = io.BytesIO()  # torch names the archive's folder after the file: keep it fixed for identical bytes
    torch.save({"arch": arch, "state_dict": model.state_dict()}, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load(path, device="cpu"):
    """The (model, arch) written by save, with the model on device.

    Nothing in the file is executed: torch unpickles only tensors and plain containers
    (`weights_only=True`), and anything else is refused with a DigitsError naming the file.
    """
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
        state = checkpoint["state_dict"]
        model = build_resnet(checkpoint["arch"], num_classes=state["fc.weight"].shape[0])
        model.load_state_dict(state)
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file; run `dvc repro train_resnet` to create it") from None
    except (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as e:
        reason = str(e).strip().splitlines()[0]
        raise DigitsError(f"{path}: not a ResNet written by digits ({type(e).__name__}: {reason})") from None
    return model.to(device), checkpoint["arch"]


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
