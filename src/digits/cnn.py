"""The numpy CNN as an ensemble member: params.yaml's cnn recipe (network, optimizer, schedule, augmentation),
the training loop with checkpoints and resume, prediction and the model file (the protocol of digits.member)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits import nn
from digits.data import to_float
from digits.errors import DigitsError
from digits.fingerprint import fingerprint
from digits.member import EpochLog, Fitted, Split
from digits.metrics import accuracy, mean_nll
from digits.params import CNN
from digits.progress import progress


@dataclass(frozen=True)
class Recipe:
    """What training needs besides the data: the network, its optimizer, the schedule stepped after every
    batch and the augmentation (None without one)."""

    model: nn.Sequential
    optimizer: nn.SGD | nn.Adam
    schedule: nn.StepLR | nn.CosineLR | nn.OneCycleLR
    augment: nn.RandomAffine | None


def recipe(settings: CNN, input_shape: tuple, n_train: int) -> Recipe:
    """The recipe of `settings` for examples of `input_shape` (C, H, W) and `n_train` training images,
    or a DigitsError naming the setting the library refused."""
    try:
        model = nn.build(settings.layers, input_shape=input_shape, seed=settings.seed, dtype=np.dtype(settings.dtype))
    except DigitsError as err:
        raise DigitsError(f"params.yaml: cnn.layers: {err}") from None
    try:
        optimizer = _optimizer(settings, model.parameters())
        schedule = _schedule(settings, optimizer, math.ceil(n_train / settings.batch_size))
        augment = nn.RandomAffine(settings.degrees, settings.translate, settings.scale) if (
            settings.degrees or settings.translate or settings.scale) else None
    except DigitsError as err:
        raise DigitsError(f"params.yaml: cnn: {err}") from None
    return Recipe(model, optimizer, schedule, augment)


def _optimizer(settings: CNN, parameters: list) -> nn.SGD | nn.Adam:
    if settings.optimizer == "sgd":
        return nn.SGD(parameters, lr=settings.lr, momentum=settings.momentum, nesterov=settings.nesterov,
                      weight_decay=settings.weight_decay)
    optimizer = nn.Adam if settings.optimizer == "adam" else nn.AdamW
    return optimizer(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def _schedule(settings: CNN, optimizer: nn.SGD | nn.Adam, steps_per_epoch: int):
    """The learning-rate schedule, stepped after every batch; sizes given in epochs become batches."""
    if settings.schedule == "step":
        return nn.StepLR(optimizer, step_size=settings.lr_step * steps_per_epoch, gamma=settings.lr_gamma)
    total = settings.epochs * steps_per_epoch
    if settings.schedule == "cosine":
        return nn.CosineLR(optimizer, total_steps=total)
    return nn.OneCycleLR(optimizer, total_steps=total, warmup=settings.warmup)


class NumpyCNN:
    """A digits.nn network trained by the cnn recipe: uint8 images (N, 28, 28) in, probabilities (N, 10) out."""

    def __init__(self, network: nn.Sequential | None = None):
        self.network = network

    def fit(self, settings: CNN, train: Split, val: Split | None, *, checkpoint: Path | None,
            log: EpochLog) -> Fitted:
        """Train by `settings`; `log(**figures)` gets each epoch's train_loss, train_accuracy, val_loss,
        val_accuracy (not without a validation split: `val` None) and lr.

        After each epoch the whole training state goes to `checkpoint` (unless None); with `settings.resume` a run
        continues from there (its earlier epochs' figures are logged again) and ends with the weights
        an uninterrupted run reaches.
        """
        dtype = np.dtype(settings.dtype)
        x_train, y_train = to_float(train[0]).astype(dtype, copy=False), train[1]
        x_val, y_val = (None, None) if val is None else (to_float(val[0]).astype(dtype, copy=False), val[1])
        parts = recipe(settings, x_train.shape[1:], len(x_train))
        self.network, self.layers, self.input_shape = parts.model, settings.layers, x_train.shape[1:]
        state = {"model": parts.model, "optimizer": parts.optimizer, "schedule": parts.schedule,
                 "rng": np.random.default_rng(settings.seed),
                 "fingerprint": fingerprint(settings.model_dump(exclude={"resume"}), x_train, y_train,
                                            *(() if val is None else (x_val, y_val)))}
        done, history = nn.load_checkpoint(checkpoint, **state) if settings.resume else (0, [])
        if settings.resume:
            print(f"train_cnn: resuming from {checkpoint} after {done} of {settings.epochs} epochs" if done else
                  f"train_cnn: no checkpoint at {checkpoint}; starting from the first epoch")
        log = log or (lambda **figures: None)
        for figures in history:
            log(**figures)
        val_proba = None
        for epoch in progress(range(done, settings.epochs), "train_cnn", unit="epoch"):
            lr = parts.optimizer.lr
            loss, train_accuracy = nn.train_epoch(parts.model, parts.optimizer, x_train, y_train, settings.batch_size,
                                                  state["rng"], schedule=parts.schedule, augment=parts.augment,
                                                  label_smoothing=settings.label_smoothing)
            figures = {"train_loss": loss, "train_accuracy": train_accuracy}
            if val is not None:
                val_proba = nn.predict_proba(parts.model, x_val)
                figures.update(val_loss=mean_nll(y_val, val_proba), val_accuracy=accuracy(y_val, val_proba))
            history.append({**figures, "lr": lr})
            if checkpoint is not None:
                nn.save_checkpoint(checkpoint, **state, epochs_done=epoch + 1, history=history)
            log(**history[-1])
        last = history[-1]
        metrics = {key: round(value, 6) for key, value in last.items() if key != "lr"}
        if val is None:
            return Fitted(metrics, None, f"{settings.epochs} epochs on all {len(y_train):,} labelled rows "
                                         f"(split.refit): training accuracy {last['train_accuracy']:.4f}")
        if val_proba is None:  # every epoch was done before an interruption
            val_proba = nn.predict_proba(parts.model, x_val)
        return Fitted(metrics, val_proba, f"{settings.epochs} epochs: validation accuracy {last['val_accuracy']:.4f}")

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 (N, 10) of uint8 images (N, 28, 28), in the network's dtype."""
        dtype = self.network.parameters()[0][1].dtype
        return nn.predict_proba(self.network, to_float(images).astype(dtype, copy=False))

    def save(self, path: str | Path) -> None:
        """The fitted network, its layer spec and input shape, to one .npz (digits.nn.save)."""
        nn.save(self.network, path, self.layers, self.input_shape)

    @classmethod
    def load(cls, path: str | Path) -> NumpyCNN:
        return cls(nn.load(path))
