"""Stage `train_cnn@<member>`: train one numpy CNN member of params.yaml's cnn_members; model, probabilities,
metrics, curves.  `python -m digits.stages.train_cnn [MEMBER]` (default: cnn)."""
import sys
from pathlib import Path

import numpy as np

from digits import nn, params as params_file
from digits.nn.recipe import setup
from digits.data import load_split, to_float
from digits.errors import DigitsError
from digits.fingerprint import fingerprint
from digits.io import write_json
from digits.metrics import accuracy
from digits.progress import progress
from digits.stages.common import CHECKPOINTS, METRICS, MODELS, PREPARED, save_predictions, stage
from digits.stages.epochs import epoch_log



def train(p: dict, parts: tuple, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          log, checkpoint: Path) -> tuple:
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


def main(argv: list[str] | None = None) -> None:
    """Train the member named by the first argument (default: cnn); its timing goes to metrics/time/train_<member>.json."""
    member_stage((argv or ["cnn"])[0])()


def member_stage(member: str):
    """The stage `train_cnn@<member>` as a `main()` (see common.stage), with the params and outputs it owns."""
    outputs = (f"models/{member}.npz", f"predictions/{member}.npz", f"dvclive/{member}/",
               f"reports/figures/{member}_curves.png", f"metrics/{member}.json", f"checkpoints/{member}.npz")
    return stage(f"train_{member}", ("cnn", f"cnn_members.{member}"), outputs)(
        lambda params: train_member(params, member))


def train_member(params: dict, member: str) -> None:
    if member not in params["cnn_members"]:
        raise DigitsError(f"params.yaml: cnn_members has no member {member!r}; it has {', '.join(params['cnn_members'])}")
    p = params_file.cnn_settings(params, member)  # keys, types and ranges checked by digits.params; layers by nn.build
    dtype = np.dtype(p["dtype"])
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")
    x_train, x_val, x_test = (to_float(x).astype(dtype, copy=False) for x in (x_train, x_val, x_test))
    parts = setup(p, x_train.shape[1:], dtype, len(x_train))
    with epoch_log(member) as log:
        model, figures, val_probs = train(p, parts, x_train, y_train, x_val, y_val, log, CHECKPOINTS / f"{member}.npz")

    nn.save(model, MODELS / f"{member}.npz", p["layers"], x_train.shape[1:])
    save_predictions(member, val=val_probs, test=nn.predict_proba(model, x_test))
    write_json(METRICS / f"{member}.json", {key: round(value, 6) for key, value in figures.items() if key != "lr"})
    print(f"train_{member}: {p['epochs']} epochs: validation accuracy {figures['val_accuracy']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
