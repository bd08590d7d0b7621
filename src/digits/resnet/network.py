"""The network: a torchvision ResNet with a stem for one-channel 28x28 digits, and its input convention
(uint8 images scaled and standardised)."""

from typing import get_args

import numpy as np
import torch
import torchvision
from torch import nn

from digits.errors import DigitsError
from digits.params import ResNetProfile

ARCHS = get_args(ResNetProfile.model_fields["arch"].annotation)  # torchvision builders by name: resnet18, ...
STEMS = get_args(ResNetProfile.model_fields["stem"].annotation)  # stock, mid, small (see build_resnet)
# Mean and standard deviation of MNIST pixels scaled to [0, 1].
MEAN, STD = 0.1307, 0.3081


def build_resnet(arch="resnet18", stem="stock", num_classes=10, *, seed=None):
    """An untrained torchvision ResNet taking (N, 1, 28, 28) images and giving (N, num_classes) logits.

    The stem is what hands layer1 its feature map (cost grows with its size): "stock", ImageNet's
    7x7 stride-2 conv and 3x3 max-pool (28x28 -> 7x7); "mid", a 3x3 stride-2 conv, no max-pool
    (-> 14x14); "small", a 3x3 stride-1 conv, no max-pool (-> 28x28). With a seed, torch's
    generator is seeded first so that the initial weights are reproducible.
    """
    if arch not in ARCHS:
        raise DigitsError(f"Unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    if stem not in STEMS:
        raise DigitsError(f"Unknown stem {stem!r}; expected one of {', '.join(STEMS)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    width = model.conv1.out_channels
    if stem == "stock":
        model.conv1 = nn.Conv2d(1, width, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        model.conv1 = nn.Conv2d(1, width, kernel_size=3, stride=2 if stem == "mid" else 1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def as_tensor(x):
    """uint8 images x (N, 28, 28) as a uint8 tensor (N, 1, 28, 28)."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise DigitsError(f"Expected uint8 images of shape (N, 28, 28), but got {x.dtype} of shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)


def normalise(images):
    """uint8 images scaled to [0, 1] then standardised with MEAN and STD, as float32."""
    return (images.float() / 255 - MEAN) / STD
