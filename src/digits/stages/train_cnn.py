"""Stage `train_cnn`: train the numpy CNN declared in params.yaml; model, probabilities, metrics, curves."""
import math
from pathlib import Path

import numpy as np

from digits import nn
from digits.data import load_split, to_float
from digits.errors import DigitsError
from digits.fingerprint import fingerprint
from digits.io import write_json
from digits.metrics import accuracy
from digits.progress import progress
from digits.stages.common import METRICS, MODELS, PREPARED, epoch_log, save_predictions, stage

CHECKPOINT = Path("checkpoints/cnn.npz")


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


def train(p: dict, parts: tuple, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          log, checkpoint: Path = CHECKPOINT) -> tuple:
    """Train the (model, optimizer, schedule, augment) ``parts`` made by ``setup`` on float images
    (N, 1, 28, 28); ``log(**values)`` gets each epoch's figures.  Returns (the model, the last
    epoch's figures, validation probabilities (Nv, 10)).

    After each epoch the whole training state goes to ``checkpoint``; with ``cnn.resume`` a run
    continues from there (its earlier epochs' figures are logged again) and ends with the weights
    an uninterrupted run reaches.
    """
    model, optimizer, schedule, augment = parts
    state = {"model": model, "optimizer": optimizer, "schedule": schedule, "rng": np.random.default_rng(p["seed"]),
             "fingerprint": fingerprint({key: value for key, value in p.items() if key != "resume"},
                                        x_train, y_train, x_val, y_val)}
    done, history = nn.load_checkpoint(checkpoint, **state) if p["resume"] else (0, [])
    if p["resume"]:
        print(f"train_cnn: resuming from {checkpoint} after {done} of {p['epochs']} epochs" if done else
              f"train_cnn: no checkpoint at {checkpoint}; starting from the first epoch")
    for figures in history:
        log(**figures)
    val_probs = None
    for epoch in progress(range(done, p["epochs"]), "train_cnn", unit="epoch"):
        lr = optimizer.lr
        loss, train_accuracy = nn.train_epoch(model, optimizer, x_train, y_train, p["batch_size"], state["rng"],
                                        schedule=schedule, augment=augment, label_smoothing=p["label_smoothing"])
        val_probs = nn.predict_proba(model, x_val)
        chosen = val_probs[np.arange(len(y_val)), y_val]
        history.append({"train_loss": loss, "train_accuracy": train_accuracy,
                        "val_loss": float(-np.log(np.maximum(chosen, 1e-12)).mean()),
                        "val_accuracy": accuracy(y_val, val_probs), "lr": lr})
        nn.save_checkpoint(checkpoint, **state, epochs_done=epoch + 1, history=history)
        log(**history[-1])
    if val_probs is None:  # every epoch was done before an interruption
        val_probs = nn.predict_proba(model, x_val)
    return model, history[-1], val_probs


@stage("train_cnn", ("cnn",), ("models/cnn.npz", "predictions/cnn.npz", "dvclive/cnn/",
                               "reports/figures/cnn_curves.png", "metrics/cnn.json", str(CHECKPOINT)))
def main(params: dict) -> None:
    p = params["cnn"]  # keys, types and ranges checked by digits.params; layers by nn.build
    dtype = np.dtype(p["dtype"])
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")
    x_train, x_val, x_test = (to_float(x).astype(dtype, copy=False) for x in (x_train, x_val, x_test))
    parts = setup(p, x_train.shape[1:], dtype, len(x_train))
    with epoch_log("cnn") as log:
        model, figures, val_probs = train(p, parts, x_train, y_train, x_val, y_val, log)

    nn.save(model, MODELS / "cnn.npz", p["layers"], x_train.shape[1:])
    save_predictions("cnn", val=val_probs, test=nn.predict_proba(model, x_test))
    write_json(METRICS / "cnn.json", {key: round(value, 6) for key, value in figures.items() if key != "lr"})
    print(f"train_cnn: {p['epochs']} epochs: validation accuracy {figures['val_accuracy']:.4f}")


if __name__ == "__main__":
    main()
