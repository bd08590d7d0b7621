"""ResNet files: the trained network (models/resnet.pt) and torch's own reading and atomic writing of them."""

import io
import pickle
import struct
import zipfile

import torch

from digits.artifacts import check_arrays, unreadable
from digits.errors import DigitsError
from digits.io import atomic_path
from digits.resnet.network import build_resnet

# What torch.load raises for a file that is not what it should be (weights_only refuses code with UnpicklingError).
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, TypeError, struct.error,
               zipfile.BadZipFile)


def save(model, path, arch, stem, *, tta=False):
    """Write the arch, stem, whether predictions use test-time augmentation, and the model's weights
    to path atomically, via a temporary file beside it."""
    write({"arch": arch, "stem": stem, "tta": tta, "state_dict": model.state_dict()}, path)


def write(obj, path):
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
    except LOAD_ERRORS:
        raise unreadable(path, "a ResNet written by digits (train_resnet: arch, stem and a state dict of tensors)") from None
    check_arrays(path, state)
    settings = {"arch": checkpoint["arch"], "stem": checkpoint["stem"], "tta": bool(checkpoint.get("tta", False))}
    return model.to(device), settings
