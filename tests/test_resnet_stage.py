"""The train_resnet stage on a tiny prepared split: outputs, and resuming after an interruption."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from digits import resnet
from digits.data import load_split
from digits.io import load_npz
from digits.stages import train_resnet

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
PROFILE = {"arch": "resnet18", "stem": "stock", "epochs": 3, "batch_size": 16, "optimizer": "adamw", "lr": 0.002,
           "weight_decay": 0.01, "schedule": "onecycle", "label_smoothing": 0.1, "degrees": 10, "translate": 0.1,
           "scale": 0.1, "bf16": False}
OUTPUTS = ("models/resnet.pt", "predictions/resnet.npz", "metrics/resnet.json",
           "dvclive/resnet/plots/metrics/val_accuracy.tsv", "dvclive/resnet/plots/metrics/train_loss.tsv")


def run(workdir, refit=False, **changes):
    """Run the stage with the project's params.yaml, on the CPU, its cpu profile replaced by PROFILE and
    split.refit set to `refit`."""
    params = yaml.safe_load(PARAMS.read_text())
    params["split"]["refit"] = refit
    params["resnet"].update(profile="cpu", device="cpu", weights="none", **changes)
    params["resnet"]["profiles"]["cpu"] = PROFILE
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    train_resnet.main()


def test_writes_model_predictions_metrics_and_curves(workdir):
    run(workdir, tta=True)
    model, settings = resnet.load(workdir / "models" / "resnet.pt")
    assert settings == {"arch": "resnet18", "stem": "stock", "tta": True} and model.fc.out_features == 10
    metrics = json.loads((workdir / "metrics" / "resnet.json").read_text())
    assert set(metrics) == {"train_loss", "train_accuracy", "val_accuracy", "val_accuracy_tta"}
    x_val, y_val = load_split(workdir / "data" / "prepared" / "val.npz")
    predictions = load_npz(workdir / "predictions" / "resnet.npz")
    np.testing.assert_allclose(predictions["val"], resnet.predict_proba(model, x_val, device="cpu", tta=True),
                               atol=1e-6)  # the saved probabilities are those of the test-time shifts
    assert metrics["val_accuracy_tta"] == round(float((predictions["val"].argmax(1) == y_val).mean()), 6)
    rows = (workdir / "dvclive" / "resnet" / "plots" / "metrics" / "val_accuracy.tsv").read_text().splitlines()
    assert len(rows) == 1 + 3


def test_without_tta_the_predictions_are_the_last_epochs_scoring(workdir):
    run(workdir, tta=False)
    model, settings = resnet.load(workdir / "models" / "resnet.pt")
    metrics = json.loads((workdir / "metrics" / "resnet.json").read_text())
    assert not settings["tta"] and set(metrics) == {"train_loss", "train_accuracy", "val_accuracy"}
    x_val, y_val = load_split(workdir / "data" / "prepared" / "val.npz")
    val = load_npz(workdir / "predictions" / "resnet.npz")["val"]
    np.testing.assert_allclose(val, resnet.predict_proba(model, x_val, device="cpu"), atol=1e-6)
    assert metrics["val_accuracy"] == round(float((val.argmax(1) == y_val).mean()), 6)


def test_resume_after_an_interruption_ends_with_the_same_outputs(workdir, monkeypatch, capsys):
    run(workdir)
    uninterrupted = {name: (workdir / name).read_bytes() for name in OUTPUTS}
    for name in ("models", "predictions", "metrics", "dvclive", "checkpoints"):
        shutil.rmtree(workdir / name)

    calls, predict_proba = [], resnet.inference.predict_proba

    def interrupted_in_the_second_epochs_scoring(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return predict_proba(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(resnet.inference, "predict_proba", interrupted_in_the_second_epochs_scoring)
        with pytest.raises(SystemExit) as excinfo:
            run(workdir)
    assert excinfo.value.code == 130
    assert not (workdir / "models" / "resnet.pt").exists() and (workdir / "checkpoints" / "resnet.pt").is_file()
    run(workdir, resume=True)
    assert {name: (workdir / name).read_bytes() for name in OUTPUTS} == uninterrupted
    run(workdir, resume=True)  # every epoch done: nothing to train, the same outputs again
    assert {name: (workdir / name).read_bytes() for name in OUTPUTS} == uninterrupted
