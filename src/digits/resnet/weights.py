"""Pretrained weights for a ResNet: torchvision's ImageNet weights or a `.pth` state dict, fitted to one channel."""

import urllib.error
from pathlib import Path

import torch
import torchvision

from digits.artifacts import check_arrays
from digits.errors import DigitsError
from digits.resnet.files import LOAD_ERRORS


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
    except LOAD_ERRORS:
        state = None  # torch's message advises loading unsafely: not passed on
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DigitsError(f"resnet.weights: {path}: not a torch state dict (a mapping of names to tensors saved "
                          "by torch.save, holding nothing but tensors); point resnet.weights at such a .pth")
    check_arrays(path, state, "network", "point resnet.weights at a trained network's .pth")
    return state
