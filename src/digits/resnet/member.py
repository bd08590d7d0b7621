"""The ResNet as an ensemble member (the protocol of digits.member): build, pretrained weights, training on
the chosen profile with the validation split scored after every epoch, predictions, the model file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from digits.member import EpochLog, Fitted, Split
from digits.metrics import accuracy
from digits.params import ResNet as Settings
from digits.resnet import files, inference
from digits.resnet.device import distributed
from digits.resnet.network import build_resnet
from digits.resnet.training import train
from digits.resnet.weights import load_weights


class ResNet:
    """A trained ResNet: uint8 images (N, 28, 28) in, probabilities float32 (N, 10) out, on `device`, under
    bfloat16 autocast when `bf16` (as trained; a loaded model predicts in float32 on the CPU)."""

    def __init__(self, network=None, arch="resnet18", stem="stock", *, tta=False, device="cpu", bf16=False):
        self.network, self.arch, self.stem = network, arch, stem
        self.tta, self.device, self.bf16 = tta, torch.device(device), bf16

    def fit(self, settings: Settings, train_split: Split, val: Split | None, *, checkpoint: Path | None,
            log: EpochLog) -> Fitted | None:
        """Train the profile `settings.profile` names, seeded by `settings.seed`, from `settings.weights`;
        `log(**figures)` gets each epoch's train_loss, train_accuracy, val_accuracy (not without a validation
        split: `val` None) and lr.

        Under torchrun every process trains its shard; only rank 0 scores, logs and gets a Fitted,
        the others None.
        """
        profile = settings.chosen
        with distributed(settings.device) as (device, rank):
            network = build_resnet(profile.arch, profile.stem, seed=settings.seed)
            load_weights(network, settings.weights, profile.arch)
            self.network, self.arch, self.stem = network, profile.arch, profile.stem
            self.tta, self.device, self.bf16 = settings.tta, device, profile.bf16
            scorer = _Scorer(self, val, log)
            train(network, *train_split, profile, seed=settings.seed, device=device, on_epoch=scorer.epoch,
                  checkpoint=checkpoint, resume=settings.resume, on_resume=scorer.replay)
        if rank != 0:
            return None
        last = {key: value for key, value in scorer.history[-1].items() if key != "lr"}
        trained = f"{profile.arch} ({profile.stem} stem) on {device}, {profile.epochs} epochs"
        if val is None:
            return Fitted({key: round(value, 6) for key, value in last.items()}, None,
                          f"{trained} on all {len(train_split[1]):,} labelled rows (split.refit): "
                          f"training accuracy {last['train_accuracy']:.4f}")
        val_proba = scorer.val_proba
        if settings.tta or val_proba is None:  # not scored yet when every epoch was done before resuming
            val_proba = self.predict_proba(val[0])
        if settings.tta:
            last["val_accuracy_tta"] = accuracy(val[1], val_proba)
        tta = f", {last['val_accuracy_tta']:.4f} with test-time shifts" if settings.tta else ""
        return Fitted({key: round(value, 6) for key, value in last.items()}, val_proba,
                      f"{trained}: validation accuracy {last['val_accuracy']:.4f}{tta}")

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 (N, 10) of uint8 images (N, 28, 28); with `tta`, the mean over each image and
        its one-pixel shifts."""
        return inference.predict_proba(self.network, images, device=self.device, bf16=self.bf16, tta=self.tta)

    def save(self, path: str | Path) -> None:
        """The arch, stem, tta and weights to one torch file (digits.resnet.files.save)."""
        files.save(self.network, path, self.arch, self.stem, tta=self.tta)

    @classmethod
    def load(cls, path: str | Path) -> ResNet:
        """The model `save` wrote, on the CPU (a few images are not worth starting an accelerator)."""
        network, settings = files.load(path)
        return cls(network, settings["arch"], settings["stem"], tta=settings["tta"])


class _Scorer:
    """What training hands each epoch's figures to: the validation split (unless None) is scored by `model`
    without test-time shifts, the figures logged and kept (with those of epochs done before a resume)."""

    def __init__(self, model: ResNet, val: Split | None, log: EpochLog):
        self.model, self.val, self.log = model, val, log or (lambda **figures: None)
        self.history: list[dict] = []
        self.val_proba = None

    def epoch(self, epoch: int, loss: float, train_accuracy: float, lr: float) -> dict:
        model, figures = self.model, {"train_loss": loss, "train_accuracy": train_accuracy}
        if self.val is not None:
            self.val_proba = inference.predict_proba(model.network, self.val[0], device=model.device, bf16=model.bf16)
            figures["val_accuracy"] = accuracy(self.val[1], self.val_proba)
        figures["lr"] = lr
        self.replay([figures])
        return figures

    def replay(self, history: list[dict]) -> None:
        for figures in history:
            self.log(**figures)
        self.history += history
