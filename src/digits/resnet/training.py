"""The ResNet training loop: one process or data-parallel, checkpointed after every epoch so that a resumed run
reaches the weights of an uninterrupted one."""

import json
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms import v2

from digits.artifacts import check_arrays
from digits.errors import DigitsError
from digits.fingerprint import changed_keys, fingerprint
from digits.memory import keep_freed_memory
from digits.params import ResNetProfile
from digits.progress import progress
from digits.resnet.device import bf16_autocast
from digits.resnet.files import LOAD_ERRORS, write
from digits.resnet.network import as_tensor, normalise


class _Digits(Dataset):
    """uint8 images (N, 1, 28, 28) and labels, each image passed through `transform` when one is given."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.labels[i]


def train(model, x, y, profile: ResNetProfile, *, device, seed=0, on_epoch=None, checkpoint=None, resume=False,
          on_resume=None):
    """Train model in place by `profile` (its arch and stem are the model's) on uint8 images x (N, 28, 28) and
    labels y (N,); returns it. `seed` draws the batches and augmentation.

    Runs data-parallel when a process group is initialised (see `distributed`): each process
    trains on its shard of every epoch and gradients are averaged. After each epoch, on rank 0,
    calls on_epoch(epoch, loss, accuracy, lr) — epoch from 0, mean training cross-entropy and
    accuracy over the epoch's batches of all processes, learning rate at the epoch's end — and
    writes `checkpoint` (when given) so that `resume=True` continues an interrupted run to the
    same weights an uninterrupted one reaches. The checkpoint keeps what on_epoch returned (a
    JSON-able dict of figures, or None) for each epoch; on resuming, rank 0 hands that list to
    on_resume(history) before training goes on.
    """
    keep_freed_memory()  # torch's CPU tensors come from malloc too: each step reuses the last one's pages
    images, device = as_tensor(x), torch.device(device)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if labels.shape != (len(images),):
        raise DigitsError(f"Expected labels of shape ({len(images)},) to match the images, but got {tuple(labels.shape)}")
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    augments = profile.degrees or profile.translate or profile.scale
    transform = v2.RandomAffine(degrees=profile.degrees, translate=(profile.translate,) * 2,
                                scale=(1 - profile.scale, 1 + profile.scale),
                                interpolation=v2.InterpolationMode.BILINEAR) if augments else None
    dataset = _Digits(images, labels, transform)
    per_process = len(dataset) // world
    drop_last = per_process % profile.batch_size == 1  # batch norm cannot train on a final batch of one image
    steps = per_process // profile.batch_size + (0 if drop_last or per_process % profile.batch_size == 0 else 1)

    settings = fingerprint({**profile.model_dump(exclude={"arch", "stem"}), "seed": seed},
                           images.numpy(), labels.numpy())
    torch.manual_seed(seed)
    model.to(device)
    net = DistributedDataParallel(model) if world > 1 else model
    optimizer, scheduler = _optimizer(model, profile, steps)
    start, history = _resume(checkpoint, model, optimizer, scheduler, settings) if resume else (0, [])
    if history and rank == 0 and on_resume is not None:
        on_resume(history)
    autocast = bf16_autocast(device, profile.bf16)
    for epoch in range(start, profile.epochs):
        if world > 1:
            sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=seed, drop_last=True)
            sampler.set_epoch(epoch)
            loader = DataLoader(dataset, profile.batch_size, sampler=sampler, drop_last=drop_last)
        else:
            loader = DataLoader(dataset, profile.batch_size, shuffle=True, drop_last=drop_last,
                                generator=torch.Generator().manual_seed(seed + epoch))
        model.train()  # on_epoch may have switched it to eval mode to score the validation split
        totals = torch.zeros(3, device=device)  # loss sum, correct, seen
        for xb, yb in progress(loader, f"train_resnet epoch {epoch + 1}/{profile.epochs}", unit="batch"):
            xb, yb = normalise(xb.to(device)), yb.to(device)
            with autocast:
                logits = net(xb)
            loss = nn.functional.cross_entropy(logits.float(), yb, label_smoothing=profile.label_smoothing)
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


def _optimizer(model, profile, steps_per_epoch):
    """The optimiser (AdamW, or SGD with Nesterov momentum 0.9) and its per-batch learning-rate schedule."""
    if profile.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=profile.lr, weight_decay=profile.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=profile.lr, momentum=0.9, nesterov=True,
                                    weight_decay=profile.weight_decay)
    total = profile.epochs * steps_per_epoch
    if profile.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=profile.lr, total_steps=total)
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
    write(state, path)


def _resume(path, model, optimizer, scheduler, settings):
    """Load a checkpoint written by `_save_checkpoint`; returns (epochs already done, their figures), (0, []) if none."""
    if path is None or not Path(path).is_file():
        return 0, []
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        changed, history = changed_keys(state["fingerprint"], settings), json.loads(state["history"])
    except LOAD_ERRORS:
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
