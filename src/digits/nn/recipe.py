"""The training recipe of params.yaml's cnn settings: the network, its optimizer, learning-rate schedule and
augmentation, made from a dict of those settings (digits.params.cnn_settings)."""
import math

import numpy as np

from digits import nn
from digits.errors import DigitsError


def make_optimizer(p: dict, parameters: list) -> object:
    if p["optimizer"] == "sgd":
        return nn.SGD(parameters, lr=p["lr"], momentum=p["momentum"], nesterov=p["nesterov"],
                      weight_decay=p["weight_decay"])
    optimizer = nn.Adam if p["optimizer"] == "adam" else nn.AdamW
    return optimizer(parameters, lr=p["lr"], weight_decay=p["weight_decay"])


def make_schedule(p: dict, optimizer: object, steps_per_epoch: int) -> object:
    """The learning-rate schedule, stepped after every batch; sizes given in epochs become batches."""
    if p["schedule"] == "step":
        return nn.StepLR(optimizer, step_size=p["lr_step"] * steps_per_epoch, gamma=p["lr_gamma"])
    total = p["epochs"] * steps_per_epoch
    if p["schedule"] == "cosine":
        return nn.CosineLR(optimizer, total_steps=total)
    return nn.OneCycleLR(optimizer, total_steps=total, warmup=p["warmup"])


def setup(p: dict, input_shape: tuple, dtype: np.dtype, n_train: int) -> tuple:
    """(model, optimizer, schedule, augmentation or None) from the settings, or a DigitsError naming the setting."""
    try:
        model = nn.build(p["layers"], input_shape=input_shape, seed=p["seed"], dtype=dtype)
    except DigitsError as err:
        raise DigitsError(f"params.yaml: cnn.layers: {err}") from None
    try:
        optimizer = make_optimizer(p, model.parameters())
        schedule = make_schedule(p, optimizer, math.ceil(n_train / p["batch_size"]))
        augment = nn.RandomAffine(p["degrees"], p["translate"], p["scale"]) if (
            p["degrees"] or p["translate"] or p["scale"]) else None
    except (DigitsError, ValueError) as err:
        raise DigitsError(f"params.yaml: cnn: {err}") from None
    return model, optimizer, schedule, augment
