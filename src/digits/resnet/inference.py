"""ResNet class probabilities, with optional test-time shifts."""

import numpy as np
import torch
from torch import nn

from digits.memory import keep_freed_memory
from digits.resnet.device import bf16_autocast
from digits.resnet.network import as_tensor, normalise

# The one-pixel moves (right, down) whose predictions test-time augmentation averages with the image's own.
TTA_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def predict_proba(model, x, *, device, batch_size=256, bf16=False, tta=False):
    """Class probabilities (N, num_classes) float32 for uint8 images x (N, 28, 28); `bf16` as in `bf16_autocast`.

    With `tta`, each image's probabilities are the mean over it and its copies moved one pixel
    left, right, up and down (TTA_SHIFTS): five forward passes instead of one.
    """
    keep_freed_memory()
    images, device = as_tensor(x), torch.device(device)
    proba = np.empty((len(images), model.fc.out_features), np.float32)
    shifts = [(0, 0), *TTA_SHIFTS] if tta else [(0, 0)]
    model.to(device).eval()
    with torch.inference_mode(), bf16_autocast(device, bf16):
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            views = [torch.softmax(model(normalise(_shift(batch, dx, dy))).float(), dim=1) for dx, dy in shifts]
            proba[start : start + batch_size] = (sum(views) / len(views)).cpu().numpy()
    return proba


def _shift(images, dx, dy):
    """Images (N, C, H, W) moved dx pixels right and dy pixels down (each -1, 0 or 1); the uncovered edge is 0."""
    height, width = images.shape[-2:]
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    return padded[..., 1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]
